"""Shared rule helpers: B12 status, MMA/renal, neuro red flags, risk factors, B12 cover."""

from __future__ import annotations

import pytest

from cds_service.clinical.rules.b12_status import classify_b12
from cds_service.clinical.rules.cover import b12_cover, folate_exclusion_reason
from cds_service.clinical.rules.mma import assess_mma, latest_homocysteine, renal_context
from cds_service.clinical.rules.neuro import assess_neuro
from cds_service.clinical.rules.risk import assess_risk
from cds_service.knowledge import concepts as c
from cds_service.knowledge import load_knowledge
from tests.support.factories import active_b12, b12, egfr, lab, med, mma, problem, record, unreadable_b12

# --- B12 bands -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "status"),
    [
        (132.0, "deficient"),
        (132.4, "deficient"),  # rounds to 132
        (132.8, "indeterminate"),  # 180 ng/L is NICE's indeterminate lower edge
        (133.0, "indeterminate"),
        (258.0, "indeterminate"),
        (258.2, "indeterminate"),  # 350 ng/L
        (257.5, "indeterminate"),  # 349 pg/mL
        (259.0, "normal"),  # 351 pg/mL
        (258.6, "normal"),
    ],
)
def test_total_b12_is_classified_at_the_nice_band_edges(kb, value, status):
    assert classify_b12(record(b12(value)), kb).status == status


@pytest.mark.parametrize(
    ("value", "status"), [(24, "deficient"), (25, "indeterminate"), (70, "indeterminate"), (71, "normal")]
)
def test_active_b12_is_classified_at_its_own_band_edges(kb, value, status):
    assert classify_b12(record(active_b12(value)), kb).status == status


@pytest.mark.parametrize(
    ("comparator", "value", "status"),
    [
        ("<", 73.78, "deficient"),  # '< 100 pg/mL'
        ("<", 133.0, "deficient"),  # true value below the cut-off itself
        ("<", 147.6, "indeterminate"),  # '< 200 pg/mL' could be either: classified by its bound
        (">", 1475.6, "normal"),  # '> 2000 pg/mL'
        (">", 258.0, "normal"),
        (">", 200.0, "indeterminate"),
    ],
)
def test_comparators_classify_by_their_bound(kb, comparator, value, status):
    assessment = classify_b12(record(b12(value, comparator=comparator)), kb)
    assert assessment.status == status
    assert assessment.bound_note and comparator in assessment.bound_note


def test_active_b12_wins_over_total_b12_on_the_same_day(kb):
    assessment = classify_b12(record(b12(300, 10), active_b12(20, 10)), kb)
    assert assessment.status == "deficient" and assessment.index.analyte == c.B12_ACTIVE


def test_the_newest_result_wins_on_different_days(kb):
    assessment = classify_b12(record(b12(300, 5), active_b12(20, 10)), kb)
    assert assessment.status == "normal" and assessment.index.analyte == c.B12_TOTAL


def test_results_older_than_the_look_back_are_stale_and_ignored(kb):
    assessment = classify_b12(record(b12(100, 366)), kb)
    assert assessment.status == "none" and assessment.index is None
    assert len(assessment.stale) == 1
    assert any("older than" in (e.note or "") for e in assessment.evidence(kb))


def test_a_result_exactly_at_the_look_back_edge_still_counts(kb):
    edge = kb.value("window.b12-lookback-days")
    assert classify_b12(record(b12(100, edge)), kb).status == "deficient"


def test_the_look_back_comes_from_knowledge():
    kb = load_knowledge(threshold_overrides={"window.b12-lookback-days": 30})
    assert classify_b12(record(b12(100, 31)), kb).status == "none"


def test_a_site_threshold_override_changes_the_band(kb):
    assert classify_b12(record(b12(140)), kb).status == "indeterminate"
    site = load_knowledge(threshold_overrides={"b12-total.deficient-below": 148})
    assert classify_b12(record(b12(140)), site).status == "deficient"


