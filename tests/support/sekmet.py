"""Start a real FHIR server (sekmet-fhir, SQLite-backed R4) on 127.0.0.1 for integration tests.

`scripts/bootstrap.sh test` installs it in its own venv (.fhir-venv), pinned, because its
dependencies (FastAPI, uvicorn, ...) are not ours. Without it the tests skip locally with a visible
reason; in CI (CI=true) a missing server is a failure, never a silent skip.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.project import PROJECT

SEKMET = PROJECT / ".fhir-venv" / "bin" / "sekmet"
TOKEN = "sekmet-test-token-4c1d"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class FhirServer:
    base_url: str
    token: str
    process: subprocess.Popen[bytes]

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Content-Type": "application/fhir+json",
                "Accept": "application/fhir+json"}

    def load_collection(self, bundle: dict[str, Any]) -> None:
        """PUT every resource of a collection Bundle in one transaction, keeping the ids."""
        entries = [
            {"resource": e["resource"],
             "request": {"method": "PUT", "url": f"{e['resource']['resourceType']}/{e['resource']['id']}"}}
            for e in bundle.get("entry", [])
        ]
        response = requests.post(self.base_url, json={"resourceType": "Bundle", "type": "transaction",
                                                      "entry": entries}, headers=self.headers(), timeout=30)
        response.raise_for_status()


def start_sekmet(workdir: Path) -> FhirServer:
    if not SEKMET.exists():
        message = f"sekmet-fhir not installed at {SEKMET} (scripts/bootstrap.sh test installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    port = free_port()
    base = f"http://127.0.0.1:{port}/fhir"
    (workdir / "settings.yaml").write_text(
        f"base_url: {base}\nhost: 127.0.0.1\nport: {port}\ndata_dir: {workdir / 'data'}\n"
        f"server_auth:\n  types: [bearer]\n  tokens: [{TOKEN}]\nsimulator:\n  enabled: false\nlog_inbound: false\n"
    )
    process = subprocess.Popen([str(SEKMET), "serve", "-c", str(workdir / "settings.yaml")], cwd=workdir,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{base}/metadata", timeout=1).status_code == 200:
                return FhirServer(base, TOKEN, process)
        except requests.RequestException:
            pass
        if process.poll() is not None:
            pytest.fail(f"sekmet-fhir exited with {process.returncode}")
        time.sleep(0.1)
    process.terminate()
    pytest.fail("sekmet-fhir did not start within 30 s")


def stop(server: FhirServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()
