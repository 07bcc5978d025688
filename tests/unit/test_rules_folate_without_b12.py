"""R2 folate-without-b12: folate therapy while B12 deficiency is not excluded (clinical-reference 4.3)."""

from __future__ import annotations

import pytest

from cds_service.clinical.findings import Indicator
from cds_service.clinical.rules.folate_without_b12 import evaluate as _folate_without_b12_rule
from cds_service.knowledge import concepts as c
from tests.support.factories import (
    action_keys,
    active_b12,
    b12,
    evidence_text,
    lab,
    med,
    mma,
    only_finding,
    problem,
    record,
    run_rule,
    unreadable_b12,
)


def evaluate(rec, kb, hook=None):
    return run_rule(_folate_without_b12_rule, rec, kb, hook)


def one(rec, kb):
    return only_finding(evaluate(rec, kb), kb)


def folic(**kw):
    return med(c.FOLIC_ACID, dose_mg=kw.pop("dose_mg", 5), **kw)


# --- Trigger ---------------------------------------------------------------------------------------------


def test_warns_about_active_folic_acid_with_no_b12_result_and_no_cover(kb):
    finding = one(record(folic()), kb)
    assert finding.indicator is Indicator.WARNING and finding.subject_refs == ()
    assert action_keys(finding) == [c.B12_TOTAL, "hydroxocobalamin-im", "cyanocobalamin-oral"]
    text = evidence_text(finding)
    assert "no valid B12 result" in text and "no B12 product in the medication orders" in text
    assert any("B12 nerve damage" in line for line in finding.rationale)


def test_fires_on_a_draft_folate_order_at_order_sign_and_names_it_as_the_subject(kb):
    draft = folic(draft=True, ref="MedicationRequest/draft-1")
    finding = one(record(draft), kb)
    assert finding.subject_refs == ("MedicationRequest/draft-1",)
    assert "draft order" in evidence_text(finding) and finding.summary.startswith("Folate ordered")


def test_at_order_select_only_selected_drafts_are_subjects(kb):
    draft = folic(draft=True, ref="MedicationRequest/draft-1")
    other = med(c.METFORMIN, draft=True, ref="MedicationRequest/draft-2")
    assert evaluate(record(draft, other, subject_refs=["MedicationRequest/draft-2"]), kb) == []
    assert one(record(draft, other, subject_refs=["MedicationRequest/draft-1"]), kb)


def test_existing_folate_therapy_is_not_re_carded_on_an_unrelated_order(kb):
    assert evaluate(record(folic(), med(c.METFORMIN, draft=True)), kb) == []


def test_a_b12_product_in_the_draft_orders_counts_as_cover(kb):
    rec = record(folic(draft=True), med(c.B12_REPLACEMENT, draft=True, route="parenteral"))
    assert evaluate(rec, kb) == []


def test_a_folic_acid_and_b12_combination_product_is_its_own_cover(kb):
    assert evaluate(record(med({c.FOLIC_ACID, c.B12_REPLACEMENT}, dose_mg=5)), kb) == []


def test_active_b12_replacement_is_cover(kb):
    assert evaluate(record(folic(), med(c.B12_REPLACEMENT, route="oral", dose_mg=1)), kb) == []


def test_low_dose_oral_b12_is_not_cover(kb):
    assert one(record(folic(), med(c.B12_REPLACEMENT, route="oral", dose_mg=0.01)), kb)


# --- "Excluded" -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "fires"), [(258, True), (259, False)])
def test_a_valid_normal_total_b12_excludes_deficiency(kb, value, fires):
    assert bool(evaluate(record(folic(), b12(value)), kb)) is fires


@pytest.mark.parametrize(("value", "fires"), [(70, True), (71, False)])
def test_a_valid_normal_active_b12_excludes_deficiency(kb, value, fires):
    assert bool(evaluate(record(folic(), active_b12(value)), kb)) is fires


def test_borderline_b12_without_mma_is_not_excluded_and_mma_is_suggested(kb):
    finding = one(record(folic(), b12(200)), kb)
    assert c.MMA in action_keys(finding) and "no MMA" in finding.rationale[0]


def test_borderline_b12_with_normal_mma_excludes_deficiency(kb):
    """Edge case 6."""
    assert evaluate(record(folic(), b12(200, 30), mma(0.3, 10)), kb) == []


def test_borderline_b12_with_raised_mma_is_not_excluded(kb):
    finding = one(record(folic(), b12(200, 30), mma(0.6, 10)), kb)
    assert c.MMA not in action_keys(finding) and "MMA is raised" in finding.rationale[0]


def test_a_normal_mma_drawn_on_replacement_cannot_exclude_deficiency(kb):
    rec = record(
        folic(),
        b12(200, 150),
        mma(0.3, 100),
        med(c.B12_REPLACEMENT, active=False, route="parenteral", start_days_ago=130, end_days_ago=120),
    )
    assert one(rec, kb)


