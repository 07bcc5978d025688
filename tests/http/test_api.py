"""Every status code the HTTP layer defines, through real calls on the Flask test client."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cds_service import create_app
from tests.support.fhir import OMIT, b12_observation, patient_view_request, searchset

URL = "/cds-services/b12-patient-view"


def post(client, url: str, body: Any, content_type: str = "application/json"):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(url, data=data, content_type=content_type)


def assert_outcome(response, status: int, *fragments: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome"
    issue = body["issue"][0]
    assert issue["severity"] == "error" and issue["code"]
    for fragment in fragments:
        assert fragment in issue["diagnostics"], issue["diagnostics"]
    return issue


def test_discovery_lists_every_service_with_its_hook_and_prefetch(client):
    response = client.get("/cds-services")
    assert response.status_code == 200
    services = {s["id"]: s for s in response.get_json()["services"]}
    assert {"b12-patient-view": "patient-view", "b12-order-select": "order-select",
            "b12-order-sign": "order-sign"} == {k: v["hook"] for k, v in services.items()}
    for service in services.values():
        assert service["description"] and service["title"]
        assert "{{context.patientId}}" in service["prefetch"]["labs"]
        assert "families" not in service  # internal field stays internal


def test_patient_view_with_full_prefetch_returns_cards_array(client, valid_request):
    response = post(client, URL, valid_request)
    assert response.status_code == 200
    assert response.get_json() == {"cards": []}


def test_malformed_json_is_400(client):
    assert_outcome(post(client, URL, "{not json"), 400, "malformed JSON")


def test_json_that_is_not_an_object_is_400(client):
    assert_outcome(post(client, URL, "[1, 2]"), 400, "JSON object")


def test_empty_body_is_400(client):
    assert_outcome(post(client, URL, b""), 400, "empty")


def test_wrong_hook_for_the_service_is_400(client, valid_request):
    valid_request["hook"] = "order-sign"
    issue = assert_outcome(post(client, URL, valid_request), 400, "order-sign", "patient-view")
    assert issue["expression"] == ["hook"]


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda r: r.pop("hookInstance"), "hookInstance"),
        (lambda r: r.update(hookInstance="not-a-uuid"), "hookInstance"),
        (lambda r: r.pop("context"), "context"),
        (lambda r: r["context"].pop("patientId"), "context.patientId"),
        (lambda r: r["context"].update(patientId="Patient/p1"), "context.patientId"),
        (lambda r: r["context"].update(userId="example"), "context.userId"),
        (lambda r: r.update(fhirServer="https://ehr.example.org/fhir",
                            fhirAuthorization={"acces_token": "t", "token_type": "Bearer", "expires_in": 300,
                                               "scope": "patient/*.read", "subject": "b12"}),
         "fhirAuthorization.acces_token"),
        (lambda r: r.update(fhirServer="ftp://ehr.example.org/fhir"), "fhirServer"),
        (lambda r: r.update(fhirAuthorization={"access_token": "t", "token_type": "Bearer", "expires_in": 300,
                                               "scope": "patient/*.read", "subject": "b12"}), "fhirServer"),
        (lambda r: r.update(fhirServer="https://ehr.example.org/fhir",
                            fhirAuthorization={"access_token": "t", "token_type": "MAC", "expires_in": 300,
                                               "scope": "patient/*.read", "subject": "b12"}), "token_type"),
    ],
    ids=["no-hookInstance", "bad-uuid", "no-context", "no-patientId", "patientId-as-reference",
         "userId-not-reference", "unknown-auth-field", "non-http-fhirServer", "auth-without-fhirServer",
         "bad-token-type"],
)
def test_invalid_request_fields_are_400_naming_the_field(client, valid_request, mutate, fragment):
    mutate(valid_request)
    assert_outcome(post(client, URL, valid_request), 400, fragment)


def test_unknown_top_level_fields_are_answered_and_logged_by_name_only(client, valid_request, caplog):
    """An EHR's vendor field or a later spec version's member must not silence the answer."""
    valid_request["com.epic.vendorField"] = {"secret": "Zebulon Quixotic"}
    valid_request["surprise"] = 1
    with caplog.at_level("INFO", logger="cds_service.api"):
        response = post(client, URL, valid_request)
    assert response.status_code == 200 and response.get_json() == {"cards": []}
    logged = [r for r in caplog.records if r.getMessage() == "service evaluated"]
    assert logged[-1].fields["ignored_fields"] == ["com.epic.vendorField", "surprise"]
    assert "Zebulon" not in caplog.text


def test_patient_scoped_token_for_another_patient_is_400(client, valid_request):
    valid_request["fhirServer"] = "https://ehr.example.org/fhir"
    valid_request["fhirAuthorization"] = {"access_token": "secret-token-xyz", "token_type": "Bearer",
                                          "expires_in": 300, "scope": "patient/*.read", "subject": "b12",
                                          "patient": "someone-else"}
    response = post(client, URL, valid_request)
    assert_outcome(response, 400, "fhirAuthorization.patient")
    assert "secret-token-xyz" not in response.get_data(as_text=True)


def test_order_select_requires_selections_and_draft_orders(client, valid_request):
    valid_request["hook"] = "order-select"
    assert_outcome(post(client, "/cds-services/b12-order-select", valid_request), 400,
                   "context.selections", "context.draftOrders")


# A regression found in review: this test failed before its fix.
def test_selections_must_name_draft_orders(client):
    body = patient_view_request()
    body["hook"] = "order-select"
    body["context"]["draftOrders"] = {"resourceType": "Bundle", "entry": [
        {"resource": {"resourceType": "MedicationRequest", "id": "d1", "status": "draft",
                      "subject": {"reference": "Patient/p1"}}}]}
    body["context"]["selections"] = ["MedicationRequest/not-there"]
    response = post(client, "/cds-services/b12-order-select", body)
    assert response.status_code == 400
    assert "not-there" in response.get_json()["issue"][0]["diagnostics"]


def test_unknown_service_is_404(client, valid_request):
    assert_outcome(post(client, "/cds-services/no-such-service", valid_request), 404, "no-such-service")


def test_unknown_path_is_404_json_not_html(client):
    assert_outcome(client.get("/nowhere"), 404, "GET /cds-services")


def test_wrong_method_is_405_json(client):
    response = client.get(URL)
    assert_outcome(response, 405)
    assert "POST" in response.headers["Allow"]


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
def test_wrong_content_type_is_415(client, valid_request, content_type):
    assert_outcome(post(client, URL, valid_request, content_type=content_type), 415, "application/json")


def test_fhir_json_content_type_is_accepted(client, valid_request):
    assert post(client, URL, valid_request, content_type="application/fhir+json").status_code == 200


def test_oversize_body_is_413(app_config, valid_request):
    client = create_app({**app_config, "MAX_BODY_BYTES": 2048}).test_client()
    valid_request["prefetch"]["patient"]["text"] = {"status": "generated", "div": "x" * 5000}
    assert_outcome(post(client, URL, valid_request), 413, "CDS_MAX_BODY_BYTES")


@pytest.mark.parametrize("missing", [("labs",), ("conditions", "medicationRequests")])
def test_missing_required_prefetch_without_fhir_server_is_412_naming_keys(client, missing):
    body = patient_view_request(**{key: OMIT for key in missing})
    issue = assert_outcome(post(client, URL, body), 412, *[f"'{k}'" for k in missing])
    assert issue["expression"] == [f"prefetch.{k}" for k in missing]


def test_operation_outcome_for_a_required_key_is_412(client):
    outcome = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "timeout"}]}
    assert_outcome(post(client, URL, patient_view_request(labs=outcome)), 412, "'labs'", "error")


# A regression found in review: this test failed before its fix.
def test_an_order_whose_product_cannot_be_read_is_a_412_not_silence(client):
    body = patient_view_request(labs=searchset(b12_observation(300, "pmol/L", code="14685-2")))
    body["hook"] = "order-sign"
    body["context"]["draftOrders"] = {"resourceType": "Bundle", "entry": [
        {"resource": {"resourceType": "MedicationRequest", "id": "d1", "status": "draft", "intent": "order",
                      "subject": {"reference": "Patient/p1"},
                      "medicationReference": {"reference": "Medication/not-sent"}}}]}
    response = post(client, "/cds-services/b12-order-sign", body)
    assert response.status_code == 412
    assert "MedicationRequest/d1" in response.get_json()["issue"][0]["diagnostics"]
    # with the product contained, the same order is checked normally
    entry = body["context"]["draftOrders"]["entry"][0]["resource"]
    entry["contained"] = [{"resourceType": "Medication", "id": "m", "code": {"coding": [
        {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "7646"}]}}]  # omeprazole
    entry["medicationReference"] = {"reference": "#m"}
    assert post(client, "/cds-services/b12-order-sign", body).status_code == 200


def test_null_and_empty_bundle_mean_no_data_not_missing(client):
    body = patient_view_request(labs=None)
    assert post(client, URL, body).status_code == 200


def test_missing_optional_prefetch_key_is_answered(client):
    assert post(client, URL, patient_view_request(procedures=OMIT, patient=OMIT)).status_code == 200


def test_used_resource_with_an_unusable_read_field_is_left_out_and_named_not_a_400(client):
    bad = b12_observation(150)
    bad["effectiveDateTime"] = "2026-13-45"
    response = post(client, URL, patient_view_request(labs=searchset(bad)))
    assert response.status_code == 200
    named = response.get_json()["extension"]["org.b12-neuro-cds.unreadable-resources"]
    assert named == [{"reference": "Observation/b12-1", "resourceType": "Observation", "keyInput": "B12 result",
                      "field": "effectiveDateTime", "reason": "not a valid FHIR value of its type"}]
    assert "2026-13-45" not in response.get_data(as_text=True)  # the value is never echoed


def test_unused_invalid_resource_is_ignored_not_validated(client):
    """An Observation the rules cannot use (no code) is not validated: it cannot change the advice."""
    useless = b12_observation(150)
    del useless["code"]
    assert post(client, URL, patient_view_request(labs=searchset(useless))).status_code == 200


def test_prefetch_value_that_is_not_a_resource_is_400(client):
    assert_outcome(post(client, URL, patient_view_request(labs="nope")), 400, "prefetch.labs")


def test_data_about_another_patient_is_refused(client):
    other = b12_observation(150, patient_id="p2")
    assert_outcome(post(client, URL, patient_view_request(labs=searchset(other))), 400, "other than")


def test_cors_preflight_allows_authorization_and_content_type(client):
    response = client.options(URL, headers={"Origin": "https://ehr.example.org",
                                            "Access-Control-Request-Method": "POST"})
    assert response.status_code == 200
    assert "Authorization" in response.headers["Access-Control-Allow-Headers"]
    assert "Content-Type" in response.headers["Access-Control-Allow-Headers"]
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_cors_allowlist_echoes_only_listed_origins(app_config):
    client = create_app({**app_config, "CORS_ORIGINS": "https://ehr.example.org"}).test_client()
    ok = client.get("/cds-services", headers={"Origin": "https://ehr.example.org"})
    assert ok.headers["Access-Control-Allow-Origin"] == "https://ehr.example.org"
    other = client.get("/cds-services", headers={"Origin": "https://evil.example.com"})
    assert "Access-Control-Allow-Origin" not in other.headers


def test_health_and_readiness(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["checks"]["database"] is True


def test_readiness_fails_when_database_is_unreachable(app_config, tmp_path):
    app = create_app(app_config)
    app.extensions["b12_cds"].db.dispose()
    (tmp_path / "cds.db").unlink()
    (tmp_path / "cds.db").mkdir()  # a directory where the database file should be
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["database"] is False


def test_a_bug_is_a_500_outcome_without_details(app, valid_request, monkeypatch):
    def explode(*_args, **_kwargs):
        raise RuntimeError("secret patient detail")

    monkeypatch.setattr(app.extensions["b12_cds"].engine, "evaluate", explode)
    response = post(app.test_client(), URL, valid_request)
    issue = assert_outcome(response, 500, "internal error")
    assert "secret patient detail" not in issue["diagnostics"]


def test_openapi_document_is_served(client):
    response = client.get("/openapi.yaml")
    assert response.status_code == 200
    assert b"openapi:" in response.data


def test_too_many_prefetch_entries_is_413(app_config):
    client = create_app({**app_config, "MAX_PREFETCH_ENTRIES": 3}).test_client()
    body = patient_view_request(labs=searchset(*(b12_observation(300, oid=f"o{i}") for i in range(4))))
    assert_outcome(post(client, URL, body), 413, "CDS_MAX_PREFETCH_ENTRIES")


def test_missing_labs_still_answer_urgent_neuro_findings_from_what_is_there(client):
    """Degraded mode: labs unobtainable, but a new SCD code with nitrous oxide exposure is urgent."""
    scd = {"resourceType": "Condition", "id": "scd-1", "subject": {"reference": "Patient/p1"},
           "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                          "code": "active"}]},
           "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "G32.0"}]},
           "onsetDateTime": "2026-10-20"}
    n2o = {"resourceType": "Condition", "id": "n2o-1", "subject": {"reference": "Patient/p1"},
           "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "F18.10"}]},
           "onsetDateTime": "2026-09-01"}
    response = post(client, URL, patient_view_request(labs=OMIT, conditions=searchset(scd, n2o)))
    assert response.status_code == 200, response.get_data(as_text=True)
    cards = response.get_json()["cards"]
    assert {c["source"]["topic"]["code"] for c in cards} == {"urgent-neuro-review"}
    assert all(c["indicator"] == "critical" for c in cards)
    assert all("laboratory results" in c["detail"] for c in cards)  # the unavailable input is named
