"""What the service call reads from the FHIR data it is sent, through the Flask test client: a result's
comparator, date and plausibility, a symptom coded as an Observation value, a resource id that is not a
string, B12 products of unknown dose or not sent.

Each test here is a regression for a defect found in review, and failed before its fix.
"""

from __future__ import annotations

import json

from tests.support.fhir import b12_observation, deficient_b12, patient_view_request, searchset

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


def test_a_non_string_resource_id_is_not_echoed(client):
    bad = deficient_b12()
    bad["id"] = {"n": "Zebulon Quixotic"}
    response = post(client, patient_view_request(labs=searchset(bad)))
    assert response.status_code == 200  # left out and named, not a reason to refuse the request
    named = response.get_json()["extension"]["org.b12-neuro-cds.unreadable-resources"]
    assert [n["reference"] for n in named] == ["Observation/(no valid id)"]
    assert "Zebulon" not in response.get_data(as_text=True)


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
