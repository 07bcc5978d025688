"""Same cards with full, partial and no prefetch: the fetch path against a real FHIR server.

Every fixture patient is loaded into sekmet-fhir (a real R4 server started here, bearer-token
protected); each scenario request is then sent three ways through the HTTP API and the cards must
be identical in topic, indicator, summary and suggestions.
"""

from __future__ import annotations

import copy
import json
import statistics
import time
from typing import Any

import pytest

from cds_service import create_app
from fixtures.build_requests import load_patient, load_scenarios, request_for_scenario, service_id_for
from tests.support.project import EVALUATION_TIME
from tests.support.sekmet import start_sekmet, stop

SCENARIOS = load_scenarios()
TIMINGS_MS: list[float] = []


@pytest.fixture(scope="module")
def sekmet(tmp_path_factory):
    server = start_sekmet(tmp_path_factory.mktemp("sekmet-equivalence"))
    for slug in sorted({s["patient"] for s in SCENARIOS}):
        server.load_collection(load_patient(slug))
    yield server
    stop(server)


@pytest.fixture(scope="module")
def client(sekmet, tmp_path_factory):
    db = tmp_path_factory.mktemp("db") / "cds.db"
    app = create_app(
        {
            "TESTING": True,
            "EVALUATION_TIME": EVALUATION_TIME,
            "DATABASE_URL": f"sqlite:///{db}",
            "FHIR_SERVER_ALLOWLIST": sekmet.base_url,
            "FETCH_BUDGET_MS": 2000,
            "FETCH_CALL_TIMEOUT_MS": 2000,
        }
    )
    return app.test_client()


def card_signature(response) -> list[tuple[Any, ...]]:
    assert response.status_code == 200, response.get_data(as_text=True)
    cards = response.get_json()["cards"]
    return sorted(
        (
            c["source"]["topic"]["code"],
            c["indicator"],
            c["summary"],
            tuple(s["label"] for s in c.get("suggestions", ())),
        )
        for c in cards
    )


def with_fhir_server(request: dict[str, Any], sekmet, keep: set[str]) -> dict[str, Any]:
    body = copy.deepcopy(request)
    body["prefetch"] = {k: v for k, v in body["prefetch"].items() if k in keep}
    body["fhirServer"] = sekmet.base_url
    body["fhirAuthorization"] = {
        "access_token": sekmet.token,
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "patient/*.read",
        "subject": "b12-neuro-cds",
        "patient": body["context"]["patientId"],
    }
    return body


def post(client, scenario, body):
    return client.post(
        f"/cds-services/{service_id_for(scenario['hook'])}", data=json.dumps(body), content_type="application/json"
    )


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[f"{s['patient']}.{s['hook']}" for s in SCENARIOS])
def test_full_partial_and_no_prefetch_give_the_same_cards(client, sekmet, scenario):
    request = request_for_scenario(scenario)
    full = card_signature(post(client, scenario, request))
    partial_keys = {"patient", "labs", "procedures"}
    partial = card_signature(post(client, scenario, with_fhir_server(request, sekmet, partial_keys)))
    started = time.perf_counter()
    none = card_signature(post(client, scenario, with_fhir_server(request, sekmet, set())))
    TIMINGS_MS.append((time.perf_counter() - started) * 1000)
    assert partial == full
    assert none == full


def test_report_no_prefetch_timings(capsys):
    """Prints median and p95 request time for the no-prefetch path (a report, not a timed assertion)."""
    if len(TIMINGS_MS) < 2:
        pytest.skip("equivalence tests did not run")
    ordered = sorted(TIMINGS_MS)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    with capsys.disabled():
        print(
            f"\nno-prefetch request time over {len(ordered)} fixture requests: "
            f"median {statistics.median(ordered):.1f} ms, p95 {p95:.1f} ms"
        )
    assert ordered[0] > 0


def test_unreachable_server_with_missing_required_data_is_412(tmp_path):
    app = create_app(
        {
            "TESTING": True,
            "EVALUATION_TIME": EVALUATION_TIME,
            "DATABASE_URL": f"sqlite:///{tmp_path}/c.db",
            "FHIR_SERVER_ALLOWLIST": "http://127.0.0.1:9",
        }
    )
    scenario = SCENARIOS[0]
    body = copy.deepcopy(request_for_scenario(scenario))
    body["prefetch"] = {}
    body["fhirServer"] = "http://127.0.0.1:9/fhir"
    body["fhirAuthorization"] = {
        "access_token": "tok-never-echoed",
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "patient/*.read",
        "subject": "b12",
    }
    response = post(app.test_client(), scenario, body)
    assert response.status_code == 412
    text = response.get_data(as_text=True)
    assert "unreachable" in text and "tok-never-echoed" not in text


def test_non_allowlisted_fhir_server_is_treated_as_absent(client, sekmet):
    scenario = SCENARIOS[0]
    body = with_fhir_server(request_for_scenario(scenario), sekmet, set())
    body["fhirServer"] = "https://not-allowed.example.org/fhir"
    response = post(client, scenario, body)
    assert response.status_code == 412
    assert "no fhirServer" in response.get_json()["issue"][0]["diagnostics"]


def test_a_draft_order_naming_its_product_by_reference_is_read_from_the_fhir_server(client, sekmet):
    """Folic acid drafted as medicationReference -> Medication/<id>: the service reads the Medication."""
    scenario = next(s for s in SCENARIOS if s["patient"] == "edge-upper-258-pmoll" and s["hook"] == "order-select")
    body = copy.deepcopy(request_for_scenario(scenario))
    folic = {"resourceType": "Medication", "id": "folic-acid-5mg-product",
             "code": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "4511",
                                  "display": "folic acid"}]}}
    sekmet.load_collection({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": folic}]})
    for entry in body["context"]["draftOrders"]["entry"]:
        draft = entry["resource"]
        draft.pop("medicationCodeableConcept", None)
        draft["medicationReference"] = {"reference": "Medication/folic-acid-5mg-product"}
    with_server = with_fhir_server(body, sekmet, set(body["prefetch"]))
    assert [t for t, _, _, _ in card_signature(post(client, scenario, with_server))] == ["folate-without-b12"]
    # without a FHIR server to read it from, the order cannot be checked: 412 naming it, not silence
    response = post(client, scenario, body)
    assert response.status_code == 412 and "Medication reference" in response.get_data(as_text=True)
