"""nitrous-oxide-risk: a draft nitrous oxide order in a patient whose B12 may already be low."""

from __future__ import annotations

import pytest

from cds_service.clinical.findings import Indicator
from cds_service.clinical.rules.nitrous_oxide_risk import evaluate as _nitrous_oxide_risk_rule
from cds_service.knowledge import concepts as c
from tests.support.factories import (
    action_keys,
    b12,
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
    return run_rule(_nitrous_oxide_risk_rule, rec, kb, hook)


def n2o_draft(ref: str = "MedicationRequest/n2o"):
    return med(c.NITROUS_OXIDE_DRUG, draft=True, ref=ref)


def one(rec, kb):
    finding = only_finding(evaluate(rec, kb), kb)
    assert finding.indicator is Indicator.WARNING and "paris-2023" in finding.citations
    return finding


@pytest.mark.parametrize(("value", "status"), [(100, "deficient"), (200, "indeterminate")])
def test_warns_when_nitrous_oxide_is_ordered_for_a_patient_with_low_or_borderline_b12(kb, value, status):
    finding = one(record(n2o_draft(), b12(value)), kb)
    assert status in finding.summary and finding.subject_refs == ("MedicationRequest/n2o",)
    assert "advice-n2o-alternative" in [a.key for a in finding.actions]


def test_suggests_mma_for_borderline_b12_and_treatment_for_deficient_b12(kb):
    assert c.MMA in action_keys(one(record(n2o_draft(), b12(200)), kb))
    assert "hydroxocobalamin-im" in action_keys(one(record(n2o_draft(), b12(100)), kb))


def test_warns_for_neurological_findings_even_with_normal_b12(kb):
    finding = one(record(n2o_draft(), b12(400), problem(c.NEURO_SENSORY, 400)), kb)
    assert "neurological" in finding.summary


@pytest.mark.parametrize("evidence", [mma(0.6), lab(c.HOMOCYSTEINE, 30), problem(c.B12_DEFICIENCY, 800)])
def test_warns_for_raised_mma_homocysteine_or_a_coded_deficiency(kb, evidence):
    assert one(record(n2o_draft(), b12(400), evidence), kb)


@pytest.mark.parametrize("b12_state", [[], [b12(100, 400)], [unreadable_b12()]])
def test_unknown_b12_status_with_a_risk_factor_warns_and_asks_for_a_b12(kb, b12_state):
    finding = one(record(n2o_draft(), med(c.METFORMIN), *b12_state), kb)
    assert c.B12_TOTAL in action_keys(finding)


def test_unknown_b12_status_without_risk_factors_is_silent(kb):
    assert evaluate(record(n2o_draft()), kb) == []


def test_age_alone_does_not_make_unknown_b12_status_a_warning(kb):
    assert evaluate(record(n2o_draft(), age=80), kb) == []


def test_normal_b12_and_no_findings_is_silent(kb):
    assert evaluate(record(n2o_draft(), b12(400), med(c.METFORMIN)), kb) == []


def test_only_draft_orders_trigger_it_not_a_past_exposure(kb):
    past = med(c.NITROUS_OXIDE_DRUG, active=False, start_days_ago=30, end_days_ago=30)
    assert evaluate(record(past, b12(100)), kb) == []


def test_at_order_select_only_a_selected_nitrous_oxide_order_is_a_subject(kb):
    rec = record(
        n2o_draft(),
        med(c.METFORMIN, draft=True, ref="MedicationRequest/x"),
        b12(100),
        subject_refs=["MedicationRequest/x"],
    )
    assert evaluate(rec, kb) == []


def test_b12_replacement_is_shown_but_does_not_silence_the_warning(kb):
    rec = record(n2o_draft(), b12(100, 30), med(c.B12_REPLACEMENT, route="parenteral", start_days_ago=10))
    finding = one(rec, kb)
    assert "hydroxocobalamin-im" not in action_keys(finding)
    assert any("does not prevent" in (e.note or "") for e in finding.evidence)


def test_in_pregnancy_the_b12_test_suggested_is_active_b12(kb):
    rec = record(n2o_draft(), problem(c.PREGNANCY, 100), med(c.PPI))
    assert c.B12_ACTIVE in action_keys(one(rec, kb))
