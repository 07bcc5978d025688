"""R3 urgent-neuro-review: findings suggesting B12-related spinal cord damage (clinical-reference 4.4)."""

from __future__ import annotations

import pytest

from cds_service.clinical.findings import Indicator
from cds_service.clinical.rules.urgent_neuro_review import evaluate as _urgent_neuro_review_rule
from cds_service.knowledge import concepts as c
from tests.support.factories import (
    action_keys,
    active_b12,
    b12,
    egfr,
    lab,
    med,
    mma,
    only_finding,
    order,
    problem,
    record,
    run_rule,
)


def evaluate(rec, kb, hook=None):
    return run_rule(_urgent_neuro_review_rule, rec, kb, hook)


def one(rec, kb):
    finding = only_finding(evaluate(rec, kb), kb)
    assert finding.indicator is Indicator.CRITICAL
    return finding


N2O = problem(c.NITROUS_OXIDE_EXPOSURE, 60)


# --- Trigger A: nitrous oxide + any recent neuro symptom --------------------------------------------------


def test_calls_for_urgent_review_after_nitrous_oxide_with_a_recent_symptom_whatever_the_b12(kb):
    finding = one(record(N2O, b12(500), problem(c.NEURO_SENSORY, 30)), kb)
    assert finding.trigger == "R3-A"
    # 4.6 D7: isolated sensory symptoms read "urgent review", without the same-day spinal-cord wording
    assert finding.actions[0].kind == "referral" and finding.actions[0].key == "neurology-urgent-neuropathy"
    assert "advice-n2o-abstinence" in [a.key for a in finding.actions]
    assert {"paris-2023", "bsh-2014"} <= set(finding.citations)
    assert "nhs-lothian-referral" not in finding.citations
    assert not any("same-day" in line.lower() for line in (finding.summary, *finding.rationale))


def test_nitrous_oxide_with_a_new_red_flag_keeps_the_same_day_spinal_cord_wording(kb):
    finding = one(record(N2O, b12(500), problem(c.NEURO_GAIT, 30)), kb)
    assert finding.actions[0].key == "neurology-urgent"
    assert "nhs-lothian-referral" in finding.citations
    assert any("Same-day" in line for line in finding.rationale)


def test_a_symptom_recorded_recently_counts_for_trigger_a_even_with_an_old_onset(kb):
    rec = record(N2O, problem(c.NEURO_SENSORY, 400, recorded_days_ago=30))
    assert one(rec, kb).trigger == "R3-A"


@pytest.mark.parametrize(("days_ago", "fires"), [(90, True), (91, False)])
def test_trigger_a_needs_the_symptom_within_90_days(kb, days_ago, fires):
    assert bool(evaluate(record(N2O, problem(c.NEURO_SENSORY, days_ago)), kb)) is fires


def test_trigger_a_needs_nitrous_oxide_within_12_months(kb):
    old = problem(c.NITROUS_OXIDE_EXPOSURE, 400, active=False)
    assert evaluate(record(old, problem(c.NEURO_SENSORY, 30)), kb) == []


# --- Trigger B: SCD / myelopathy ------------------------------------------------------------------------


def test_fires_for_scd_with_a_deficient_b12(kb):
    assert one(record(problem(c.NEURO_SCD_MYELOPATHY, 30), b12(100)), kb).trigger == "R3-B"


@pytest.mark.parametrize(
    "evidence",
    [med(c.METFORMIN), lab(c.HOMOCYSTEINE, 25), mma(0.6), problem(c.B12_DEFICIENCY, 700), active_b12(40)],
)
def test_scd_fires_with_any_b12_related_evidence(kb, evidence):
    assert one(record(problem(c.NEURO_SCD_MYELOPATHY, 30), evidence), kb).trigger == "R3-B"


def test_scd_without_b12_related_evidence_does_not_fire(kb):
    assert evaluate(record(problem(c.NEURO_SCD_MYELOPATHY, 30), b12(400)), kb) == []


def test_age_alone_is_not_b12_related_evidence(kb):
    assert evaluate(record(problem(c.NEURO_SCD_MYELOPATHY, 30), b12(400), age=80), kb) == []