@pytest.mark.parametrize(
    ("replacement", "invalid"),
    [
        (dict(route="parenteral", start_days_ago=100, end_days_ago=60), True),  # IM any dose within 90 d
        (dict(route="parenteral", start_days_ago=200, end_days_ago=121), False),  # ended 91 d before sample
        (dict(route="oral", dose_mg=1.0, start_days_ago=100, end_days_ago=60), True),
        (
            dict(route="oral", dose_mg=0.05, start_days_ago=100, end_days_ago=60),
            False,
        ),  # low-dose multivitamin
        # dose unknown: not counted, so a deficient result is never discarded on a guess
        (dict(route="oral", dose_mg=None, start_days_ago=100, end_days_ago=60), False),
        (dict(draft=True), False),  # not taken yet
        (dict(route="parenteral", start_days_ago=100, end_days_ago=60, status="entered-in-error"), False),
    ],
)
def test_b12_drawn_on_replacement_is_invalid_for_interpretation(kb, replacement, invalid):
    rec = record(b12(100, 30), med(c.B12_REPLACEMENT, active=False, **replacement))
    assessment = classify_b12(rec, kb)
    assert (assessment.status == "invalid") is invalid
    if invalid:
        assert any("drawn on B12 replacement" in (e.note or "") for e in assessment.evidence(kb))


def test_an_older_valid_result_is_used_when_the_newest_was_drawn_on_replacement(kb):
    rec = record(
        b12(100, 200),
        b12(400, 20),
        med(c.B12_REPLACEMENT, active=False, route="parenteral", start_days_ago=60, end_days_ago=30),
    )
    assessment = classify_b12(rec, kb)
    assert assessment.status == "deficient" and len(assessment.invalid) == 1


def test_an_uninterpretable_result_is_kept_and_reported_never_classified(kb):
    assessment = classify_b12(record(unreadable_b12()), kb)
    assert assessment.status == "uninterpretable" and assessment.index is None
    assert any("unit missing" in (e.note or "") for e in assessment.evidence(kb))


def test_an_uninterpretable_result_does_not_hide_an_older_valid_one(kb):
    assessment = classify_b12(record(unreadable_b12(5), b12(200, 60)), kb)
    assert assessment.status == "indeterminate" and len(assessment.uninterpretable) == 1


@pytest.mark.parametrize("status", ["entered-in-error", "cancelled", "preliminary"])
def test_results_with_an_unusable_status_are_ignored(kb, status):
    assert classify_b12(record(b12(100, status=status)), kb).status == "none"


def test_in_pregnancy_only_results_from_the_current_pregnancy_count(kb):
    rec = record(b12(100, 200), problem(c.PREGNANCY, 150))
    assessment = classify_b12(rec, kb)
    assert assessment.status == "none" and assessment.pregnant and len(assessment.before_pregnancy) == 1


def test_in_pregnancy_active_b12_is_preferred_to_a_newer_total_b12(kb):
    rec = record(b12(120, 10), active_b12(50, 40), problem(c.PREGNANCY, 100))
    assessment = classify_b12(rec, kb)
    assert assessment.index.analyte == c.B12_ACTIVE and assessment.status == "indeterminate"


# --- MMA and renal modifiers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("age", "value", "raised"),
    [
        (50, 0.40, False),
        (50, 0.41, True),
        (70, 0.45, False),
        (70, 0.47, True),
        (65, 0.46, False),
        (64, 0.42, True),
    ],
)
def test_mma_is_raised_above_the_adult_or_age_adjusted_limit(kb, age, value, raised):
    result = mma(value)
    assert assess_mma(result, record(result, age=age), kb).raised is raised


def test_mma_uses_the_lab_reference_range_when_sent(kb):
    result = mma(0.35, reference_high=0.30)
    assessment = assess_mma(result, record(result), kb)
    assert assessment.raised and assessment.uln_source == "lab reference range"


@pytest.mark.parametrize(("value", "strong"), [(0.75, False), (0.76, True)])
def test_mma_is_strongly_raised_only_above_the_strong_limit(kb, value, strong):
    result = mma(value)
    assert assess_mma(result, record(result), kb).strongly_raised is strong


