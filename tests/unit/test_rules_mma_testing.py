"""R1 mma-testing: when to recommend MMA (clinical-reference 4.2, edge cases 1-4, 6, 7, 10, 11)."""

from __future__ import annotations

import pytest

from cds_service.clinical.findings import Indicator
from cds_service.clinical.rules.mma_testing import evaluate as _mma_testing_rule
from cds_service.knowledge import concepts as c
from tests.support.factories import (
    action_keys,
    active_b12,
    b12,
    egfr,
    evidence_text,
    lab,
    med,
    mma,
    only_finding,
    order,
    problem,
    record,
    run_rule,
    unreadable_b12,
)


def evaluate(rec, kb, hook=None):
    return run_rule(_mma_testing_rule, rec, kb, hook)


def one(rec, kb):
    return only_finding(evaluate(rec, kb), kb)


NEURO = problem(c.NEURO_SENSORY, 100)
GFR_OK = egfr(80)


# --- Trigger A: indeterminate B12 --------------------------------------------------------------------


def test_recommends_mma_as_a_warning_for_borderline_b12_with_neuro_symptoms(kb):
    finding = one(record(b12(200), NEURO, GFR_OK), kb)
    assert finding.trigger == "R1-A" and finding.indicator is Indicator.WARNING
    assert action_keys(finding) == [c.MMA]
    assert "no MMA result" in evidence_text(finding)
    assert "nice-ng239" in finding.citations


def test_recommends_mma_as_info_for_borderline_b12_with_macrocytosis_only(kb):
    finding = one(record(b12(200), lab(c.MCV, 105), GFR_OK), kb)
    assert finding.indicator is Indicator.INFO and "macrocytosis" in finding.summary


@pytest.mark.parametrize(("value", "fires"), [(100, False), (100.5, True)])
def test_macrocytosis_starts_above_100_fl(kb, value, fires):
    assert bool(evaluate(record(b12(200), lab(c.MCV, value), GFR_OK), kb)) is fires


@pytest.mark.parametrize(
    ("sex", "hb", "fires"),
    [("female", 119, True), ("female", 120, False), ("male", 129, True), ("male", 130, False)],
)
def test_anaemia_uses_the_who_cut_off_for_the_patients_sex(kb, sex, hb, fires):
    assert bool(evaluate(record(b12(200), lab(c.HAEMOGLOBIN, hb), GFR_OK, sex=sex), kb)) is fires


def test_recommends_mma_as_info_for_borderline_b12_with_a_risk_factor_only(kb):
    finding = one(record(b12(200), med(c.METFORMIN), GFR_OK), kb)
    assert finding.indicator is Indicator.INFO and "mhra-metformin-2022" in finding.citations


def test_returns_no_card_for_borderline_b12_without_symptoms_signs_or_risk_factors(kb):
    assert evaluate(record(b12(200), GFR_OK), kb) == []


@pytest.mark.parametrize(("value", "fires"), [(132, False), (133, True), (258, True), (259, False)])
def test_trigger_a_needs_the_indeterminate_band(kb, value, fires):
    assert bool(evaluate(record(b12(value), NEURO, GFR_OK), kb)) is fires


def test_indeterminate_active_b12_also_fires(kb):
    assert one(record(active_b12(40), NEURO, GFR_OK), kb).trigger == "R1-A"


# --- Trigger B: discordant normal B12 ------------------------------------------------------------------


def test_recommends_mma_for_normal_b12_with_new_symptoms_and_two_risk_factors(kb):
    finding = one(record(b12(300), NEURO, med(c.METFORMIN), med(c.PPI), GFR_OK), kb)
    assert finding.trigger == "R1-B" and finding.indicator is Indicator.WARNING
    assert "lindenbaum-1988" in finding.citations


def test_returns_no_card_for_normal_b12_with_one_risk_factor(kb):
    assert evaluate(record(b12(300), NEURO, med(c.METFORMIN), GFR_OK), kb) == []


def test_age_does_not_count_towards_the_two_risk_factors(kb):
    assert evaluate(record(b12(300), NEURO, med(c.METFORMIN), GFR_OK, age=80), kb) == []


def test_fires_for_normal_b12_with_a_positive_intrinsic_factor_antibody(kb):
    rec = record(b12(300), NEURO, lab(c.IF_ANTIBODY, None, 500, positive=True), GFR_OK)
    finding = one(rec, kb)
    assert finding.trigger == "R1-B" and "falsely normalise" in evidence_text(finding)


