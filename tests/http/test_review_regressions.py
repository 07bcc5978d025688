"""Regressions for defects found in review: each test failed before its fix."""

from __future__ import annotations

import json
from datetime import timedelta

from cds_service.cards.identity import IDENTITY_EXTENSION
from tests.support.fhir import b12_observation, patient_view_request, searchset
from tests.support.project import EVALUATION_TIME

URL = "/cds-services/b12-patient-view"
SUBJECT = {"reference": "Patient/p1"}
ATAXIA = {"resourceType": "Condition", "id": "ataxia-1", "subject": SUBJECT, "onsetDateTime": "2026-10-22",
          "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                         "code": "active"}]},
          "code": {"coding": [{"system": "http://snomed.info/sct", "code": "20262006", "display": "Ataxia"}]}}


def post(client, body, url=URL):
    return client.post(url, data=json.dumps(body), content_type="application/json")


def topics(response) -> dict[str, str]:
    assert response.status_code == 200, response.get_data(as_text=True)
    return {c["source"]["topic"]["code"]: c["indicator"] for c in response.get_json()["cards"]}


def deficient_b12(**kw):
    return b12_observation(90, "pmol/L", code="14685-2", date="2026-10-22T09:00:00Z", **kw)


def test_a_b12_product_of_unknown_dose_never_silences_a_deficient_result_with_red_flags(client):
    multivitamin = {"resourceType": "MedicationStatement", "id": "ms-1", "status": "active", "subject": SUBJECT,
                    "effectivePeriod": {"start": "2026-08-01"},
                    "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                                                              "code": "11248"}],
                                                  "text": "Cyanocobalamin 50 microgram tablet"},
                    "dosage": [{"text": "1 tablet daily", "doseAndRate": [{"doseQuantity": {"value": 1,
                                                                                            "unit": "tablet"}}]}]}
    body = patient_view_request(labs=searchset(deficient_b12()), conditions=searchset(ATAXIA),
                                medicationStatements=searchset(multivitamin))
    assert topics(post(client, body)).get("urgent-neuro-review") == "critical"


def test_a_result_above_a_low_bound_is_not_called_deficient(client):
    result = deficient_b12()
    result["valueQuantity"]["comparator"] = ">"
    result["valueQuantity"]["value"] = 100
    assert "b12-untreated" not in topics(post(client, patient_view_request(labs=searchset(result))))


def test_out_of_range_dates_are_unusable_not_a_500(client):
    odd = deficient_b12()
    odd["effectiveDateTime"] = "0001-01-01T00:00:00+05:00"
    condition = dict(ATAXIA, onsetDateTime="9999-12-31T23:59:59-14:00")
    response = post(client, patient_view_request(labs=searchset(odd), conditions=searchset(condition)))
    assert response.status_code in (200, 400)


def test_absurd_values_are_reported_as_uninterpretable_not_a_500(client):
    huge = deficient_b12()
    huge["valueQuantity"]["value"] = 2e28
    response = post(client, patient_view_request(labs=searchset(huge)))
    assert response.status_code == 200
    assert "plausible range" in json.dumps(response.get_json())


def test_a_symptom_recorded_as_an_observation_value_is_read(client):
    symptom = {"resourceType": "Observation", "id": "sym-1", "status": "final", "subject": SUBJECT,
               "effectiveDateTime": "2026-10-22T09:00:00Z",
               "code": {"coding": [{"system": "http://loinc.org", "code": "75325-1"}], "text": "Symptom"},
               "valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct", "code": "20262006"}]}}
    found = topics(post(client, patient_view_request(labs=searchset(deficient_b12(), symptom))))
    assert found.get("urgent-neuro-review") == "critical"


def test_selections_must_name_draft_orders(client):
    body = patient_view_request()
    body["hook"] = "order-select"
    body["context"]["draftOrders"] = {"resourceType": "Bundle", "entry": [
        {"resource": {"resourceType": "MedicationRequest", "id": "d1", "status": "draft",
                      "subject": SUBJECT}}]}
    body["context"]["selections"] = ["MedicationRequest/not-there"]
    response = post(client, body, "/cds-services/b12-order-select")
    assert response.status_code == 400
    assert "not-there" in response.get_json()["issue"][0]["diagnostics"]


def test_a_non_string_resource_id_is_not_echoed(client):
    bad = deficient_b12()
    bad["id"] = {"n": "Zebulon Quixotic"}
    response = post(client, patient_view_request(labs=searchset(bad)))
    assert response.status_code == 400
    assert "Zebulon" not in response.get_data(as_text=True)