@pytest.mark.parametrize(
    ("gfr", "days_ago", "interpretation"),
    [
        (61, 10, "raised"),
        (60, 10, "raised"),
        (59, 10, "possibly-renal"),
        (30, 10, "possibly-renal"),
        (29, 10, "uninterpretable"),
        (20, 91, "raised"),  # eGFR too old to apply
    ],
)
def test_renal_function_modifies_a_moderately_raised_mma(kb, gfr, days_ago, interpretation):
    result = mma(0.55)
    rec = record(result, egfr(gfr, days_ago))
    assert assess_mma(result, rec, kb).interpretation == interpretation


def test_a_strongly_raised_mma_still_counts_in_severe_renal_impairment(kb):
    result = mma(0.80)
    assessment = assess_mma(result, record(result, egfr(20)), kb)
    assert assessment.interpretation == "strongly-raised" and assessment.supports_deficiency


def test_ckd_without_a_recent_egfr_gives_a_caveat(kb):
    renal = renal_context(record(problem(c.CKD, 800)), kb)
    assert renal.level == "unknown" and renal.caveats(kb)


@pytest.mark.parametrize(("value", "raised"), [(15, False), (15.5, True)])
def test_homocysteine_is_raised_above_the_default_limit(kb, value, raised):
    assert latest_homocysteine(record(lab(c.HOMOCYSTEINE, value)), kb).raised is raised


# --- neuro -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("days_ago", "new"), [(90, True), (91, False)])
def test_a_gait_disorder_is_a_new_red_flag_within_90_days(kb, days_ago, new):
    neuro = assess_neuro(record(problem(c.NEURO_GAIT, days_ago)), kb)
    assert bool(neuro.new_red_flags) is new


@pytest.mark.parametrize("domain", [c.NEURO_WEAKNESS, c.NEURO_BLADDER_BOWEL, c.NEURO_COGNITIVE])
def test_weakness_bladder_and_cognitive_findings_are_red_flag_domains(kb, domain):
    assert assess_neuro(record(problem(domain, 10)), kb).new_red_flags


def test_scd_is_a_red_flag_at_any_date(kb):
    neuro = assess_neuro(record(problem(c.NEURO_SCD_MYELOPATHY, 1000)), kb)
    assert neuro.scd and neuro.red_flags


def test_a_red_flag_without_a_date_cannot_be_shown_to_be_new(kb):
    assert not assess_neuro(record(problem(c.NEURO_GAIT, None)), kb).new_red_flags


def test_two_different_sensory_findings_close_together_approximate_spreading_numbness(kb):
    rec = record(problem(c.NEURO_SENSORY, 40, code="91019004"), problem(c.NEURO_SENSORY, 10, code="44077006"))
    assert len(assess_neuro(rec, kb).spreading_numbness) == 2


@pytest.mark.parametrize(
    ("first", "second", "same_code"),
    [(40, 10, True), (110, 10, False), (200, 150, False)],  # same code; > 90 days apart; neither new
)
def test_sensory_pairs_that_are_not_spreading_numbness(kb, first, second, same_code):
    codes = ("91019004", "91019004") if same_code else ("91019004", "44077006")
    rec = record(
        problem(c.NEURO_SENSORY, first, code=codes[0]), problem(c.NEURO_SENSORY, second, code=codes[1])
    )
    assert not assess_neuro(rec, kb).spreading_numbness


def test_old_symptoms_without_new_red_flags_are_chronic_stable(kb):
    assert assess_neuro(record(problem(c.NEURO_SENSORY, 400)), kb).chronic_stable
    assert not assess_neuro(
        record(problem(c.NEURO_SENSORY, 400), problem(c.NEURO_GAIT, 5)), kb
    ).chronic_stable


def test_inactive_problems_are_not_neuro_symptoms(kb):
    assert not assess_neuro(record(problem(c.NEURO_SENSORY, 10, active=False)), kb).any


# --- risk factors and nitrous oxide -------------------------------------------------------------------


