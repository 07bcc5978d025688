"""The leak scanner itself must be able to fail, and real calls must log what operators need."""

from __future__ import annotations

import json
import logging

from tests.support.fhir import patient_view_request
from tests.support.log_scan import LOG_BUFFER, find_log_leaks


def test_scanner_finds_a_name_a_token_and_a_jwt():
    assert "tok-secret" in find_log_leaks('{"event": "x tok-secret"}')
    assert "a JWT" in find_log_leaks("Bearer eyJhbGciOiJFUzM4NCJ9.eyJpc3MiOiJ4In0.sig")
    assert find_log_leaks('{"event": "service evaluated", "cards": 1}') == []


def test_service_call_logs_ids_hook_timings_and_outcomes(client, caplog):
    caplog.set_level(logging.INFO, logger="cds_service")
    body = patient_view_request()
    client.post("/cds-services/b12-patient-view", data=json.dumps(body), content_type="application/json")
    line = next(json.loads(entry) for entry in reversed(LOG_BUFFER.getvalue().splitlines())
                if '"service evaluated"' in entry)
    assert line["hook"] == "patient-view" and line["hook_instance"] == body["hookInstance"]
    assert line["service_id"] == "b12-patient-view" and "rules_ms" in line["timings_ms"]
    assert line["cards"] == 0 and line["request_id"]


def test_scanner_finds_fixture_patient_names():
    bundle = json.loads(next((__import__("pathlib").Path("fixtures/patients")).glob("*.json")).read_text())
    patient = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    family = patient["name"][0]["family"]
    assert family in find_log_leaks(f'{{"event": "oops {family}"}}')
