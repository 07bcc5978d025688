"""Clinical scenarios end to end: fixture patient -> CDS Hooks request -> HTTP API -> cards.

Each scenario in fixtures/scenarios.json states the exact multiset of (topic, indicator) cards that
shared/clinical-reference.md section 4 implies for one patient and hook (an empty list means the
service must stay silent). Expectations are written independently of the rule code; see
fixtures/make_fixtures.py for the reasoning behind every case.

Besides the cards themselves a scenario may state: per card `detailMentions` (strings its detail
contains) and `detailOmits` (strings neither its summary nor its detail contains); per response
`suggestOnce` (words found in exactly one suggestion label) and `suggestNever` (words in no label).
Every response is also held to 4.6 D1: at most one B12-state card, no suggestion label twice, and
oral and IM B12 offered in one card only as exclusive choices (`selectionBehavior: at-most-one`).
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class

from tests.support.project import EVALUATION_TIME, FIXTURES
from tests.support.scenarios import (
    TOPIC_SYSTEM,
    card_multiset,
    describe_cards,
    expected_multiset,
    iter_resources,
    load_json,
    load_patient,
    load_scenarios,
    mentions,
    request_for,
    scenario_id,
    service_url,
)

SCENARIOS = load_scenarios()
B12_STATE_TOPICS = {"urgent-neuro-review", "b12-untreated", "mma-testing", "b12-testing"}  # 4.6 D1
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
B12_PRODUCTS = {"5514", "11248"}  # hydroxocobalamin (IM), cyanocobalamin (oral): exclusive alternatives
FAMILIES = {"mma-testing", "folate-without-b12", "urgent-neuro-review", "b12-untreated", "nitrous-oxide-risk",
            "b12-testing"}
HOOK_FAMILIES = {
    hook: set(load_json(path)["families"])
    for path in sorted((FIXTURES.parent / "hooks").glob("*.json"))
    for hook in [load_json(path)["hook"]]
}


@pytest.fixture(scope="module")
def scenario_client(tmp_path_factory: pytest.TempPathFactory):
    from cds_service import create_app  # imported here so the fixture checks below run without the app

    db = tmp_path_factory.mktemp("scenarios") / "t.db"
    app = create_app({"TESTING": True, "EVALUATION_TIME": EVALUATION_TIME, "DATABASE_URL": f"sqlite:///{db}"})
    return app.test_client()


# --- the scenarios -------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[scenario_id(s) for s in SCENARIOS])
def test_scenario(scenario: dict[str, Any], scenario_client) -> None:
    response = scenario_client.post(service_url(scenario["hook"]), json=request_for(scenario))
    assert response.status_code == 200, response.get_data(as_text=True)[:2000]
    cards = response.get_json()["cards"]

    expected = expected_multiset(scenario["expect"])
    assert card_multiset(cards) == expected, (
        f"{scenario['description']}\nexpected {sorted(expected.elements()) or 'silence'}, got:\n"
        f"{describe_cards(cards)}"
    )
    for card in cards:
        topic = card["source"]["topic"]
        assert topic["system"] == TOPIC_SYSTEM
    for item in scenario["expect"]:
        for card in (c for c in cards if c["source"]["topic"]["code"] == item["topic"]):
            for needle in item.get("detailMentions", ()):
                assert mentions(card.get("detail"), needle), (
                    f"{item['topic']} card detail does not mention {needle!r} (triggering value as "
                    f"received):\n{card.get('detail')}"
                )
            for needle in item.get("detailOmits", ()):
                text = f"{card.get('summary', '')}\n{card.get('detail', '')}"
                assert not mentions(text, needle), (
                    f"{item['topic']} card must not say {needle!r}:\n{text}"
                )
    assert_suggestions_are_safe(scenario, request_for(scenario), cards)
    assert_one_answer_per_problem(scenario, cards)


def suggestion_labels(cards: list[dict]) -> list[str]:
    return [s.get("label", "") for c in cards for s in c.get("suggestions", [])]


def b12_products_offered(suggestion: dict[str, Any]) -> set[str]:
    codes = set()
    for action in suggestion.get("actions", []):
        resource = action.get("resource") or {}
        if action.get("type") == "create" and resource.get("resourceType") == "MedicationRequest":
            for coding in (resource.get("medicationCodeableConcept") or {}).get("coding", []):
                if coding.get("system") == RXNORM and coding.get("code") in B12_PRODUCTS:
                    codes.add(coding["code"])
    return codes


def assert_one_answer_per_problem(scenario: dict[str, Any], cards: list[dict]) -> None:
    """clinical-reference 4.6 D1, on every response, plus the scenario's own suggestion checks."""
    state = [c["source"]["topic"]["code"] for c in cards if c["source"]["topic"]["code"] in B12_STATE_TOPICS]
    assert len(state) <= 1, f"more than one B12-state card (4.6 D1): {state}\n{describe_cards(cards)}"
    labels = suggestion_labels(cards)
    repeated = sorted(label for label, n in Counter(labels).items() if n > 1)
    assert not repeated, f"suggestion offered twice in one response (4.6 D1): {repeated}"
    for card in cards:
        offered = [b12_products_offered(s) for s in card.get("suggestions", [])]
        assert all(len(products) <= 1 for products in offered), (
            f"{card['source']['topic']['code']}: one suggestion creates both oral and IM B12 (4.6 D1)")
        if len(set().union(*offered)) > 1 if offered else False:
            assert card.get("selectionBehavior") == "at-most-one", (
                f"{card['source']['topic']['code']}: oral and IM B12 offered as selectable together "
                f"(selectionBehavior {card.get('selectionBehavior')!r}; 4.6 D1 wants at-most-one): "
                f"{[s['label'] for s in card['suggestions']]}"
            )
    for word in scenario.get("suggestOnce", ()):
        having = [label for label in labels if mentions(label, word)]
        assert len(having) == 1, f"{word!r} must be offered exactly once in the response (4.6 D1), got {having}"
    for word in scenario.get("suggestNever", ()):
        having = [label for label in labels if mentions(label, word)]
        assert not having, f"{word!r} must not be offered: {having}"


