"""The read pass: strict typed reading of the fields the rules use, per-resource fault isolation.

The mutation tests run every fixture scenario through the HTTP API twice: once clean, once with
defects injected into fields no rule reads (same cards expected), and once with one read field made
unusable (200, the resource named on every card, the urgent card kept).
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from cds_service import create_app
from cds_service.engine import UNREADABLE_EXTENSION
from cds_service.fhir.reader import read_resources
from cds_service.knowledge import load_knowledge
from tests.support.fhir import b12_observation, patient_view_request, searchset
from tests.support.project import PROJECT
from tests.support.scenarios import load_scenarios, request_for, scenario_id, service_url

KB = load_knowledge()
SCENARIOS = load_scenarios()
URL = "/cds-services/b12-patient-view"


def post(client: Any, url: str, body: Any) -> Any:
    return client.post(url, data=json.dumps(body), content_type="application/json")


def comparable(cards: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Cards without their per-response uuids (suggestion and card uuids are fresh on each call)."""
    out = []
    for card in cards:
        card = copy.deepcopy(card)
        card.pop("uuid", None)
        for suggestion in card.get("suggestions", ()):
            suggestion.pop("uuid", None)
        out.append(card)
    return sorted(out, key=lambda c: (c["source"]["topic"]["code"], c["summary"]))


def prefetch_resources(request: dict[str, Any]) -> list[dict[str, Any]]:
    """Every resource of the request's prefetch (Bundle entries and single resources), to mutate in place."""
    out = []
    for value in (request.get("prefetch") or {}).values():
        if isinstance(value, dict) and value.get("resourceType") == "Bundle":
            out.extend(e["resource"] for e in value.get("entry", ()))
        elif isinstance(value, dict):
            out.append(value)
    return out


# --- typed reading, unit level ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda r: r.pop("status"), "status"),
        (lambda r: r.update(status="finalx"), "status"),
        (lambda r: r.update(status="final "), "status"),
        (lambda r: r.update(effectiveDateTime="2026-13-45"), "effectiveDateTime"),
        (lambda r: r.update(effectiveDateTime="yesterday"), "effectiveDateTime"),
        (lambda r: r["valueQuantity"].update(value="150"), "valueQuantity.value"),
        (lambda r: r["valueQuantity"].update(value=True), "valueQuantity.value"),
        (lambda r: r["valueQuantity"].update(comparator="~"), "valueQuantity.comparator"),
        (lambda r: r["code"]["coding"].append({"system": "http://loinc.org", "code": 2132}),
         "code.coding[1].code"),
        (lambda r: r.update(subject="Patient/p1"), "subject"),
        (lambda r: r.update(referenceRange={"low": {"value": 200}}), "referenceRange"),
    ],
    ids=["no-status", "status-not-in-value-set", "status-with-space", "impossible-date", "date-as-words",
         "value-as-string", "value-as-boolean", "comparator-not-in-value-set", "code-as-number",
         "subject-as-string", "reference-range-not-an-array"],
)
def test_an_unusable_read_field_sets_the_resource_aside_naming_the_field(change: Callable, field: str) -> None:
    bad = b12_observation(150)
    change(bad)
    read = read_resources([bad], KB)
    assert read.resources == []
    [failure] = read.failures
    assert (failure.ref, failure.field, failure.concepts) == ("Observation/b12-1", field, frozenset({"b12-total"}))
    assert "finalx" not in failure.reason and "150" not in failure.reason  # never a value


@pytest.mark.parametrize(
    ("change", "counted"),
    [
        (lambda r: r.update(meta={"lastUpdated": "not a date"}), ["meta.lastUpdated"]),
        (lambda r: r.update(note="a string where an array belongs"), ["note"]),
        (lambda r: r.update(extension=[{"valueString": 1}]), ["extension"]),
        (lambda r: r.update(extension={"not": "an array"}), ["extension"]),
        (lambda r: r.update(text=5, identifier="x", performer={"bad": True}, vendorField=[None]),
         ["text", "identifier", "performer", "(unknown element)"]),
        (lambda r: r.update(_effectiveDateTime={"extension": "odd"}), []),  # nested content is not screened
        (lambda r: r["code"]["coding"][0].update(userSelected="yes", version=3), []),
        (lambda r: r.update(issued="yesterday"), ["issued"]),
    ],
    ids=["meta.lastUpdated", "note-as-string", "extension-without-url", "extension-as-object", "unknown-fields",
         "primitive-extension", "unread-coding-fields", "issued-as-words"],
)
def test_a_defect_in_a_field_no_rule_reads_is_no_error_and_is_counted(change: Callable, counted: list) -> None:
    bad = b12_observation(150)
    change(bad)
    read = read_resources([bad], KB)
    assert read.failures == [] and len(read.resources) == 1
    assert read.tolerated == [("Observation", name) for name in counted]


