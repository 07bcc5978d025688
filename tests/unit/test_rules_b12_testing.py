"""`b12-testing` (clinical-reference 4.6 D8): a first B12 where neuropathy or macrocytosis has none."""

from __future__ import annotations

import pytest

from cds_service.clinical.findings import Indicator
from cds_service.clinical.rules.b12_testing import evaluate as b12_testing_rule
from cds_service.knowledge import concepts as c
from cds_service.knowledge import load_knowledge
from tests.support.factories import (
    action_keys,
    active_b12,
    b12,
    lab,
    med,
    only_finding,
    order,
    problem,
    record,
    run_rule,
)

LONG_METFORMIN = med(c.METFORMIN, start_days_ago=6 * 365, dose_mg=2000)
POLYNEUROPATHY = problem(c.NEURO_SENSORY, 3 * 365, display="Polyneuropathy")  # on the problem list for years


def evaluate(rec, kb, hook=None):
    return run_rule(b12_testing_rule, rec, kb, hook)


def one(rec, kb):
    return only_finding(evaluate(rec, kb), kb)


def test_metformin_with_polyneuropathy_and_no_b12_ever_gets_a_warning_to_test_b12(kb):
    finding = one(record(LONG_METFORMIN, POLYNEUROPATHY), kb)
    assert (finding.trigger, finding.indicator) == ("B-SYM-RISK", Indicator.WARNING)
    assert action_keys(finding) == [c.B12_TOTAL]
    assert "mhra-metformin-2022" in finding.citations
    assert "Polyneuropathy" in finding.summary and "metformin" in finding.summary.lower()


def test_a_symptom_without_a_risk_factor_is_info(kb):
    finding = one(record(problem(c.NEURO_SENSORY, 60)), kb)
    assert (finding.trigger, finding.indicator) == ("B-SYM", Indicator.INFO)
    assert "aan-2009" in finding.citations


def test_age_alone_does_not_make_it_a_warning(kb):
    assert one(record(problem(c.NEURO_SENSORY, 60), age=80), kb).indicator is Indicator.INFO


def test_macrocytosis_alone_is_info_and_asks_for_b12_and_folate(kb):
    finding = one(record(lab(c.MCV, 106, 20)), kb)
    assert (finding.trigger, finding.indicator) == ("B-MCV", Indicator.INFO)
    assert action_keys(finding) == [c.B12_TOTAL, c.FOLATE_SERUM]


def test_pregnancy_asks_for_active_b12(kb):
    finding = one(record(problem(c.NEURO_SENSORY, 60), problem(c.PREGNANCY, 100)), kb)
    assert action_keys(finding) == [c.B12_ACTIVE]


def test_mma_is_offered_only_where_the_lab_offers_b12_with_metabolites():
    switched = load_knowledge(threshold_overrides={"policy.lab-offers-b12-with-metabolites": 1})
    assert action_keys(one(record(LONG_METFORMIN, POLYNEUROPATHY), switched)) == [c.B12_TOTAL, c.MMA]


@pytest.mark.parametrize(
    "blocker",
    [
        order(c.B12_TOTAL),  # a B12 is already ordered
        order(c.B12_ACTIVE, status="draft"),
        b12(400, 200),  # a valid B12 in the look-back
        active_b12(80, 100),
        med(c.B12_REPLACEMENT, route="parenteral"),  # on replacement: a level now is uninformative
    ],
)
def test_silent_with_an_open_b12_order_a_recent_b12_or_replacement(kb, blocker):
    assert evaluate(record(LONG_METFORMIN, POLYNEUROPATHY, blocker), kb) == []


def test_a_b12_older_than_the_look_back_does_not_count(kb):
    assert one(record(LONG_METFORMIN, POLYNEUROPATHY, b12(400, 400)), kb).trigger == "B-SYM-RISK"


def test_a_risk_factor_without_a_symptom_says_nothing(kb):
    assert evaluate(record(LONG_METFORMIN, med(c.PPI)), kb) == []


def test_an_old_non_sensory_symptom_is_not_a_reason(kb):
    assert evaluate(record(problem(c.NEURO_COGNITIVE, 3 * 365), LONG_METFORMIN), kb) == []


def test_never_on_order_hooks(kb):
    rec = record(LONG_METFORMIN, POLYNEUROPATHY, med(c.FOLIC_ACID, draft=True, dose_mg=5))
    assert evaluate(rec, kb, "order-sign") == []
