"""Fixtures for every layer: a real app (real SQLite file, real knowledge, real service files) per test,
the real knowledge once per session, both databases, and the log scan over the whole session."""

from __future__ import annotations

import copy
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from cds_service import create_app
from cds_service.knowledge import Knowledge, load_knowledge
from tests.support.fhir import patient_view_request
from tests.support.log_scan import LOG_BUFFER, capture_logs, find_log_leaks
from tests.support.project import EVALUATION_TIME

capture_logs()


@pytest.fixture(scope="session")
def kb() -> Knowledge:
    """The shipped knowledge, loaded (and validated) once for the session."""
    return load_knowledge()


@pytest.fixture
def app_config(tmp_path: Path) -> dict[str, Any]:
    return {"TESTING": True, "EVALUATION_TIME": EVALUATION_TIME, "DATABASE_URL": f"sqlite:///{tmp_path}/cds.db"}


@pytest.fixture
def app(app_config: dict[str, Any]):
    return create_app(app_config)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def valid_request() -> dict[str, Any]:
    return copy.deepcopy(patient_view_request())


def pytest_sessionfinish(session, exitstatus):
    text = LOG_BUFFER.getvalue()
    leaks = find_log_leaks(text)
    if leaks:
        print(f"\nPHI/TOKEN LEAK IN LOGS: {leaks} found in {len(text)} characters of captured logs")
        session.exitstatus = 1
    else:
        print(f"\nlog scan: {text.count(chr(10))} log lines from the whole suite, no names/birth dates/tokens")


# --- databases: every storage test runs on SQLite and on a real PostgreSQL ----------------------

@pytest.fixture(scope="session")
def postgres_server():
    from tests.support.postgres import start_postgres

    server = start_postgres()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/cds.db"
    server = request.getfixturevalue("postgres_server")
    # a fresh database per test so tests stay independent
    name = f"t_{uuid.uuid4().hex[:12]}"
    port = server.url.rsplit(":", 1)[1].split("/")[0]
    subprocess.run([f"{server.bin_dir}/psql", "-h", "127.0.0.1", "-p", port, "-U", "postgres", "-c",
                    f"CREATE DATABASE {name}"], check=True, capture_output=True)
    return server.url.rsplit("/", 1)[0] + f"/{name}"
