"""Shared fixtures: a real app (real SQLite file, real knowledge, real service files) per test."""

from __future__ import annotations

import copy
import uuid
from pathlib import Path
from typing import Any

import pytest

from cds_service import create_app

EVALUATION_TIME = "2026-11-01T12:00:00Z"
PROJECT = Path(__file__).resolve().parent.parent
SEARCH_KEYS = ("labs", "conditions", "medicationRequests", "medicationStatements", "procedures", "serviceRequests")


def empty_searchset() -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "searchset", "total": 0}


def searchset(*resources: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [
            {"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": r, "search": {"mode": "match"}} for r in resources
        ],
    }


def patient_view_request(patient_id: str = "p1", **prefetch_overrides: Any) -> dict[str, Any]:
    """A valid patient-view request with every prefetch key present (empty unless overridden)."""
    prefetch: dict[str, Any] = {"patient": {"resourceType": "Patient", "id": patient_id, "gender": "female",
                                            "birthDate": "1960-05-01"}}
    prefetch.update({key: empty_searchset() for key in SEARCH_KEYS})
    prefetch.update(prefetch_overrides)
    return {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/example", "patientId": patient_id},
        "prefetch": {k: v for k, v in prefetch.items() if v is not _OMIT},
    }


_OMIT = object()
OMIT = _OMIT


def b12_observation(value: float, unit: str | None = "pg/mL", *, patient_id: str = "p1", oid: str = "b12-1",
                    date: str = "2026-09-15T09:00:00Z", code: str = "2132-9") -> dict[str, Any]:
    quantity: dict[str, Any] = {"value": value}
    if unit is not None:
        quantity.update({"unit": unit, "system": "http://unitsofmeasure.org", "code": unit})
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                  "code": "laboratory"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectiveDateTime": date,
        "valueQuantity": quantity,
    }


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


# --- PHI/token leak check over the logs of the whole test session -------------------------------
# Every record the service logs during the suite is formatted exactly as in production (JSON) and
# kept; at the end of the session the text is scanned for the fixture patients' names and birth
# dates and for every token the tests use. A hit fails the run.

import io  # noqa: E402
import json as _json  # noqa: E402
import logging  # noqa: E402
import re  # noqa: E402

from cds_service.logging_setup import JsonFormatter  # noqa: E402

_LOG_BUFFER = io.StringIO()
_capture = logging.StreamHandler(_LOG_BUFFER)
_capture.setFormatter(JsonFormatter())
_capture.setLevel(logging.DEBUG)
logging.getLogger("cds_service").addHandler(_capture)
logging.getLogger().addHandler(_capture)

TEST_TOKENS = ("tok-secret", "secret-token-xyz", "tok-never-echoed", "sekmet-test-token-4c1d")


def _forbidden_strings() -> set[str]:
    forbidden = set(TEST_TOKENS)
    for path in (PROJECT / "fixtures" / "patients").glob("*.json"):
        bundle = _json.loads(path.read_text())
        for entry in bundle.get("entry", []):
            resource = entry.get("resource", {})
            if resource.get("resourceType") == "Patient":
                for name in resource.get("name", []):
                    forbidden.update(n for n in name.get("given", []) if len(n) > 3)
                    if len(name.get("family", "")) > 3:
                        forbidden.add(name["family"])
                if resource.get("birthDate"):
                    forbidden.add(resource["birthDate"])
    return forbidden


def find_log_leaks(text: str) -> list[str]:
    leaks = [s for s in sorted(_forbidden_strings()) if s in text]
    if re.search(r"eyJ[A-Za-z0-9_-]{10,}\.", text):
        leaks.append("a JWT")
    return leaks


def pytest_sessionfinish(session, exitstatus):
    text = _LOG_BUFFER.getvalue()
    leaks = find_log_leaks(text)
    if leaks:
        print(f"\nPHI/TOKEN LEAK IN LOGS: {leaks} found in {len(text)} characters of captured logs")
        session.exitstatus = 1
    else:
        print(f"\nlog scan: {text.count(chr(10))} log lines from the whole suite, no names/birth dates/tokens")


# --- databases: every storage test runs on SQLite and on a real PostgreSQL ----------------------

@pytest.fixture(scope="session")
def postgres_server():
    from tests.postgres_server import start_postgres

    server = start_postgres()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/cds.db"
    server = request.getfixturevalue("postgres_server")
    # a fresh database per test so tests stay independent
    import subprocess

    name = f"t_{uuid.uuid4().hex[:12]}"
    port = server.url.rsplit(":", 1)[1].split("/")[0]
    subprocess.run([f"{server.bin_dir}/psql", "-h", "127.0.0.1", "-p", port, "-U", "postgres", "-c",
                    f"CREATE DATABASE {name}"], check=True, capture_output=True)
    return server.url.rsplit("/", 1)[0] + f"/{name}"