def test_chronic_stable_scd_does_not_fire(kb):
    assert evaluate(record(problem(c.NEURO_SCD_MYELOPATHY, 400), b12(100)), kb) == []


def test_old_scd_fires_again_when_a_new_red_flag_appears(kb):
    rec = record(problem(c.NEURO_SCD_MYELOPATHY, 400), problem(c.NEURO_GAIT, 10), b12(100))
    assert one(rec, kb).trigger == "R3-B+R3-C"


def test_scd_with_no_date_is_treated_as_current(kb):
    assert one(record(problem(c.NEURO_SCD_MYELOPATHY, None), b12(100)), kb).trigger == "R3-B"


# --- Trigger C: abnormal biochemistry + new red flag ------------------------------------------------------


@pytest.mark.parametrize("flag", [c.NEURO_GAIT, c.NEURO_WEAKNESS, c.NEURO_BLADDER_BOWEL, c.NEURO_COGNITIVE])
def test_fires_for_deficient_b12_with_a_new_red_flag(kb, flag):
    assert one(record(b12(100), problem(flag, 10)), kb).trigger == "R3-C"


def test_fires_for_borderline_b12_with_a_new_red_flag(kb):
    assert one(record(b12(200), problem(c.NEURO_WEAKNESS, 10)), kb).trigger == "R3-C"


def test_fires_for_raised_mma_with_a_normal_b12_and_a_new_red_flag(kb):
    assert one(record(b12(400), mma(0.6), problem(c.NEURO_GAIT, 10)), kb).trigger == "R3-C"


def test_fires_for_a_coded_b12_deficiency_with_a_new_red_flag(kb):
    assert one(record(problem(c.B12_DEFICIENCY, 700), problem(c.NEURO_GAIT, 10)), kb).trigger == "R3-C"


def test_normal_b12_with_a_new_red_flag_does_not_fire(kb):
    assert evaluate(record(b12(400), problem(c.NEURO_GAIT, 10)), kb) == []


@pytest.mark.parametrize(("days_ago", "fires"), [(90, True), (91, False)])
def test_the_red_flag_must_be_new(kb, days_ago, fires):
    assert bool(evaluate(record(b12(100), problem(c.NEURO_GAIT, days_ago)), kb)) is fires


def test_a_plain_sensory_symptom_is_not_a_red_flag(kb):
    assert evaluate(record(b12(100), problem(c.NEURO_SENSORY, 10)), kb) == []


def test_spreading_numbness_is_a_red_flag_and_the_card_says_it_was_inferred(kb):
    rec = record(
        b12(200), problem(c.NEURO_SENSORY, 50, code="91019004"), problem(c.NEURO_SENSORY, 5, code="44077006")
    )
    finding = one(rec, kb)
    assert finding.trigger == "R3-C" and "design-convention" in finding.citations
    assert any("Spreading numbness" in cav for cav in finding.caveats)


def test_renal_impairment_never_suppresses_the_card_but_is_flagged(kb):
    """Edge case 2."""
    finding = one(record(b12(400), mma(0.6), egfr(25), problem(c.NEURO_GAIT, 10)), kb)
    assert any("kidney" in cav or "renal" in cav for cav in finding.caveats)


# --- Trigger D: folate masking ------------------------------------------------------------------------


def test_fires_for_folate_without_b12_cover_in_a_patient_with_neuro_symptoms(kb):
    rec = record(med(c.FOLIC_ACID, dose_mg=5), problem(c.NEURO_SENSORY, 400))
    finding = one(rec, kb)
    assert finding.trigger == "R3-D"
    assert "no B12 product" in " ".join(e.as_received for e in finding.evidence)


def test_folate_with_b12_deficiency_excluded_does_not_fire_trigger_d(kb):
    assert evaluate(record(med(c.FOLIC_ACID, dose_mg=5), b12(400), problem(c.NEURO_SENSORY, 400)), kb) == []


def test_folate_with_b12_cover_does_not_fire_trigger_d(kb):
    rec = record(med(c.FOLIC_ACID), med(c.B12_REPLACEMENT, route="parenteral"), problem(c.NEURO_SENSORY, 400))
    assert evaluate(rec, kb) == []