def assert_suggestions_are_safe(scenario: dict[str, Any], request: dict[str, Any], cards: list[dict]) -> None:
    """Every suggested resource is valid R4; a delete only ever targets one of this request's draft orders,
    never stands alone (it always comes with the create that replaces it) and is never the recommended
    choice: deletion is only a suggestion the clinician accepts."""
    draft_refs = {f"{e['resource']['resourceType']}/{e['resource']['id']}"
                  for e in request["context"].get("draftOrders", {}).get("entry", [])}
    for card in cards:
        for suggestion in card.get("suggestions", []):
            actions = suggestion["actions"]
            for action in actions:
                if "resource" in action:
                    resource = action["resource"]
                    get_fhir_model_class(resource["resourceType"]).model_validate(resource)
                    assert resource["subject"]["reference"] == f"Patient/{request['context']['patientId']}"
                if action["type"] == "delete":
                    assert scenario["hook"] in ("order-select", "order-sign")
                    assert action["resourceId"] in draft_refs, action
                    assert any(a["type"] == "create" for a in actions)
                    assert not suggestion.get("isRecommended")


# --- the fixtures themselves ---------------------------------------------------------------------


def all_fixture_json() -> list[tuple[str, Any]]:
    files = sorted((FIXTURES / "patients").glob("*.json")) + sorted((FIXTURES / "requests").glob("*.json"))
    loaded = [(str(p.relative_to(FIXTURES)), load_json(p)) for p in files]
    loaded += [(f"scenarios.json:{scenario_id(s)}", s.get("draftOrders", [])) for s in SCENARIOS]
    loaded += [(f"built:{scenario_id(s)}", request_for(s)) for s in SCENARIOS]
    return loaded


def test_every_fixture_resource_validates_against_r4b() -> None:
    failures = []
    count = 0
    for name, data in all_fixture_json():
        for where, resource in iter_resources(data, name):
            count += 1
            try:
                get_fhir_model_class(resource["resourceType"]).model_validate(resource)
            except Exception as exc:  # noqa: BLE001 - collect every failure, report them together
                failures.append(f"{where}: {exc}")
    assert count > 500
    assert not failures, "\n".join(failures[:20])


def test_every_resource_has_an_id_and_references_its_patient() -> None:
    for path in sorted((FIXTURES / "patients").glob("*.json")):
        bundle = load_json(path)
        assert bundle["type"] == "collection"
        patients = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"]
        assert len(patients) == 1, path.name
        patient_id = patients[0]["id"]
        assert patient_id == path.stem
        ids = [e["resource"]["id"] for e in bundle["entry"]]
        assert len(ids) == len(set(ids)), path.name
        for entry in bundle["entry"][1:]:
            assert entry["resource"]["subject"]["reference"] == f"Patient/{patient_id}", entry["resource"]["id"]


def test_patient_names_are_distinct() -> None:
    names = []
    for path in sorted((FIXTURES / "patients").glob("*.json")):
        (name,) = load_patient(path.stem)["entry"][0]["resource"]["name"]
        names.append((name["given"][0], name["family"]))
    assert len(names) == len(set(names))