@pytest.mark.parametrize(("onset", "fires"), [(365, True), (366, False)])
def test_trigger_b_needs_a_symptom_with_onset_within_12_months(kb, onset, fires):
    rec = record(b12(300), problem(c.NEURO_SENSORY, onset), med(c.METFORMIN), med(c.PPI), GFR_OK)
    assert bool(evaluate(rec, kb)) is fires


def test_does_not_suppress_a_symptomatic_patient_just_above_the_normal_cut_off(kb):
    """Edge case 10: B12 just above 258 with symptoms and risk factors still fires (Trigger B)."""
    rec = record(b12(262), NEURO, problem(c.COELIAC, 2000), med(c.PPI), GFR_OK)
    assert one(rec, kb).trigger == "R1-B"


# --- Trigger C: nitrous oxide ------------------------------------------------------------------------


def test_recommends_mma_and_homocysteine_after_nitrous_oxide_even_with_normal_b12(kb):
    rec = record(b12(400), problem(c.NITROUS_OXIDE_EXPOSURE, 60), GFR_OK)
    finding = one(rec, kb)
    assert finding.trigger == "R1-C" and finding.indicator is Indicator.WARNING
    assert action_keys(finding) == [c.MMA, c.HOMOCYSTEINE]
    assert "paris-2023" in finding.citations


def test_fires_after_nitrous_oxide_with_no_b12_result_at_all(kb):
    finding = one(record(problem(c.NITROUS_OXIDE_EXPOSURE, 60), GFR_OK), kb)
    assert finding.trigger == "R1-C" and any("no valid B12" in line for line in finding.rationale)


def test_fires_after_nitrous_oxide_when_the_b12_was_drawn_on_replacement(kb):
    rec = record(
        b12(400, 30),
        med(c.B12_REPLACEMENT, active=False, route="parenteral", start_days_ago=150, end_days_ago=100),
        problem(c.NITROUS_OXIDE_EXPOSURE, 60),
        GFR_OK,
    )
    assert one(rec, kb).trigger == "R1-C"


def test_combines_triggers_into_one_card(kb):
    rec = record(b12(200), NEURO, problem(c.NITROUS_OXIDE_EXPOSURE, 60), GFR_OK)
    assert one(rec, kb).trigger == "R1-C+R1-A"


# --- Pregnancy (edge case 3) -----------------------------------------------------------------------------


def test_in_pregnancy_borderline_total_b12_recommends_active_b12_first_as_info(kb):
    rec = record(b12(200, 20), problem(c.PREGNANCY, 100), GFR_OK)
    finding = one(rec, kb)
    assert finding.trigger == "R1-P" and finding.indicator is Indicator.INFO
    assert action_keys(finding) == [c.B12_ACTIVE, c.MMA]
    assert any("Pregnancy" in cav for cav in finding.caveats)


def test_in_pregnancy_a_low_total_b12_recommends_active_b12_first_instead_of_treatment(kb):
    finding = one(record(b12(100, 20), problem(c.PREGNANCY, 100), GFR_OK), kb)
    assert finding.trigger == "R1-P" and finding.indicator is Indicator.INFO
    assert action_keys(finding) == [c.B12_ACTIVE] and finding.summary.startswith("Low total B12")


def test_in_pregnancy_an_active_b12_from_this_pregnancy_replaces_the_total_b12(kb):
    rec = record(b12(100, 10), active_b12(20, 30), problem(c.PREGNANCY, 100), GFR_OK)
    assert evaluate(rec, kb) == []  # active B12 deficient: the treatment card speaks


def test_in_pregnancy_neuro_symptoms_do_not_raise_the_indicator(kb):
    rec = record(active_b12(40, 20), NEURO, problem(c.PREGNANCY, 100), GFR_OK)
    finding = one(rec, kb)
    assert finding.indicator is Indicator.INFO and c.B12_ACTIVE not in action_keys(finding)


# --- Exclusions ------------------------------------------------------------------------------------------


def test_returns_no_card_when_mma_already_resulted_after_the_b12(kb):
    assert evaluate(record(b12(200, 30), mma(0.3, 10), NEURO, GFR_OK), kb) == []


@pytest.mark.parametrize(("mma_days_ago", "fires"), [(120, False), (121, True)])
def test_an_mma_up_to_90_days_before_the_b12_counts_as_already_done(kb, mma_days_ago, fires):
    rec = record(b12(200, 30), mma(0.3, mma_days_ago), NEURO, GFR_OK)
    assert bool(evaluate(rec, kb)) is fires


def test_returns_no_card_when_b12_is_deficient(kb):
    """Edge case 5: diagnosis made; the treatment card speaks instead."""
    assert evaluate(record(b12(100), NEURO, problem(c.NITROUS_OXIDE_EXPOSURE, 60), GFR_OK), kb) == []