def _override(client, card_uuid, when, url=f"{URL}/feedback"):
    item = {"card": card_uuid, "outcome": "overridden", "outcomeTimestamp": when}
    return client.post(url, data=json.dumps({"feedback": [item]}), content_type="application/json")


def test_a_future_override_timestamp_cannot_suppress_for_ever(app_config):
    from datetime import datetime

    from cds_service import create_app

    body = patient_view_request(labs=searchset(deficient_b12()))
    early = create_app({**app_config, "SUPPRESSION_DAYS": "b12-untreated=14"}).test_client()
    card = next(c for c in post(early, body).get_json()["cards"] if c["source"]["topic"]["code"] == "b12-untreated")
    assert _override(early, card["uuid"], "2099-01-01T00:00:00Z").status_code == 200
    # the override counts as received now (the wall clock), so 15 days after it the card is back
    later = (datetime.now().astimezone() + timedelta(days=15)).isoformat()
    late = create_app({**app_config, "EVALUATION_TIME": later, "SUPPRESSION_DAYS": "b12-untreated=14"})
    cards = post(late.test_client(), body).get_json()["cards"]
    assert any(c["extension"][IDENTITY_EXTENSION]["identity"] == card["extension"][IDENTITY_EXTENSION]["identity"]
               for c in cards)


def test_feedback_sent_to_another_service_does_not_suppress_this_ones_cards(client):
    body = patient_view_request(labs=searchset(deficient_b12()))
    card = post(client, body).get_json()["cards"][0]
    assert _override(client, card["uuid"], EVALUATION_TIME, "/cds-services/b12-order-sign/feedback").status_code == 200
    assert len(post(client, body).get_json()["cards"]) >= 1


def test_feedback_with_an_unrepresentable_time_or_overlong_id_is_400(client):
    assert _override(client, "c1", "0001-01-01T00:00:00+05:00").status_code == 400
    assert _override(client, "x" * 129, EVALUATION_TIME).status_code == 400


def test_a_medication_whose_product_was_not_sent_is_named_on_the_cards(client):
    unresolved = {"resourceType": "MedicationRequest", "id": "mr-ref", "status": "active", "intent": "order",
                  "subject": SUBJECT, "medicationReference": {"reference": "Medication/not-sent"}}
    body = patient_view_request(labs=searchset(deficient_b12()), medicationRequests=searchset(unresolved))
    cards = post(client, body).get_json()["cards"]
    assert cards and all("MedicationRequest/mr-ref" in c["detail"] for c in cards)


def test_a_result_stamped_a_few_hours_after_now_still_counts(client):
    skewed = b12_observation(90, "pmol/L", code="14685-2", date="2026-11-01T09:00:00-05:00")  # 14:00 UTC
    assert "b12-untreated" in topics(post(client, patient_view_request(labs=searchset(skewed))))


def test_a_b12_result_without_any_date_is_reported_not_dropped(client):
    undated = deficient_b12()
    del undated["effectiveDateTime"]
    cards = post(client, patient_view_request(labs=searchset(undated))).get_json()["cards"]
    assert [c["source"]["topic"]["code"] for c in cards] == ["b12-untreated"]
    assert "90" in cards[0]["detail"] and "no date" in cards[0]["summary"]


def test_an_order_whose_product_cannot_be_read_is_a_412_not_silence(client):
    body = patient_view_request(labs=searchset(b12_observation(300, "pmol/L", code="14685-2")))
    body["hook"] = "order-sign"
    body["context"]["draftOrders"] = {"resourceType": "Bundle", "entry": [
        {"resource": {"resourceType": "MedicationRequest", "id": "d1", "status": "draft", "intent": "order",
                      "subject": SUBJECT, "medicationReference": {"reference": "Medication/not-sent"}}}]}
    response = post(client, body, "/cds-services/b12-order-sign")
    assert response.status_code == 412
    assert "MedicationRequest/d1" in response.get_json()["issue"][0]["diagnostics"]
    # with the product contained, the same order is checked normally
    entry = body["context"]["draftOrders"]["entry"][0]["resource"]
    entry["contained"] = [{"resourceType": "Medication", "id": "m", "code": {"coding": [
        {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "7646"}]}}]  # omeprazole
    entry["medicationReference"] = {"reference": "#m"}
    assert post(client, body, "/cds-services/b12-order-sign").status_code == 200
