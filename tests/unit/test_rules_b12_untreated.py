"""b12-untreated: a deficient (or MMA-confirmed) B12 with no replacement never ends in silence."""

from __future__ import annotations

import pytest

from cds_service.clinical.findings import Indicator
from cds_service.clinical.rules.b12_untreated import evaluate as _b12_untreated_rule
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
    return run_rule(_b12_untreated_rule, rec, kb, hook)

def r1(rec, kb, hook=None):
    return run_rule(_mma_testing_rule, rec, kb, hook)


def one(rec, kb):
    return only_finding(evaluate(rec, kb), kb)


def test_recommends_treatment_for_a_deficient_b12_with_no_replacement(kb):
    finding = one(record(b12(100)), kb)
    assert finding.trigger == "U-DEF" and finding.indicator is Indicator.WARNING
    assert action_keys(finding)[:2] == ["hydroxocobalamin-im", "cyanocobalamin-oral"]
    assert "no B12 product in the medication orders and statements received" in evidence_text(finding)


def test_is_critical_and_uses_the_neurological_regimen_with_neuro_symptoms(kb):
    finding = one(record(b12(100), problem(c.NEURO_SENSORY, 400)), kb)
    assert finding.indicator is Indicator.CRITICAL
    assert "hydroxocobalamin-im-neuro" in action_keys(finding)
    assert "cyanocobalamin-oral" not in action_keys(finding)


def test_a_deficient_active_b12_also_fires(kb):
    assert one(record(active_b12(20)), kb).trigger == "U-DEF"


@pytest.mark.parametrize(("value", "fires"), [(132, True), (133, False)])
def test_fires_only_in_the_deficient_band(kb, value, fires):
    assert bool(evaluate(record(b12(value)), kb)) is fires


def test_a_deficient_result_by_comparator_fires(kb):
    assert one(record(b12(73.78, comparator="<", raw_value="100", raw_unit="pg/mL")), kb)


def test_after_nitrous_oxide_only_intramuscular_treatment_is_offered(kb):
    finding = one(record(b12(100), problem(c.NITROUS_OXIDE_EXPOSURE, 60)), kb)
    assert "cyanocobalamin-oral" not in action_keys(finding) and "paris-2023" in finding.citations


def test_suggests_an_intrinsic_factor_antibody_unless_the_cause_is_known_or_tested(kb):
    assert c.IF_ANTIBODY in action_keys(one(record(b12(100)), kb))
    assert c.IF_ANTIBODY not in action_keys(one(record(b12(100), problem(c.PERNICIOUS_ANAEMIA, 900)), kb))
    tested = lab(c.IF_ANTIBODY, None, 300, positive=False)
    assert c.IF_ANTIBODY not in action_keys(one(record(b12(100), tested), kb))


# --- replacement on record ------------------------------------------------------------------------------


def test_returns_no_card_when_replacement_is_active(kb):
    assert evaluate(record(b12(100), med(c.B12_REPLACEMENT, route="parenteral")), kb) == []


def test_returns_no_card_when_replacement_started_after_the_sample_and_finished(kb):
    course = med(c.B12_REPLACEMENT, active=False, route="parenteral", start_days_ago=200, end_days_ago=150)
    assert evaluate(record(b12(100, 250), course), kb) == []


def test_replacement_that_ended_before_the_sample_does_not_count_as_treatment(kb):
    course = med(c.B12_REPLACEMENT, active=False, route="parenteral", start_days_ago=400, end_days_ago=300)
    assert one(record(b12(100, 100), course), kb)


def test_low_dose_oral_b12_is_not_treatment(kb):
    assert one(record(b12(100), med(c.B12_REPLACEMENT, route="oral", dose_mg=0.05)), kb)


def test_returns_no_card_for_a_stale_deficient_result(kb):
    assert evaluate(record(b12(100, 400)), kb) == []


# --- MMA-confirmed deficiency ------------------------------------------------------------------------------


def test_treats_borderline_b12_with_raised_mma_as_deficiency(kb):
    finding = one(record(b12(200, 30), mma(0.6, 10), egfr(80)), kb)
    assert finding.trigger == "U-MMA" and "raised MMA" in finding.summary


