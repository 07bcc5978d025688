"""`b12-cds serve` (the real gunicorn entry point) as a subprocess on a free port, and plain HTTP calls to it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.support.project import EVALUATION_TIME, PROJECT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(tmp_dir: Path, extra_env: dict[str, str] | None = None,
                 workers: int = 1) -> tuple[subprocess.Popen, str]:
    """`b12-cds serve` as a subprocess on a free port; returns once /readyz answers 200."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CDS_") and k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update({"CDS_EVALUATION_TIME": EVALUATION_TIME, "CDS_DATABASE_URL": f"sqlite:///{tmp_dir}/cds.db",
                "CDS_LOG_LEVEL": "WARNING", **(extra_env or {})})
    log = (tmp_dir / "server.log").open("wb")
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "b12-cds"), "serve", "--port", str(port), "--workers", str(workers)],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=PROJECT, start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log_tail = (tmp_dir / "server.log").read_text()[-2000:]
            raise RuntimeError(f"server exited with {process.returncode}: {log_tail}")
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=1) as response:
                if response.status == 200:
                    return process, base
        except OSError:
            time.sleep(0.1)
    stop_server(process)
    raise RuntimeError("server did not become ready in 30 s")


def stop_server(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)  # gunicorn master: graceful stop of its workers
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def post_json(url: str, body: Any) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
