"""Prometheus metrics: real counters scraped from `b12-cds serve` (in-process: tests/http/test_metrics.py).

The end-to-end test starts the real server with two gunicorn workers (so the multiprocess
aggregation is exercised), makes known calls (cards, 412, 404, feedback, a fetch from a real FHIR
server, a fetch from a dead server), then scrapes /metrics and the separate CDS_METRICS_PORT.
"""

from __future__ import annotations

import urllib.request
import uuid
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from fixtures.build_requests import load_patient, load_scenarios, request_for_scenario
from tests.support.fhir import PHI_PROBE_ID
from tests.support.sekmet import start_sekmet, stop
from tests.support.server import free_port, post_json, start_server, stop_server


@pytest.fixture(scope="module")
def fhir_server(tmp_path_factory):
    """A real FHIR server (sekmet-fhir) holding the patient the fetch path reads."""
    server = start_sekmet(tmp_path_factory.mktemp("sekmet-metrics"))
    server.load_collection(load_patient("r2-folate-no-b12"))
    yield server
    stop(server)


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    assert PHI_PROBE_ID not in text
    values = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            values[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return values


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_counters_after_real_calls_under_gunicorn(tmp_path: Path, fhir_server) -> None:
    dead_port = free_port()  # nothing listens here
    metrics_port = free_port()
    multiproc = tmp_path / "prom"
    multiproc.mkdir()
    (multiproc / "counter_999999.db").write_bytes(b"stale samples from an earlier run")
    process, base = start_server(tmp_path, workers=2, extra_env={
        "CDS_FHIR_SERVER_ALLOWLIST": f"{fhir_server.base_url},http://127.0.0.1:{dead_port}",
        "CDS_FETCH_BUDGET_MS": "2000", "CDS_FETCH_CALL_TIMEOUT_MS": "2000",
        "CDS_METRICS_PORT": str(metrics_port), "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
    })
    try:
        assert not (multiproc / "counter_999999.db").exists()  # emptied at start-up
        scenarios = {f"{s['patient']}.{s['hook']}": s for s in load_scenarios()}
        calls = [("r2-folate-no-b12.patient-view", 3), ("r3-scd-risk-factor.patient-view", 2),
                 ("edge-lower-179-pgml.order-select", 2), ("healthy-normal-b12.patient-view", 1)]
        expected_cards: dict[tuple[str, str], int] = {}
        for sid, times in calls:
            s = scenarios[sid]
            for _ in range(times):
                status, body = post_json(f"{base}/cds-services/b12-{s['hook']}", request_for_scenario(s))
                assert status == 200
                for card in body["cards"]:
                    key = (card["source"]["topic"]["code"], card["indicator"])
                    expected_cards[key] = expected_cards.get(key, 0) + 1
        # required prefetch missing and no FHIR server: 412
        bare = {"hook": "patient-view", "hookInstance": str(uuid.uuid4()),
                "context": {"userId": "Practitioner/example", "patientId": "r2-folate-no-b12"}}
        assert post_json(f"{base}/cds-services/b12-patient-view", bare)[0] == 412
        # everything fetched from the real FHIR server: same card as with prefetch
        fetched = {**bare, "hookInstance": str(uuid.uuid4()), "fhirServer": fhir_server.base_url,
                   "fhirAuthorization": {"access_token": fhir_server.token, "token_type": "Bearer",
                                         "expires_in": 300, "scope": "patient/*.read", "subject": "b12"}}
        status, body = post_json(f"{base}/cds-services/b12-patient-view", fetched)
        assert status == 200 and [c["source"]["topic"]["code"] for c in body["cards"]] == ["folate-without-b12"]
        expected_cards[("folate-without-b12", "warning")] += 1
        # a dead FHIR server: fetch failures, then 412
        dead = {**bare, "hookInstance": str(uuid.uuid4()), "fhirServer": f"http://127.0.0.1:{dead_port}/fhir"}
        assert post_json(f"{base}/cds-services/b12-patient-view", dead)[0] == 412
        # an unknown service id (could be anything a client sends): counted as "unknown"
        assert post_json(f"{base}/cds-services/{PHI_PROBE_ID}", bare)[0] == 404
        feedback = {"feedback": [{"card": str(uuid.uuid4()), "outcome": "overridden",
                                  "outcomeTimestamp": "2026-11-01T12:00:00Z"}]}
        feedback_status = post_json(f"{base}/cds-services/b12-patient-view/feedback", feedback)[0]

        samples = scrape(f"{base}/metrics")
        pv = {"service": "b12-patient-view", "hook": "patient-view"}
        assert value(samples, "b12_cds_requests_total", **pv, status="200") == 3 + 2 + 1 + 1
        assert value(samples, "b12_cds_requests_total", **pv, status="412") == 2
        assert value(samples, "b12_cds_requests_total", service="b12-order-select", hook="order-select",
                     status="200") == 2
        assert value(samples, "b12_cds_requests_total", service="unknown", hook="unknown", status="404") == 1
        assert value(samples, "b12_cds_request_duration_seconds_count", **pv) == 9
        assert value(samples, "b12_cds_request_duration_seconds_bucket", **pv, le="+Inf") == 9
        assert value(samples, "b12_cds_feedback_requests_total", service="b12-patient-view",
                     status=str(feedback_status)) == 1
        for (topic, indicator), count in expected_cards.items():
            assert value(samples, "b12_cds_cards_total", topic=topic, indicator=indicator) == count, (topic, indicator)
        all_cards = sum(v for (name, _), v in samples.items() if name == "b12_cds_cards_total")
        assert all_cards == sum(expected_cards.values())
        # the FHIR server answered every key once (7 templates): 200s, or 404 for an absent resource
        fetch_ok = value(samples, "b12_cds_fhir_fetch_duration_seconds_count", status="200")
        assert fetch_ok + value(samples, "b12_cds_fhir_fetch_duration_seconds_count", status="404") == 7
        failures = {dict(labels)["status"]: v for (name, labels), v in samples.items()
                    if name == "b12_cds_fhir_fetch_failures_total"}
        assert failures.get("unreachable", 0) >= 1
        assert set(failures) <= {"unreachable", "circuit-open", "budget-exhausted"}
        assert value(samples, "b12_cds_cards_suppressed_total", topic="mma-testing") == 0
        # only the whitelisted label names exist
        label_names = {k for (name, labels) in samples for k, _ in labels if name.startswith("b12_cds_")}
        assert label_names <= {"service", "hook", "topic", "indicator", "status", "le", "outcome", "resource_type",
                               "field"}
        # the read pass is counted: resources read, none set aside in these clean charts
        assert value(samples, "b12_cds_fhir_resources_read_total", outcome="read") > 0
        assert value(samples, "b12_cds_fhir_resources_read_total", outcome="unreadable") == 0
        # the separate port (no client JWT, for Prometheus inside the cluster) shows the same totals
        on_port = scrape(f"http://127.0.0.1:{metrics_port}/metrics")
        assert value(on_port, "b12_cds_requests_total", **pv, status="200") == 7
        assert list(multiproc.glob("*.db"))
    finally:
        stop_server(process)


def test_serve_makes_a_fresh_multiprocess_dir_when_none_is_set(tmp_path: Path) -> None:
    from cds_service.cli import prepare_metrics_dir

    environ: dict[str, str] = {}
    path, created = prepare_metrics_dir(environ)
    try:
        assert created and Path(path).is_dir() and not any(Path(path).iterdir())
        assert environ["PROMETHEUS_MULTIPROC_DIR"] == path
    finally:
        Path(path).rmdir()
    given = tmp_path / "given"
    given.mkdir()
    (given / "histogram_1.db").write_bytes(b"old")
    (given / "keep.txt").write_text("not ours")
    path, created = prepare_metrics_dir({"PROMETHEUS_MULTIPROC_DIR": str(given)})
    assert not created and path == str(given)
    assert sorted(p.name for p in given.iterdir()) == ["keep.txt"]