def test_an_unusable_fallback_date_is_ignored_and_counted() -> None:
    bad = b12_observation(150)
    bad["issued"] = "yesterday"
    read = read_resources([bad], KB)
    assert read.resources[0].issued is None and read.tolerated == [("Observation", "issued")]


def test_a_resource_whose_codes_map_to_nothing_is_skipped_unread_even_if_broken() -> None:
    glucose = b12_observation(5.4, "mmol/L", code="2345-7")
    del glucose["status"]
    read = read_resources([glucose], KB)
    assert (read.resources, read.failures, read.skipped) == ([], [], 1)


def test_a_draft_without_status_is_read_and_an_unreadable_draft_is_named() -> None:
    draft = {"resourceType": "MedicationRequest", "id": "d1", "intent": "order",
             "medicationCodeableConcept": {"text": "Folic acid 5 mg tablets"}}
    assert len(read_resources([], KB, [draft]).drafts) == 1
    draft["authoredOn"] = "today"
    [failure] = read_resources([], KB, [draft]).failures
    assert failure.is_draft and failure.field == "authoredOn" and "folic-acid" in failure.concepts


def test_condition_status_codes_are_checked_against_their_value_sets() -> None:
    condition = {"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p1"},
                 "code": {"coding": [{"system": "http://snomed.info/sct", "code": "20262006"}]},
                 "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                                "code": "activ"}]}}
    [failure] = read_resources([condition], KB).failures
    assert (failure.field, failure.reason) == ("clinicalStatus", "not in the required value set")


# --- through the API ----------------------------------------------------------------------------