def test_scenarios_are_well_formed() -> None:
    ids = [scenario_id(s) for s in SCENARIOS]
    assert len(ids) == len(set(ids)), "one scenario per patient and hook"
    for s in SCENARIOS:
        assert (FIXTURES / "patients" / f"{s['patient']}.json").exists(), s["patient"]
        assert s["hook"] in HOOK_FAMILIES
        assert s["description"].strip()
        for item in s["expect"]:
            assert item["topic"] in HOOK_FAMILIES[s["hook"]], f"{scenario_id(s)}: {item['topic']} not run on hook"
            assert item["indicator"] in {"info", "warning", "critical"}
            assert set(item) <= {"topic", "indicator", "detailMentions", "detailOmits"}, item
        assert sum(1 for item in s["expect"] if item["topic"] in B12_STATE_TOPICS) <= 1, scenario_id(s)
        assert set(s) <= {"patient", "hook", "description", "expect", "draftOrders", "selections",
                          "suggestOnce", "suggestNever"}, sorted(s)
        if s.get("suggestOnce") or s.get("suggestNever"):
            assert s["expect"], f"{scenario_id(s)}: suggestion checks on a silent scenario are vacuous"
        for order in s.get("draftOrders", []):
            assert order["status"] == "draft"
        for ref in s.get("selections", []):
            assert ref in {f"{o['resourceType']}/{o['id']}" for o in s["draftOrders"]}


def test_at_least_as_many_silent_scenarios_as_positive_ones() -> None:
    positive = sum(1 for s in SCENARIOS if s["expect"])
    assert len(SCENARIOS) - positive >= positive


def test_every_family_and_hook_is_exercised() -> None:
    fired = Counter(item["topic"] for s in SCENARIOS for item in s["expect"])
    assert set(fired) == FAMILIES
    for hook in HOOK_FAMILIES:
        assert any(s["hook"] == hook and s["expect"] for s in SCENARIOS), hook
        assert any(s["hook"] == hook and not s["expect"] for s in SCENARIOS), hook


def test_built_requests_follow_the_hook_files() -> None:
    for s in SCENARIOS:
        request = request_for(s)
        definition_keys = {
            hook_def["hook"]: set(hook_def["prefetch"])
            for hook_def in (load_json(p) for p in (FIXTURES.parent / "hooks").glob("*.json"))
        }[s["hook"]]
        assert set(request["prefetch"]) == definition_keys
        assert request["prefetch"]["patient"]["id"] == s["patient"]
        for key, value in request["prefetch"].items():
            if key == "patient":
                continue
            assert value["type"] == "searchset" and value["total"] == len(value.get("entry", [])), key
            assert all(e["search"]["mode"] == "match" and e["fullUrl"] for e in value.get("entry", []))
        assert uuid.UUID(request["hookInstance"])
        assert request["context"]["patientId"] == s["patient"]
        assert request["context"]["userId"] == "Practitioner/example"
        if s["hook"] != "patient-view":
            assert request["context"]["draftOrders"]["type"] == "collection"
        assert ("selections" in request["context"]) == (s["hook"] == "order-select")


def test_the_fixture_builder_keeps_no_state_between_builds() -> None:
    """Building is a function call: a second build neither sees the first one's patients nor differs from it."""
    from fixtures import make_fixtures

    first, second = make_fixtures.build_fixtures(), make_fixtures.build_fixtures()
    assert first.patients is not second.patients and first.scenarios == second.scenarios
    assert {slug: p.bundle() for slug, p in first.patients.items()} == {
        slug: p.bundle() for slug, p in second.patients.items()}


def test_committed_fixture_files_are_what_the_generator_writes() -> None:
    from fixtures import make_fixtures
    from fixtures.build_requests import build_request

    fixture_set = make_fixtures.build_fixtures()
    on_disk = {p.stem for p in (FIXTURES / "patients").glob("*.json")}
    assert on_disk == set(fixture_set.patients), "run: .venv/bin/python -m fixtures.make_fixtures"
    for slug, builder in fixture_set.patients.items():
        assert load_patient(slug) == json.loads(json.dumps(builder.bundle())), f"{slug}: regenerate fixtures"
    assert load_scenarios() == json.loads(json.dumps(fixture_set.scenarios)), "regenerate scenarios.json"
    for slug, hook in make_fixtures.SHOWCASE:
        path = FIXTURES / "requests" / f"{slug}.{hook}.json"
        (scenario,) = [s for s in SCENARIOS if s["patient"] == slug and s["hook"] == hook]
        built = build_request(
            load_patient(slug),
            hook,
            draft_orders=scenario.get("draftOrders", ()),
            selections=scenario.get("selections"),
        )
        assert load_json(path) == built, f"{path.name}: regenerate fixtures"
    assert len(list((FIXTURES / "requests").glob("*.json"))) == len(make_fixtures.SHOWCASE)