def test_recent_nitrous_oxide_means_a_normal_b12_does_not_exclude_deficiency(kb):
    """Edge case 4."""
    finding = one(record(folic(), b12(400), problem(c.NITROUS_OXIDE_EXPOSURE, 60)), kb)
    assert "paris-2023" in finding.citations and "cyanocobalamin-oral" not in action_keys(finding)


def test_a_stale_normal_b12_does_not_exclude_deficiency(kb):
    """Edge case 7."""
    assert one(record(folic(), b12(400, 400)), kb)


def test_a_normal_b12_drawn_on_replacement_does_not_exclude_deficiency_once_cover_lapsed(kb):
    """Edge case 1: covered only while cover is active."""
    replacement = dict(route="parenteral", start_days_ago=200, end_days_ago=100, active=False)
    assert one(record(folic(), b12(400, 110), med(c.B12_REPLACEMENT, **replacement)), kb)
    still_covered = dict(route="parenteral", start_days_ago=200, end_days_ago=60, active=False)
    assert evaluate(record(folic(), b12(400, 110), med(c.B12_REPLACEMENT, **still_covered)), kb) == []


def test_an_uninterpretable_b12_does_not_exclude_deficiency_and_is_reported(kb):
    """Edge case 8."""
    finding = one(record(folic(), unreadable_b12()), kb)
    assert any("could not be interpreted" in cav for cav in finding.caveats)
    assert "unit missing" in evidence_text(finding)


# --- Indicator -------------------------------------------------------------------------------------------


def test_is_critical_with_neuro_symptoms_and_suggests_the_neurological_regimen(kb):
    finding = one(record(folic(), problem(c.NEURO_SENSORY, 400)), kb)
    assert finding.indicator is Indicator.CRITICAL
    assert "hydroxocobalamin-im-neuro" in action_keys(finding)


def test_is_critical_when_b12_is_deficient_even_with_low_folate(kb):
    """Edge case 5."""
    finding = one(record(folic(), b12(100), lab(c.FOLATE_SERUM, 4)), kb)
    assert finding.indicator is Indicator.CRITICAL and "deficient" in finding.summary


def test_is_info_when_methotrexate_is_co_prescribed_without_neuro_symptoms(kb):
    assert one(record(folic(), med(c.METHOTREXATE)), kb).indicator is Indicator.INFO


def test_methotrexate_does_not_soften_a_card_with_neuro_symptoms(kb):
    rec = record(folic(), med(c.METHOTREXATE), problem(c.NEURO_SENSORY, 30))
    assert one(rec, kb).indicator is Indicator.CRITICAL


# --- Exclusions ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dose", "fires"), [(0.4, False), (1.0, False), (1.1, True), (5.0, True), (None, True)]
)
def test_prophylactic_folic_acid_in_pregnancy_is_excluded_up_to_1_mg(kb, dose, fires):
    rec = record(folic(dose_mg=dose), problem(c.PREGNANCY, 60))
    assert bool(evaluate(rec, kb)) is fires


def test_prophylactic_folic_acid_in_pregnancy_still_fires_with_neuro_symptoms(kb):
    rec = record(folic(dose_mg=0.4), problem(c.PREGNANCY, 60), problem(c.NEURO_GAIT, 10))
    assert one(rec, kb).indicator is Indicator.CRITICAL


def test_in_pregnancy_the_suggested_b12_test_is_active_b12(kb):
    finding = one(record(folic(dose_mg=5), problem(c.PREGNANCY, 60)), kb)
    assert action_keys(finding)[0] == c.B12_ACTIVE


def test_low_dose_folic_acid_outside_pregnancy_still_fires(kb):
    assert one(record(folic(dose_mg=0.4)), kb)


@pytest.mark.parametrize(
    "classes", [{c.LEVOMEFOLATE, c.HORMONAL_CONTRACEPTIVE}, {c.FOLIC_ACID, c.LEUCOVORIN}, {c.LEUCOVORIN}]
)
def test_contraceptives_with_levomefolate_and_leucovorin_rescue_are_excluded(kb, classes):
    assert evaluate(record(med(classes)), kb) == []


def test_a_stopped_folate_gives_no_card(kb):
    assert evaluate(record(folic(active=False, end_days_ago=10)), kb) == []


def test_no_oral_b12_is_offered_when_nitrous_oxide_is_ordered_with_the_folate(kb):
    """Nitrous oxide inactivates B12 (Paris 2023): only IM replacement, whether the exposure is past or
    is being ordered in the same signing (review finding 2026-12)."""
    rec = record(b12(100), med(c.FOLIC_ACID, draft=True, dose_mg=5), med(c.NITROUS_OXIDE_DRUG, draft=True))
    keys = action_keys(one(rec, kb))
    assert "hydroxocobalamin-im" in keys and "cyanocobalamin-oral" not in keys
