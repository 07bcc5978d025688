"""Cards: CDS Hooks 2.0 shape, R4B-valid suggested resources, no empty values, markdown escaping."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.servicerequest import ServiceRequest

from cds_service.cards import CardBuildError, build_cards
from cds_service.cards.markdown import escape
from cds_service.clinical.findings import (
    EvidenceItem,
    Finding,
    Indicator,
    ProposedAction,
    ThresholdApplied,
)
from cds_service.clinical.rules import FAMILIES, evaluate_families
from cds_service.knowledge import concepts as c
from cds_service.knowledge.wording import load_wording
from tests.support.factories import assessed, b12, med, mma, problem, record, unreadable_b12

TOPIC_SYSTEM = "https://b12-neuro-cds.example.org/CodeSystem/card-topic"
OVERRIDE_SYSTEMS = {
    "http://terminology.hl7.org/CodeSystem/non-adherence-reason-codes",
    "https://b12-neuro-cds.example.org/CodeSystem/override-reason",
}
R4B_MODELS = {"ServiceRequest": ServiceRequest, "MedicationRequest": MedicationRequest}


SCENARIOS = [
    record(b12(200), problem(c.NEURO_SENSORY, 100)),
    record(b12(100), problem(c.NEURO_GAIT, 10), med(c.FOLIC_ACID, dose_mg=5)),
    record(problem(c.NITROUS_OXIDE_EXPOSURE, 30), problem(c.NEURO_SENSORY, 5)),
    record(problem(c.NEURO_SCD_MYELOPATHY, 20), mma(0.9), b12(300)),
    record(unreadable_b12()),
    record(b12(100)),
    record(med(c.FOLIC_ACID, draft=True, dose_mg=5), med(c.NITROUS_OXIDE_DRUG, draft=True), b12(200)),
]


def all_cards(kb: Any, hook: str = "patient-view") -> list[dict[str, Any]]:
    cards = []
    for rec in SCENARIOS:
        cards.extend(build_cards(evaluate_families(assessed(rec, kb), kb, FAMILIES), kb, hook=hook, patient_id="pat-1"))
    assert len(cards) >= 10
    return cards


def walk(value: Any, path: str = "$"):
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from walk(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from walk(item, f"{path}[{index}]")


def finding(**overrides: Any) -> Finding:
    base = dict(
        family="mma-testing",
        trigger="R1-A",
        indicator=Indicator.WARNING,
        summary="Borderline B12 with neuropathy: check MMA",
        rationale=("B12 is borderline.",),
        evidence=(
            EvidenceItem(
                "lab",
                "Serum vitamin B12",
                "271 pg/mL",
                "200 pmol/L",
                "2026-10-01",
                "LOINC 2132-9",
                "Observation/1",
            ),
        ),
        thresholds=(ThresholdApplied("Total B12 band", "133-258 pmol/L", "S", "nice-ng239"),),
        citations=("nice-ng239", "bsh-2014"),
        actions=(ProposedAction("order-lab", "mma"),),
    )
    base.update(overrides)
    return Finding(**base)


# --- card shape --------------------------------------------------------------------------------------------


def test_every_card_has_the_required_fields_with_valid_values(kb):
    for card in all_cards(kb):
        assert 0 < len(card["summary"]) < 140
        assert card["indicator"] in ("info", "warning", "critical")
        assert str(uuid.UUID(card["uuid"])) == card["uuid"]
        assert card["source"]["label"]
        topic = card["source"]["topic"]
        assert topic["system"] == TOPIC_SYSTEM and topic["code"] in FAMILIES and topic["display"]
        assert card["detail"]


def test_cards_with_suggestions_always_carry_a_selection_behavior(kb):
    for card in all_cards(kb):
        if "suggestions" in card:
            assert card["selectionBehavior"] in ("at-most-one", "any")
            if card["selectionBehavior"] == "at-most-one":
                assert sum(1 for s in card["suggestions"] if s.get("isRecommended")) <= 1
            for suggestion in card["suggestions"]:
                assert suggestion["label"] and uuid.UUID(suggestion["uuid"])
                for action in suggestion["actions"]:
                    assert action["type"] in ("create", "update", "delete") and action["description"]
        else:
            assert "selectionBehavior" not in card


def test_no_card_holds_a_null_an_empty_string_an_empty_array_or_an_empty_object(kb):
    for card in all_cards(kb) + all_cards(kb, hook="order-sign"):
        for path, value in walk(card):
            assert value is not None, path
            if isinstance(value, (str, list, dict)):
                assert len(value) > 0, path


def test_override_reasons_are_displayed_codings_from_the_agreed_systems(kb):
    for card in all_cards(kb):
        assert card["overrideReasons"]
        for coding in card["overrideReasons"]:
            assert coding["system"] in OVERRIDE_SYSTEMS and coding["code"] and coding["display"]


def test_links_are_absolute_web_urls_only(kb):
    for card in all_cards(kb):
        for link in card.get("links", []):
            assert link["type"] == "absolute" and re.match(r"^https?://\S+$", link["url"]) and link["label"]


def test_cards_pass_the_protocol_response_schema(kb):
    from cds_service.protocol.response import validate_response

    validate_response({"cards": all_cards(kb)})


def test_cards_are_ordered_critical_first(kb):
    findings = [finding(indicator=Indicator.INFO), finding(indicator=Indicator.CRITICAL, trigger="R1-X")]
    cards = build_cards(findings, kb, hook="patient-view", patient_id="p")
    assert [card["indicator"] for card in cards] == ["critical", "info"]


def test_an_overlong_summary_is_clipped_once_by_the_rules_and_checked_by_the_response_schema(kb):
    """One clipping point (rules.common.summary, which every family calls) and one check, not three."""
    from cds_service.clinical.rules.common import summary
    from cds_service.protocol.response import InvalidCard, validate_response

    assert len(summary("x" * 300)) == 139 and summary("a  b\nc") == "a b c"
    card = build_cards([finding(summary="x" * 300)], kb, hook="patient-view", patient_id="p")[0]
    with pytest.raises(InvalidCard):
        validate_response({"cards": [card]})


# --- suggested resources ----------------------------------------------------------------------------------


def resources(cards: list[dict[str, Any]]):
    for card in cards:
        for suggestion in card.get("suggestions", []):
            for action in suggestion["actions"]:
                if "resource" in action:
                    yield card, action["resource"]


def test_every_suggested_resource_is_a_valid_r4b_resource(kb):
    seen = set()
    for _, resource in resources(all_cards(kb)):
        model = R4B_MODELS[resource["resourceType"]]
        model.model_validate(resource)
        assert resource["status"] == "draft" and resource["intent"] == "order"
        assert resource["subject"] == {"reference": "Patient/pat-1"}
        seen.add(resource["resourceType"])
    assert seen == {"ServiceRequest", "MedicationRequest"}


def test_lab_orders_carry_the_loinc_code_of_the_orderable(kb):
    card = build_cards([finding()], kb, hook="patient-view", patient_id="p")[0]
    resource = card["suggestions"][0]["actions"][0]["resource"]
    assert resource["code"]["coding"][0] == {
        "system": "http://loinc.org",
        "code": "13964-2",
        "display": kb.orderables["mma"].display,
    }


def test_prescriptions_carry_the_rxnorm_ingredient_and_the_regimen(kb):
    f = finding(actions=(ProposedAction("order-medication", "hydroxocobalamin-im-neuro"),))
    resource = build_cards([f], kb, hook="patient-view", patient_id="p")[0]["suggestions"][0]["actions"][0][
        "resource"
    ]
    coding = resource["medicationCodeableConcept"]["coding"][0]
    assert (coding["system"], coding["code"]) == ("http://www.nlm.nih.gov/research/umls/rxnorm", "5514")
    assert "alternate days" in resource["dosageInstruction"][0]["text"]
    MedicationRequest.model_validate(resource)


def test_the_urgent_referral_is_text_only_with_urgent_priority(kb):
    f = finding(family="urgent-neuro-review", actions=(ProposedAction("referral", "neurology-urgent"),))
    suggestion = build_cards([f], kb, hook="patient-view", patient_id="p")[0]["suggestions"][0]
    resource = suggestion["actions"][0]["resource"]
    assert resource["priority"] == "urgent" and "coding" not in resource["code"] and resource["code"]["text"]
    assert suggestion["isRecommended"] is True
    ServiceRequest.model_validate(resource)


def test_alternative_prescriptions_are_offered_as_at_most_one_with_one_recommended(kb):
    f = finding(
        family="b12-untreated",
        actions=(
            ProposedAction("order-medication", "hydroxocobalamin-im"),
            ProposedAction("order-medication", "cyanocobalamin-oral"),
        ),
    )
    card = build_cards([f], kb, hook="patient-view", patient_id="p")[0]
    assert card["selectionBehavior"] == "at-most-one"
    assert [s.get("isRecommended", False) for s in card["suggestions"]] == [True, False]


def test_urgent_review_groups_the_baseline_bloods_into_one_suggestion(kb):
    f = finding(
        family="urgent-neuro-review",
        actions=(
            ProposedAction("referral", "neurology-urgent"),
            ProposedAction("order-lab", "b12-total"),
            ProposedAction("order-lab", "folate-serum"),
            ProposedAction("order-lab", "mma"),
        ),
    )
    card = build_cards([f], kb, hook="patient-view", patient_id="p")[0]
    assert len(card["suggestions"]) == 2 and len(card["suggestions"][1]["actions"]) == 3
    assert card["selectionBehavior"] == "any"


def test_advice_appears_in_the_detail_not_as_a_suggestion(kb):
    f = finding(family="nitrous-oxide-risk", actions=(ProposedAction("advice", "advice-n2o-alternative"),))
    card = build_cards([f], kb, hook="order-sign", patient_id="p")[0]
    assert "suggestions" not in card and "selectionBehavior" not in card
    assert "Consider an alternative to nitrous oxide" in card["detail"]


def test_alternative_regimens_are_pick_one_and_each_carries_the_tests(kb):
    """4.6 D1: oral and IM B12 are never selectable together; choosing one still orders the tests."""
    f = finding(actions=(
        ProposedAction("order-lab", "mma"),
        ProposedAction("order-medication", "hydroxocobalamin-im"),
        ProposedAction("order-medication", "cyanocobalamin-oral"),
    ))
    card = build_cards([f], kb, hook="patient-view", patient_id="p")[0]
    assert card["selectionBehavior"] == "at-most-one"
    kinds = [[a["resource"]["resourceType"] for a in s["actions"]] for s in card["suggestions"]]
    assert kinds == [["ServiceRequest", "MedicationRequest"], ["ServiceRequest", "MedicationRequest"],
                     ["ServiceRequest"]]
    assert [s.get("isRecommended", False) for s in card["suggestions"]] == [True, False, False]
    assert all(a["type"] == "create" for s in card["suggestions"] for a in s["actions"])


def test_no_card_ever_suggests_a_delete(kb):
    for hook in ("patient-view", "order-select", "order-sign"):
        for card in all_cards(kb, hook):
            for suggestion in card.get("suggestions", []):
                assert all(a["type"] != "delete" for a in suggestion["actions"])


def test_suggestion_labels_are_in_sentence_case(kb):
    for card in all_cards(kb):
        for suggestion in card.get("suggestions", []):
            label = suggestion["label"]
            words = label.split()
            # after the verb, an ordinary word starts in lower case; acronyms (MMA, B12) may stay
            assert not any(w[0].isupper() and w[1:].islower() and len(w) > 1 for w in words[1:2]), label


def test_override_reason_displays_carry_no_stray_markers(kb):
    for card in all_cards(kb):
        for reason in card["overrideReasons"]:
            assert not set("*#_~") & set(reason["display"]), reason


def test_every_card_links_to_its_explanation_page_with_an_absolute_url(kb):
    f = finding()
    card = build_cards([f], kb, hook="patient-view", patient_id="p", base_url="https://cds.example.org/b12/")[0]
    explain = f"https://cds.example.org/b12/explain/{f.family}"
    assert card["links"][0] == {"label": card["links"][0]["label"], "url": explain, "type": "absolute"}
    for card in all_cards(kb):
        assert card["source"]["url"].startswith(("https://", "http://"))
        family = card["source"]["topic"]["code"]
        assert any(link["url"].endswith(f"/explain/{family}") for link in card["links"])


def test_a_patient_id_is_required_to_build_suggestions(kb):
    with pytest.raises(CardBuildError):
        build_cards([finding()], kb, hook="patient-view", patient_id="")


def test_an_unknown_citation_or_orderable_is_a_bug_not_a_silent_gap(kb):
    with pytest.raises(CardBuildError):
        build_cards([finding(citations=("no-such-guideline",))], kb, hook="patient-view", patient_id="p")
    with pytest.raises(CardBuildError):
        build_cards(
            [finding(actions=(ProposedAction("order-lab", "no-such-test"),))],
            kb,
            hook="patient-view",
            patient_id="p",
        )


# --- detail markdown ----------------------------------------------------------------------------------------


def test_the_detail_is_why_then_a_four_column_evidence_table_then_what_to_check(kb):
    """Card anatomy (conventions.md): thresholds and sources live on the explanation page, not here."""
    card = build_cards([finding(caveats=("eGFR unknown.",))], kb, hook="patient-view", patient_id="p")[0]
    detail = card["detail"]
    assert "| What | As received | Date | Code |" in detail
    assert "271 pg/mL" in detail and "LOINC 2132-9" in detail
    assert "Observation/1" not in detail  # references travel in the identity extension instead
    assert "**Check:** eGFR unknown." in detail
    assert "Thresholds applied" not in detail and "Guidelines" not in detail and "status S" not in detail
    assert "<" not in detail.replace("\\<", "")  # no raw HTML


def test_empty_detail_sections_are_left_out(kb):
    detail = build_cards([finding(thresholds=(), caveats=())], kb, hook="patient-view", patient_id="p")[0][
        "detail"
    ]
    assert "Check" not in detail


def test_guidelines_are_links_only_when_knowledge_has_a_web_url(kb):
    card = build_cards([finding()], kb, hook="patient-view", patient_id="p")[0]
    assert kb.citations["nice-ng239"].url in [link["url"] for link in card["links"]]
    assert all(link["url"].startswith("http") for link in card["links"])


HOSTILE = [
    "[click me](javascript:alert(1))",
    "<script>alert(1)</script>",
    "![img](http://evil.example/x.png)",
    "see https://evil.example/login",
    "www.evil.example",
    "mail me@evil.example",
    "a | b | c",
    "line one\n# heading\n- bullet",
    "# heading",
    "1. ordered",
    "> quoted",
    "**bold** _em_ `code` ~~strike~~",
    "&lt;b&gt; entity",
    "back\\slash [x]",
]


def unescaped(detail: str, token: str) -> list[int]:
    """Positions where `token` occurs without a backslash escaping its first character."""
    return [
        m.start()
        for m in re.finditer(re.escape(token), detail)
        if m.start() == 0 or detail[m.start() - 1] != "\\"
    ]


@pytest.mark.parametrize("text", HOSTILE)
def test_patient_text_cannot_inject_markdown_links_or_html(kb, text):
    f = finding(
        evidence=(EvidenceItem("medication", text, text, text, None, text, None, text),),
        rationale=(f"{text} was ordered.",),
        caveats=(text,),
    )
    detail = build_cards([f], kb, hook="patient-view", patient_id="p")[0]["detail"]
    assert escape(text) in detail
    detail = re.sub(r"\]\(https?://[^)\s]+\)", "]", detail)  # our own guideline link targets
    own_links = {
        m.start() for m in re.finditer(r"\[(?=[A-Z])", detail) if detail[m.start() - 2 : m.start()] == "- "
    }
    assert set(unescaped(detail, "[")) <= own_links  # only our guideline links open a bracket
    for token in ("<", "`", "@", "~", "&", "_", "#"):
        assert not unescaped(detail, token), token
    assert not re.search(r"(?<!\\)://", detail), "bare scheme autolink"
    assert not re.search(r"(?i)\bwww\.", detail), "bare www autolink"
    for line in detail.splitlines():
        assert not re.match(r"^(#|>|\d+[.)]\s)", line), line
    evidence_row = next(
        line
        for line in detail.splitlines()
        if line.startswith("| ") and "What" not in line and "---" not in line
    )
    assert len(re.findall(r"(?<!\\)\|", evidence_row)) == 5  # the table keeps exactly four columns


def test_escape_breaks_markdown_constructs_but_keeps_values_readable():
    assert escape("[x](y)") == "\\[x\\](y)"
    assert escape("a\nb\tc") == "a b c"
    assert escape("http://evil") == "http\\://evil"
    assert escape("< 100 pg/mL") == "\\< 100 pg/mL"
    assert escape("0.52 umol/L") == "0.52 umol/L"
    assert escape("1. item") == "1\\. item"


def test_the_detail_reads_as_received_values_verbatim(kb):
    f = finding(
        evidence=(EvidenceItem("lab", "Serum vitamin B12", "179 pg/mL", "132.1 pmol/L", "2026-09-15"),)
    )
    detail = build_cards([f], kb, hook="patient-view", patient_id="p")[0]["detail"]
    assert "| 179 pg/mL (= 132.1 pmol/L) |" in detail


# --- wording data -------------------------------------------------------------------------------------------


def test_every_rule_family_has_card_wording():
    wording = load_wording()
    for family in FAMILIES:
        assert wording.family(family).override_reasons
    assert wording.topic_system == TOPIC_SYSTEM