def test_an_unreadable_b12_result_is_named_and_b12_absence_is_not_claimed(client) -> None:
    """A folate order with the only B12 result unreadable: folate-without-b12 must not say 'no B12'."""
    folate = {"resourceType": "MedicationRequest", "id": "fol-1", "status": "active", "intent": "order",
              "subject": {"reference": "Patient/p1"}, "authoredOn": "2026-10-20",
              "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                                                        "code": "4511"}]}}
    ataxia = {"resourceType": "Condition", "id": "ataxia-1", "subject": {"reference": "Patient/p1"},
              "onsetDateTime": "2026-10-22", "recordedDate": "2026-10-22",
              "code": {"coding": [{"system": "http://snomed.info/sct", "code": "20262006"}]}}
    clean = post(client, URL, patient_view_request(medicationRequests=searchset(folate),
                                                   conditions=searchset(ataxia))).get_json()
    assert "folate-without-b12" in {c["source"]["topic"]["code"] for c in clean["cards"]}
    b12 = b12_observation(150)
    del b12["status"]
    response = post(client, URL, patient_view_request(labs=searchset(b12), medicationRequests=searchset(folate),
                                                      conditions=searchset(ataxia)))
    assert response.status_code == 200
    body = response.get_json()
    topics = {c["source"]["topic"]["code"] for c in body["cards"]}
    assert "folate-without-b12" not in topics  # withheld: it would report the B12 result as absent
    assert "urgent-neuro-review" in topics  # still answers from the rest
    for card in body["cards"]:
        assert "Observation/b12-1 (B12 result: status missing)" in card["detail"].replace("\\", "")
    assert body["extension"][UNREADABLE_EXTENSION][0]["keyInput"] == "B12 result"


def test_data_about_another_patient_is_still_refused_even_in_an_unread_resource(client) -> None:
    glucose = b12_observation(5.4, "mmol/L", code="2345-7", patient_id="p2")
    response = post(client, URL, patient_view_request(labs=searchset(glucose)))
    assert response.status_code == 400 and "other than" in response.get_json()["issue"][0]["diagnostics"]


def test_check_command_lists_problems_and_exits_1(tmp_path) -> None:
    bad = b12_observation(150)
    bad["effectiveDateTime"] = "2026-13-45"
    bad["note"] = "text"
    path = tmp_path / "request.json"
    path.write_text(json.dumps(patient_view_request(labs=searchset(bad))))
    run = subprocess.run([sys.executable, "-m", "cds_service", "check", str(path)], capture_output=True, text=True,
                         cwd=PROJECT, timeout=60)
    assert run.returncode == 1, run.stderr
    assert "prefetch.labs.entry[0].resource Observation/b12-1 [left out: effectiveDateTime" in run.stdout
    assert "  effectiveDateTime:" in run.stdout and "  note:" in run.stdout
    clean = tmp_path / "clean.json"
    clean.write_text(json.dumps(patient_view_request(labs=searchset(b12_observation(150)))))
    ok = subprocess.run([sys.executable, "-m", "cds_service", "check", str(clean), "--json"], capture_output=True,
                        text=True, cwd=PROJECT, timeout=60)
    assert ok.returncode == 0 and json.loads(ok.stdout)["problems"] == 0


# --- mutation tests over every fixture scenario ----------------------------------------------------

UNREAD_DEFECTS: list[tuple[str, Callable[[dict[str, Any]], None]]] = [
    ("meta.lastUpdated", lambda r: r.update(meta={"lastUpdated": "last Tuesday"})),
    ("note-as-string", lambda r: r.update(note="see paper chart")),
    ("odd-extension", lambda r: r.update(extension=[{"valueInteger": "x"}, "not-an-object"])),
    ("unknown-and-wrong-shaped-fields", lambda r: r.update(text=1, identifier={"value": 2}, vendorField=[{}])),
    ("primitive-extensions", lambda r: r.update(_status={"extension": 5}, _id=[1])),
    ("issued-as-words", lambda r: r.update(issued="yesterday") if r["resourceType"] == "Observation"
     and any(k.startswith("effective") for k in r) else None),
]


def unusable(resource: dict[str, Any]) -> None:
    """Make one read field of the resource unusable, the way real data breaks."""
    if resource["resourceType"] == "Condition":
        resource["recordedDate"] = "yesterday"
    elif resource["resourceType"] == "Patient":
        resource["birthDate"] = "1950-13-01"
    elif resource["resourceType"] == "Medication":
        resource["form"] = "tablet"
    else:
        resource.pop("status", None)


@pytest.fixture(scope="module")
def api(tmp_path_factory) -> Any:
    tmp = tmp_path_factory.mktemp("read-pass")
    return create_app({"TESTING": True, "EVALUATION_TIME": "2026-11-01T12:00:00Z",
                       "DATABASE_URL": f"sqlite:///{tmp}/cds.db"}).test_client()


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[scenario_id(s) for s in SCENARIOS])
def test_defects_in_unread_fields_give_the_same_cards(api, scenario: dict[str, Any]) -> None:
    request = request_for(scenario)
    url = service_url(scenario["hook"])
    clean = post(api, url, request)
    mutated = copy.deepcopy(request)
    drafts = [e["resource"] for e in (mutated["context"].get("draftOrders") or {}).get("entry", ())]
    for resource in prefetch_resources(mutated) + drafts:
        for _, defect in UNREAD_DEFECTS:
            defect(resource)
    broken = post(api, url, mutated)
    assert broken.status_code == clean.status_code
    if clean.status_code == 200:
        assert comparable(broken.get_json()["cards"]) == comparable(clean.get_json()["cards"])
        assert UNREADABLE_EXTENSION not in broken.get_json().get("extension", {})


URGENT = [s for s in SCENARIOS if any(e["topic"] == "urgent-neuro-review" for e in s.get("expect", ()))]


def urgent_evidence(app: Any, request: dict[str, Any]) -> set[str]:
    """References the urgent finding rests on (its evidence), from the engine's findings."""
    from cds_service.protocol.request import parse_hook_request

    st = app.extensions["b12_cds"]
    service = next(s for s in st.services.values() if s.hook == request["hook"])
    evaluation = st.engine.evaluate(service, parse_hook_request(copy.deepcopy(request), service.hook))
    return {e.reference for f in evaluation.findings if f.family == "urgent-neuro-review"
            for e in f.evidence if e.reference}


