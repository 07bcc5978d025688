"""`pip install .` gives a service that starts: the built wheel, alone in a fresh venv, serves.

The wheel is built from a copy of the files the Dockerfile copies (so the checkout gets no build/
directory), installed into a new venv (no system site-packages, no checkout on sys.path), and
`b12-cds serve` is started from a directory outside the checkout. It must find its service files
and the OpenAPI document inside the installed package.

Cost: about 5 s here. Kept fast on purpose: the venv is created without pip (`--without-pip`) and
this interpreter's pip installs into it (`pip --python`), with `--no-compile`; dependencies come from
pip's cache or the configured index, so the first run on a machine with an empty cache is slower.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.support.project import EVALUATION_TIME, PROJECT
from tests.support.server import free_port

FIXTURE_REQUEST = PROJECT / "fixtures" / "requests" / "r3-ataxia-new.patient-view.json"
# What the Dockerfile's build stage copies: the wheel must not need anything else from the checkout.
BUILD_INPUTS = ("pyproject.toml", "README.md", "openapi.yaml", "hooks", "cds_service")


def _run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, **kwargs)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def _clean_env(**extra: str) -> dict[str, str]:
    """The caller's environment without our settings, PYTHONPATH or a metrics directory."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CDS_") and k not in {"PYTHONPATH", "PROMETHEUS_MULTIPROC_DIR", "VIRTUAL_ENV"}}
    env.update(extra)
    return env


def _request(url: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="GET" if body is None else "POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding only the built wheel and its dependencies; returns its bin/ directory."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"
    source.mkdir()
    for name in BUILD_INPUTS:
        path = PROJECT / name
        if path.is_dir():
            # symlinks=True: cds_service/hooks and cds_service/openapi.yaml stay links, as in a checkout.
            shutil.copytree(path, source / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, source / name)
    dist = root / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "--wheel-dir", str(dist), str(source)])
    (wheel,) = dist.glob("b12_neuro_cds-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert {"cds_service/openapi.yaml", "cds_service/hooks/b12-patient-view.json"} <= names

    venv = root / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-compile", str(wheel)],
         env=_clean_env())
    return venv / "bin"


def test_the_installed_package_does_not_come_from_the_checkout(installed: Path, tmp_path: Path) -> None:
    probe = "import json, sys, cds_service; print(json.dumps([cds_service.__file__, sys.path]))"
    result = _run([str(installed / "python"), "-c", probe], cwd=tmp_path, env=_clean_env())
    module_file, path = json.loads(result.stdout)
    assert Path(module_file).is_relative_to(installed.parent), module_file
    assert not [p for p in path if p and Path(p).resolve().is_relative_to(PROJECT)], path


def test_the_installed_wheel_serves_discovery_and_a_card(installed: Path, tmp_path: Path) -> None:
    port = free_port()
    env = _clean_env(CDS_EVALUATION_TIME=EVALUATION_TIME, CDS_DATABASE_URL=f"sqlite:///{tmp_path}/cds.db",
                     CDS_LOG_LEVEL="WARNING")
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([str(installed / "b12-cds"), "serve", "--port", str(port), "--workers", "1"],
                                   cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, f"server exited with {process.returncode}: {log_path.read_text()[-3000:]}"
            assert time.monotonic() < deadline, "server did not become ready in 60 s"
            try:
                if _request(f"{base}/readyz")[0] == 200:
                    break
            except OSError:
                time.sleep(0.2)

        status, discovery = _request(f"{base}/cds-services")
        assert status == 200, discovery
        assert sorted(s["id"] for s in discovery["services"]) == [
            "b12-order-select", "b12-order-sign", "b12-patient-view"]

        with urllib.request.urlopen(f"{base}/openapi.yaml", timeout=10) as response:
            assert response.status == 200 and response.read().startswith(b"openapi: 3.1")

        body = json.loads(FIXTURE_REQUEST.read_text(encoding="utf-8"))
        status, answer = _request(f"{base}/cds-services/b12-patient-view", body)
        assert status == 200, answer
        # fixtures/scenarios.json: new ataxia with B12 180 pmol/L is an urgent neurological review
        assert [(c["source"]["topic"]["code"], c["indicator"]) for c in answer["cards"]] == [
            ("urgent-neuro-review", "critical")], answer
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