def test_borderline_b12_with_normal_mma_gives_no_card(kb):
    assert evaluate(record(b12(200, 30), mma(0.3, 10)), kb) == []


def test_a_possibly_renal_mma_still_counts_with_a_caveat(kb):
    finding = one(record(b12(200, 30), mma(0.6, 10), egfr(45)), kb)
    assert any("kidney" in cav for cav in finding.caveats)


def test_a_moderately_raised_mma_with_egfr_below_30_is_not_confirmation(kb):
    assert evaluate(record(b12(200, 30), mma(0.6, 10), egfr(25)), kb) == []
    assert one(record(b12(200, 30), mma(0.8, 10), egfr(25)), kb).trigger == "U-MMA"


# --- pregnancy (edge case 3) --------------------------------------------------------------------------------


def test_in_pregnancy_a_low_total_b12_is_left_to_r1_which_asks_for_active_b12_first(kb):
    rec = record(b12(100, 20), problem(c.PREGNANCY, 100))
    assert evaluate(rec, kb) == []
    assert [f.trigger for f in r1(rec, kb)] == ["R1-P"]


def test_in_pregnancy_a_low_total_b12_with_a_normal_mma_is_info_and_still_asks_for_active_b12(kb):
    finding = one(record(b12(100, 20), mma(0.3, 10), egfr(80), problem(c.PREGNANCY, 100)), kb)
    assert finding.indicator is Indicator.INFO
    assert action_keys(finding)[0] == c.B12_ACTIVE
    assert any("Pregnancy" in cav for cav in finding.caveats)


def test_in_pregnancy_a_low_total_b12_with_a_raised_mma_is_a_warning(kb):
    finding = one(record(b12(100, 20), mma(0.6, 10), egfr(80), problem(c.PREGNANCY, 100)), kb)
    assert finding.indicator is Indicator.WARNING


def test_in_pregnancy_with_neuro_symptoms_treatment_is_not_delayed(kb):
    finding = one(record(b12(100, 20), problem(c.PREGNANCY, 100), problem(c.NEURO_GAIT, 10)), kb)
    assert finding.indicator is Indicator.CRITICAL


def test_in_pregnancy_a_deficient_active_b12_is_a_normal_warning(kb):
    finding = one(record(active_b12(20, 20), problem(c.PREGNANCY, 100)), kb)
    assert finding.indicator is Indicator.WARNING and c.B12_ACTIVE not in action_keys(finding)


def test_in_pregnancy_an_open_active_b12_order_is_not_repeated(kb):
    rec = record(b12(100, 20), mma(0.3, 10), problem(c.PREGNANCY, 100), order(c.B12_ACTIVE))
    finding = one(rec, kb)
    assert c.B12_ACTIVE not in action_keys(finding)


# --- uninterpretable results (edge case 8) ------------------------------------------------------------------


def test_says_so_when_the_only_recent_b12_could_not_be_interpreted(kb):
    finding = one(record(unreadable_b12()), kb)
    assert finding.trigger == "U-UNINT" and finding.indicator is Indicator.INFO
    assert "could not be interpreted" in finding.summary and "unit missing" in finding.summary
    assert action_keys(finding) == [c.B12_TOTAL]


def test_an_uninterpretable_result_is_silent_when_a_valid_one_exists(kb):
    assert evaluate(record(unreadable_b12(5), b12(300, 40)), kb) == []


def test_an_uninterpretable_result_is_silent_on_replacement(kb):
    assert evaluate(record(unreadable_b12(), med(c.B12_REPLACEMENT, route="parenteral")), kb) == []


def test_an_uninterpretable_result_does_not_re_order_a_pending_b12(kb):
    assert action_keys(one(record(unreadable_b12(), order(c.B12_TOTAL)), kb)) == []


def test_an_uninterpretable_result_is_not_repeated_when_the_folate_card_already_says_so(kb):
    assert evaluate(record(unreadable_b12(), med(c.FOLIC_ACID, dose_mg=5)), kb) == []


def test_no_b12_at_all_gives_no_card(kb):
    assert evaluate(record(), kb) == []