@pytest.mark.parametrize("scenario", URGENT, ids=[scenario_id(s) for s in URGENT])
def test_one_unreadable_resource_is_named_and_the_urgent_card_kept(api, scenario: dict[str, Any]) -> None:
    request = request_for(scenario)
    url = service_url(scenario["hook"])
    evidence = urgent_evidence(api.application, request)
    assert evidence, "the urgent finding lists its evidence"
    # always one extra: a second B12 result whose status is missing (a key input of several families)
    extra = copy.deepcopy(b12_observation(150, patient_id=request["context"]["patientId"], oid="extra-b12"))
    del extra["status"]
    request["prefetch"]["labs"].setdefault("entry", []).append({"resource": extra})
    tried = 0
    for index, resource in enumerate(prefetch_resources(request)):
        ref = f"{resource['resourceType']}/{resource.get('id')}"
        if ref in evidence or resource["resourceType"] == "Patient":
            continue  # the urgent finding's own evidence: without it the card may rightly change
        mutated = copy.deepcopy(request)
        if ref != "Observation/extra-b12":
            unusable(prefetch_resources(mutated)[index])
            mutated["prefetch"]["labs"]["entry"].pop()  # one unreadable resource at a time
        response = post(api, url, mutated)
        assert response.status_code == 200, (ref, response.get_data(as_text=True))
        body = response.get_json()
        named = body.get("extension", {}).get(UNREADABLE_EXTENSION, [])
        if not named:
            continue  # its codes map to nothing the rules read: left out silently, as designed
        tried += 1
        assert [n["reference"] for n in named] == [ref]
        cards = body["cards"]
        assert any(c["source"]["topic"]["code"] == "urgent-neuro-review" for c in cards), ref
        for card in cards:
            assert ref in card.get("detail", "").replace("\\", ""), (ref, card["source"]["topic"]["code"])
    assert tried, "no resource of this scenario could be made unreadable"


def test_read_outcomes_and_ignored_defects_are_counted_in_metrics(client) -> None:
    from prometheus_client import REGISTRY

    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    before = (sample("b12_cds_fhir_field_defects_total", resource_type="Observation", field="note"),
              sample("b12_cds_fhir_resources_read_total", outcome="unreadable"),
              sample("b12_cds_fhir_resources_read_total", outcome="skipped"))
    noted = b12_observation(150)
    noted["note"] = "a string"
    broken = b12_observation(150, oid="b12-2")
    del broken["status"]
    glucose = b12_observation(5.4, "mmol/L", code="2345-7", oid="glu-1")
    assert post(client, URL, patient_view_request(labs=searchset(noted, broken, glucose))).status_code == 200
    after = (sample("b12_cds_fhir_field_defects_total", resource_type="Observation", field="note"),
             sample("b12_cds_fhir_resources_read_total", outcome="unreadable"),
             sample("b12_cds_fhir_resources_read_total", outcome="skipped"))
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 1, 1]


def test_an_order_under_review_that_cannot_be_read_is_a_412_not_a_silent_safe(client) -> None:
    draft = {"resourceType": "MedicationRequest", "id": "draft-1", "status": "draft", "intent": "order",
             "subject": {"reference": "Patient/p1"}, "authoredOn": "today",
             "medicationCodeableConcept": {"text": "Folic acid 5 mg tablets"}}
    body = patient_view_request()
    body["hook"] = "order-sign"
    body["context"]["draftOrders"] = {"resourceType": "Bundle", "entry": [{"resource": draft}]}
    response = post(client, "/cds-services/b12-order-sign", body)
    assert response.status_code == 412
    assert "MedicationRequest/draft-1" in response.get_json()["issue"][0]["diagnostics"]
    draft["authoredOn"] = "2026-10-30"
    assert post(client, "/cds-services/b12-order-sign", body).status_code == 200