def test_active_metformin_is_a_risk_factor_but_a_stopped_or_draft_one_is_not(kb):
    assert assess_risk(record(med(c.METFORMIN)), kb).count_without_age == 1
    assert not assess_risk(record(med(c.METFORMIN, active=False)), kb).any
    assert not assess_risk(record(med(c.METFORMIN, draft=True)), kb).any


@pytest.mark.parametrize(("age", "soft"), [(65, True), (64, False)])
def test_age_is_only_a_soft_risk_factor(kb, age, soft):
    risk = assess_risk(record(age=age), kb)
    assert risk.any is soft and risk.count_without_age == 0


def test_lifelong_risk_conditions_count_even_when_resolved_but_diet_needs_to_be_current(kb):
    assert assess_risk(record(problem(c.GASTRIC_SURGERY, 3000, active=False)), kb).count_without_age == 1
    assert not assess_risk(record(problem(c.VEGAN_DIET, 3000, active=False)), kb).any


@pytest.mark.parametrize(
    ("item", "exposed"),
    [
        (problem(c.NITROUS_OXIDE_EXPOSURE, 300, active=False), True),
        (problem(c.NITROUS_OXIDE_EXPOSURE, 400, active=False), False),
        (problem(c.NITROUS_OXIDE_EXPOSURE, 2000, active=True), True),
        (med(c.NITROUS_OXIDE_DRUG, active=False, start_days_ago=210, end_days_ago=200), True),
        (med(c.NITROUS_OXIDE_DRUG, active=False, start_days_ago=500, end_days_ago=400), False),
        (med(c.NITROUS_OXIDE_DRUG, draft=True), False),
    ],
)
def test_nitrous_oxide_exposure_counts_within_12_months(kb, item, exposed):
    assert assess_risk(record(item), kb).n2o_exposed is exposed


# --- cover and folate therapy ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("replacement", "covered"),
    [
        (dict(route="oral", dose_mg=1.0), True),
        (dict(route="oral", dose_mg=0.5), False),
        (dict(route="parenteral", dose_mg=0.1), True),
        (dict(route="parenteral", active=False, start_days_ago=120, end_days_ago=89), True),
        (dict(route="parenteral", active=False, start_days_ago=120, end_days_ago=91), False),
    ],
)
def test_b12_cover_is_replacement_strength_taken_now_or_in_the_last_90_days(kb, replacement, covered):
    assert b12_cover(record(med(c.B12_REPLACEMENT, **replacement)), kb).any is covered


def test_a_draft_b12_order_is_cover_only_when_drafts_are_included(kb):
    rec = record(med(c.B12_REPLACEMENT, draft=True, route="parenteral"))
    assert b12_cover(rec, kb).any and not b12_cover(rec, kb, include_drafts=False).any


@pytest.mark.parametrize(
    ("classes", "reason"),
    [
        ({c.FOLIC_ACID}, None),
        ({c.LEVOMEFOLATE}, None),
        ({c.FOLIC_ACID, c.B12_REPLACEMENT}, "contains B12"),
        ({c.LEVOMEFOLATE, c.HORMONAL_CONTRACEPTIVE}, "contraceptive"),
        ({c.FOLIC_ACID, c.LEUCOVORIN}, "leucovorin"),
    ],
)
def test_folate_therapy_is_folate_without_b12_in_the_same_product(kb, classes, reason):
    found = folate_exclusion_reason(med(classes), kb)
    assert (found is None) if reason is None else (reason in found)


@pytest.mark.parametrize(
    ("classes", "switch"),
    [({c.LEUCOVORIN}, "policy.exclude-leucovorin"),
     ({c.LEVOMEFOLATE, c.HORMONAL_CONTRACEPTIVE}, "policy.exclude-contraceptive-levomefolate")],
)
def test_each_folate_exclusion_is_a_site_switch(kb, classes, switch):
    assert folate_exclusion_reason(med(classes), kb) is not None
    assert folate_exclusion_reason(med(classes), load_knowledge(threshold_overrides={switch: 0})) is None