# --- Actions ----------------------------------------------------------------------------------------------


def test_suggests_baseline_bloods_the_neurological_regimen_and_says_not_to_wait(kb):
    finding = one(record(b12(100, 200), problem(c.NEURO_GAIT, 10), problem(c.B12_DEFICIENCY, 200)), kb)
    assert action_keys(finding) == [
        "neurology-urgent",
        c.B12_TOTAL,
        c.FOLATE_SERUM,
        c.MMA,
        c.HOMOCYSTEINE,
        "fbc",
        "hydroxocobalamin-im-neuro",
    ]
    assert any("draw B12, folate, MMA, homocysteine and FBC" in line for line in finding.rationale)


def test_does_not_repeat_a_test_done_in_the_last_weeks_or_already_ordered(kb):
    rec = record(b12(100, 20), problem(c.NEURO_GAIT, 10), order(c.FOLATE_SERUM))
    keys = action_keys(one(rec, kb))
    assert c.B12_TOTAL not in keys and c.FOLATE_SERUM not in keys and c.MMA in keys


def test_in_pregnancy_the_baseline_b12_test_is_active_b12(kb):
    rec = record(problem(c.B12_DEFICIENCY, 700), problem(c.NEURO_GAIT, 10), problem(c.PREGNANCY, 60))
    assert c.B12_ACTIVE in action_keys(one(rec, kb))


def test_does_not_suggest_injections_when_parenteral_b12_is_already_given(kb):
    rec = record(N2O, problem(c.NEURO_SENSORY, 10), med(c.B12_REPLACEMENT, route="parenteral"))
    assert "hydroxocobalamin-im-neuro" not in action_keys(one(rec, kb))


def test_always_asks_to_check_for_a_neurology_referral_in_progress(kb):
    finding = one(record(b12(100), problem(c.NEURO_GAIT, 10)), kb)
    assert any("neurology referral" in cav for cav in finding.caveats)


# --- Order hooks ------------------------------------------------------------------------------------------


def test_in_an_order_hook_an_unrelated_order_does_not_repeat_the_card(kb):
    assert evaluate(record(b12(100), problem(c.NEURO_GAIT, 10), med(c.METFORMIN, draft=True)), kb) == []


@pytest.mark.parametrize(
    "draft",
    [
        med(c.FOLIC_ACID, draft=True, ref="MedicationRequest/d1"),
        med(c.NITROUS_OXIDE_DRUG, draft=True, ref="MedicationRequest/d1"),
        order(c.B12_TOTAL, draft=True, ref="MedicationRequest/d1"),
        order(c.MMA, draft=True, ref="MedicationRequest/d1"),
    ],
)
def test_in_an_order_hook_folate_nitrous_oxide_and_b12_or_mma_tests_make_it_speak(kb, draft):
    finding = one(record(b12(100), problem(c.NEURO_GAIT, 10), draft), kb)
    assert finding.subject_refs == ("MedicationRequest/d1",)


def test_in_an_order_hook_a_b12_replacement_order_alone_does_not_make_it_speak(kb):
    """4.6 D2 lists folate, nitrous oxide and B12/MMA tests; B12 being prescribed is not a reason to interrupt."""
    draft = med(c.B12_REPLACEMENT, draft=True, route="oral", dose_mg=1, ref="MedicationRequest/d1")
    assert evaluate(record(b12(100), problem(c.NEURO_GAIT, 10), draft), kb) == []


def test_no_neuro_symptoms_means_no_card(kb):
    assert evaluate(record(b12(50), N2O, problem(c.NEURO_SENSORY, 10, active=False)), kb) == []


def test_the_urgent_referral_names_nitrous_oxide_only_where_the_record_has_it(kb):
    finding = one(record(med(c.FOLIC_ACID, dose_mg=5), problem(c.NEURO_SENSORY, 400)), kb)  # R3-D, no N2O
    referral = next(a for a in finding.actions if a.kind == "referral")
    assert "nitrous" not in kb.orderables[referral.key].text.lower()