def test_returns_no_card_when_the_b12_was_drawn_on_replacement(kb):
    """Edge case 1."""
    rec = record(
        b12(200, 30),
        med(c.B12_REPLACEMENT, active=False, route="parenteral", start_days_ago=150, end_days_ago=100),
        NEURO,
        GFR_OK,
    )
    assert evaluate(rec, kb) == []


def test_returns_no_card_when_replacement_started_after_the_b12_sample(kb):
    rec = record(
        b12(200, 200),
        med(c.B12_REPLACEMENT, active=False, route="oral", dose_mg=1, start_days_ago=150, end_days_ago=120),
        NEURO,
        GFR_OK,
    )
    assert evaluate(rec, kb) == []


def test_returns_no_card_when_b12_replacement_is_active(kb):
    assert evaluate(record(b12(200), NEURO, med(c.B12_REPLACEMENT, route="parenteral"), GFR_OK), kb) == []


def test_returns_no_card_without_a_b12_in_the_last_12_months(kb):
    """Edge case 7: stale B12 is ignored; the first-line test is B12, not MMA."""
    assert evaluate(record(b12(200, 400), NEURO, GFR_OK), kb) == []


@pytest.mark.parametrize(
    ("status", "fires"),
    [("active", False), ("draft", False), ("on-hold", False), ("completed", True), ("revoked", True)],
)
def test_an_open_mma_order_suppresses_the_card(kb, status, fires):
    assert bool(evaluate(record(b12(200), NEURO, order(c.MMA, status=status), GFR_OK), kb)) is fires


def test_indeterminate_b12_with_normal_mma_gives_no_card(kb):
    """Edge case 6."""
    assert evaluate(record(b12(200, 30), mma(0.25, 5), NEURO, GFR_OK), kb) == []


# --- Modifiers -----------------------------------------------------------------------------------------


def test_adds_a_renal_caveat_when_egfr_is_below_60(kb):
    finding = one(record(b12(200), NEURO, egfr(45)), kb)
    assert any("kidney" in cav for cav in finding.caveats)
    assert "design-convention" in finding.citations


def test_below_egfr_30_suggests_active_b12_and_says_only_mma_above_075_counts(kb):
    finding = one(record(b12(200), NEURO, egfr(25)), kb)
    assert action_keys(finding)[:2] == [c.B12_ACTIVE, c.MMA]
    strongly_raised = f"{kb.value('mma.strongly-raised'):g}"  # the caveat names the number knowledge holds
    assert any(strongly_raised in cav for cav in finding.caveats)


def test_below_egfr_30_does_not_suggest_active_b12_when_it_was_measured(kb):
    finding = one(record(active_b12(40, 10), NEURO, egfr(25)), kb)
    assert c.B12_ACTIVE not in action_keys(finding)


@pytest.mark.parametrize(("gfr", "caveat"), [(60, False), (59, True)])
def test_the_renal_caveat_starts_below_60(kb, gfr, caveat):
    finding = one(record(b12(200), NEURO, egfr(gfr)), kb)
    assert any("kidney" in cav for cav in finding.caveats) is caveat


def test_suggests_egfr_and_creatinine_when_renal_function_is_not_known(kb):
    finding = one(record(b12(200), NEURO), kb)
    assert action_keys(finding) == [c.MMA, c.EGFR, "creatinine"]


def test_suggests_an_intrinsic_factor_antibody_when_autoimmune_gastritis_is_possible(kb):
    finding = one(record(b12(200), problem(c.AUTOIMMUNE_ENDOCRINE, 2000), GFR_OK), kb)
    assert c.IF_ANTIBODY in action_keys(finding)


def test_does_not_suggest_a_test_already_ordered(kb):
    finding = one(record(b12(200), NEURO, order(c.EGFR), order("creatinine")), kb)
    assert action_keys(finding) == [c.MMA]


def test_says_when_inputs_were_unavailable_and_when_a_result_could_not_be_read(kb):
    rec = record(unreadable_b12(5), b12(200, 40), NEURO, GFR_OK, unavailable=["medicationStatements"])
    finding = one(rec, kb)
    assert any("medication statements" in cav for cav in finding.caveats)
    assert any("could not be interpreted" in cav for cav in finding.caveats)


def test_flags_medications_matched_by_name(kb):
    finding = one(record(b12(200), med(c.METFORMIN, matched_by="text"), GFR_OK), kb)
    assert any("by name" in cav for cav in finding.caveats)