def test_an_unreadable_medication_says_which_product_it_could_have_been() -> None:
    medication = {"resourceType": "Medication", "id": "med-1", "form": "tablet",
                  "code": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "4511"}],
                           "text": "folic acid 5 MG Oral Tablet"}}
    [failure] = read_resources([medication], KB).failures
    assert (failure.ref, failure.field, "folic-acid" in failure.concepts) == ("Medication/med-1", "form", True)
    assert read_resources([{"resourceType": "Medication", "id": "m2"}], KB).resources  # no code: still read


@pytest.mark.parametrize(("overrides", "validates"), [
    ({"TESTING": True}, True),
    ({"LOG_LEVEL": "DEBUG"}, True),
    ({}, False),  # the card builder is the only producer: not re-checked on every production call
])
def test_responses_are_schema_checked_in_tests_and_debug_runs_only(tmp_path, overrides, validates) -> None:
    app = create_app({"EVALUATION_TIME": "2026-11-01T12:00:00Z", "DATABASE_URL": f"sqlite:///{tmp_path}/c.db",
                      **overrides})
    assert app.extensions["b12_cds"].engine.validate_responses is validates


# --- property: arbitrary values in the read fields of resources that matter ------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_LEAVES = (st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12))  # JSON: no NaN or Infinity
_VALUES = st.recursive(_LEAVES, lambda inner: st.lists(inner, max_size=3)
                       | st.dictionaries(st.sampled_from(["value", "unit", "code", "system", "coding", "start",
                                                          "reference", "text", "display", "high", "low"]),
                                         inner, max_size=4), max_leaves=12)
_FOLATE = {"resourceType": "MedicationRequest", "id": "fol-1", "status": "active", "intent": "order",
           "subject": {"reference": "Patient/p1"}, "authoredOn": "2026-10-20",
           "medicationReference": {"reference": "#m"},
           "contained": [{"resourceType": "Medication", "id": "m", "code": {"coding": [
               {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "4511"}]}}],
           "dosageInstruction": [{"timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
                                  "doseAndRate": [{"doseQuantity": {"value": 5, "unit": "mg"}}]}]}
_READ_FIELDS = {
    "Observation": ["status", "code", "effectiveDateTime", "effectivePeriod", "issued", "valueQuantity",
                    "valueString", "valueCodeableConcept", "valueBoolean", "interpretation", "referenceRange", "id"],
    "MedicationRequest": ["status", "medicationReference", "contained", "dosageInstruction", "authoredOn",
                          "dispenseRequest", "medicationCodeableConcept", "id"],
}


@given(which=st.sampled_from(sorted(_READ_FIELDS)), data=st.data())
@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
def test_any_value_in_a_read_field_is_a_200_never_a_400_or_500(api: Any, which: str, data: Any) -> None:
    resource = b12_observation(150) if which == "Observation" else copy.deepcopy(_FOLATE)
    for name in data.draw(st.lists(st.sampled_from(_READ_FIELDS[which]), min_size=1, max_size=3, unique=True)):
        resource[name] = data.draw(_VALUES)
    key = "labs" if which == "Observation" else "medicationRequests"
    response = api.post(URL, data=json.dumps(patient_view_request(**{key: searchset(resource)})),
                        content_type="application/json")
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    body = response.get_json()
    for item in body.get("extension", {}).get(UNREADABLE_EXTENSION, []):
        for card in body["cards"]:
            assert item["reference"] in card["detail"].replace("\\", "")



def test_an_order_whose_check_depends_on_an_unreadable_b12_result_is_a_412_not_a_silent_safe(client) -> None:
    folate = {"resourceType": "MedicationRequest", "id": "draft-fol", "status": "draft", "intent": "order",
              "subject": {"reference": "Patient/p1"},
              "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                                                        "code": "4511"}]}}
    broken = b12_observation(150)
    del broken["status"]
    body = patient_view_request(labs=searchset(broken))
    body["hook"] = "order-sign"
    body["context"]["draftOrders"] = {"resourceType": "Bundle", "entry": [{"resource": folate}]}
    response = post(client, "/cds-services/b12-order-sign", body)
    assert response.status_code == 412, response.get_data(as_text=True)
    assert "Observation/b12-1 (B12 result: status missing)" in response.get_json()["issue"][0]["diagnostics"]
    body["prefetch"]["labs"] = searchset(b12_observation(150))  # the same result, readable: answered
    assert post(client, "/cds-services/b12-order-sign", body).status_code == 200
