"""Prometheus metrics in-process: counters and label hygiene through the Flask test client.

tests/integration/test_metrics.py scrapes the real counters from `b12-cds serve` (two gunicorn workers).
"""

from __future__ import annotations

from prometheus_client import REGISTRY

from cds_service import metrics
from fixtures.build_requests import load_scenarios, request_for_scenario
from tests.support.fhir import PHI_PROBE_ID


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_record_suppressed_counts_by_topic_and_refuses_free_text() -> None:
    before = sample("b12_cds_cards_suppressed_total", topic="mma-testing")
    before_other = sample("b12_cds_cards_suppressed_total", topic="other")
    metrics.record_suppressed("mma-testing")
    metrics.record_suppressed("mma-testing")
    metrics.record_suppressed("Patient Jane Doe")  # never a label
    assert sample("b12_cds_cards_suppressed_total", topic="mma-testing") == before + 2
    assert sample("b12_cds_cards_suppressed_total", topic="other") == before_other + 1
    assert sample("b12_cds_cards_suppressed_total", topic="Patient Jane Doe") == 0


def test_service_calls_cards_and_unknown_ids_in_process(client, valid_request) -> None:
    labels = {"service": "b12-patient-view", "hook": "patient-view", "status": "200"}
    before = sample("b12_cds_requests_total", **labels)
    before_hist = sample("b12_cds_request_duration_seconds_count", service="b12-patient-view", hook="patient-view")
    before_unknown = sample("b12_cds_requests_total", service="unknown", hook="unknown", status="404")
    before_cards = sample("b12_cds_cards_total", topic="folate-without-b12", indicator="warning")
    assert client.post("/cds-services/b12-patient-view", json=valid_request).status_code == 200
    request = request_for_scenario(next(s for s in load_scenarios() if s["patient"] == "r2-folate-no-b12"))
    assert client.post("/cds-services/b12-patient-view", json=request).status_code == 200
    assert client.post(f"/cds-services/{PHI_PROBE_ID}", json=valid_request).status_code == 404
    assert client.get("/healthz").status_code == 200  # not a service call: not counted
    assert sample("b12_cds_requests_total", **labels) == before + 2
    assert sample("b12_cds_request_duration_seconds_count", service="b12-patient-view",
                  hook="patient-view") == before_hist + 2
    assert sample("b12_cds_requests_total", service="unknown", hook="unknown", status="404") == before_unknown + 1
    assert sample("b12_cds_cards_total", topic="folate-without-b12", indicator="warning") == before_cards + 1
    scraped = client.get("/metrics")
    assert scraped.status_code == 200 and scraped.mimetype == "text/plain"
    assert PHI_PROBE_ID not in scraped.get_data(as_text=True)


def test_label_values_are_bounded() -> None:
    assert metrics.topic_label("mma-testing") == "mma-testing"
    assert metrics.topic_label("<script>") == "other"
    assert metrics.indicator_label("hard-stop") == "other"
    before = sample("b12_cds_fhir_fetch_failures_total", status="other")
    metrics.record_fhir_failure("Patient/123 timed out")
    assert sample("b12_cds_fhir_fetch_failures_total", status="other") == before + 1
