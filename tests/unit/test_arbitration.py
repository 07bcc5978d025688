"""Arbitration (clinical-reference 4.6 D1): one B12-state card, drug cards separate, no action twice."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from cds_service.clinical.arbitration import arbitrate, b12_state_precedence
from cds_service.clinical.findings import EvidenceItem, Finding, Indicator, ProposedAction

LAB = "order-lab"
MED = "order-medication"


def finding(family: str, indicator: Indicator = Indicator.WARNING, *actions: tuple[str, str],
            evidence: tuple[str, ...] = ("B12",), trigger: str = "T") -> Finding:
    return Finding(
        family=family, trigger=trigger, indicator=indicator, summary=f"{family} summary", rationale=("why",),
        evidence=tuple(EvidenceItem("lab", e, e, reference=f"Observation/{e}") for e in evidence),
        actions=tuple(ProposedAction(kind, key) for kind, key in actions),  # type: ignore[arg-type]
        citations=(f"cite-{family}",),
    )


def keys(f: Finding) -> list[tuple[str, str]]:
    return [(a.kind, a.key) for a in f.actions]


def test_the_precedence_is_data_in_the_registry():
    ranks = b12_state_precedence()
    assert sorted(ranks, key=ranks.get) == ["urgent-neuro-review", "b12-untreated", "mma-testing", "b12-testing"]
    assert "folate-without-b12" not in ranks and "nitrous-oxide-risk" not in ranks


def test_urgent_and_untreated_become_one_card_with_the_treatment_once():
    urgent = finding("urgent-neuro-review", Indicator.CRITICAL, ("referral", "neurology-urgent"), (LAB, "mma"),
                     (MED, "hydroxocobalamin-im-neuro"), evidence=("B12", "gait"), trigger="R3-C")
    untreated = finding("b12-untreated", Indicator.CRITICAL, (MED, "hydroxocobalamin-im-neuro"),
                        (LAB, "intrinsic-factor-antibody"), evidence=("B12", "metformin"), trigger="U-DEF")
    [card] = arbitrate([untreated, urgent])
    assert card.family == "urgent-neuro-review" and card.indicator is Indicator.CRITICAL
    assert keys(card).count((MED, "hydroxocobalamin-im-neuro")) == 1
    assert (LAB, "intrinsic-factor-antibody") in keys(card)  # unique action folded in
    assert [e.label for e in card.evidence] == ["B12", "gait", "metformin"]  # unique evidence folded in
    assert card.trigger == "R3-C+b12-untreated:U-DEF" and "cite-b12-untreated" in card.citations


def test_a_lower_card_never_adds_a_second_regimen():
    urgent = finding("urgent-neuro-review", Indicator.CRITICAL, (MED, "hydroxocobalamin-im-neuro"))
    untreated = finding("b12-untreated", Indicator.WARNING, (MED, "hydroxocobalamin-im"), (MED, "cyanocobalamin-oral"))
    [card] = arbitrate([urgent, untreated])
    assert [k for k in keys(card) if k[0] == MED] == [(MED, "hydroxocobalamin-im-neuro")]


def test_mma_card_folds_into_urgent_without_repeating_its_tests():
    urgent = finding("urgent-neuro-review", Indicator.CRITICAL, (LAB, "mma"), (LAB, "homocysteine"))
    mma = finding("mma-testing", Indicator.WARNING, (LAB, "mma"), (LAB, "homocysteine"), (LAB, "egfr"))
    [card] = arbitrate([mma, urgent])
    assert keys(card) == [(LAB, "mma"), (LAB, "homocysteine"), (LAB, "egfr")]


def test_drug_cards_stay_but_give_up_what_the_b12_card_already_offers():
    urgent = finding("urgent-neuro-review", Indicator.CRITICAL, (LAB, "b12-total"), (MED, "hydroxocobalamin-im-neuro"),
                     ("advice", "advice-n2o-alternative"))
    folate = finding("folate-without-b12", Indicator.CRITICAL, (LAB, "b12-total"), (MED, "hydroxocobalamin-im-neuro"),
                     ("advice", "advice-n2o-alternative"))
    cards = arbitrate([folate, urgent])
    assert [c.family for c in cards] == ["urgent-neuro-review", "folate-without-b12"]
    assert keys(cards[1]) == []
    assert any("offered there, once" in c for c in cards[1].caveats)


def test_two_drug_cards_do_not_both_offer_b12_treatment():
    folate = finding("folate-without-b12", Indicator.WARNING, (MED, "hydroxocobalamin-im"),
                     (MED, "cyanocobalamin-oral"))
    n2o = finding("nitrous-oxide-risk", Indicator.WARNING, ("advice", "advice-n2o-alternative"),
                  (MED, "hydroxocobalamin-im"))
    cards = arbitrate([folate, n2o])
    assert keys(cards[0]) == [(MED, "hydroxocobalamin-im"), (MED, "cyanocobalamin-oral")]
    assert keys(cards[1]) == [("advice", "advice-n2o-alternative")]


def test_single_cards_pass_through_unchanged():
    alone = finding("mma-testing", Indicator.INFO, (LAB, "mma"))
    assert arbitrate([alone]) == [alone]
    assert arbitrate([]) == []


FAMILIES = ["urgent-neuro-review", "b12-untreated", "mma-testing", "b12-testing", "folate-without-b12",
            "nitrous-oxide-risk"]
ACTIONS = [(LAB, "mma"), (LAB, "b12-total"), (LAB, "homocysteine"), (MED, "hydroxocobalamin-im"),
           (MED, "hydroxocobalamin-im-neuro"), (MED, "cyanocobalamin-oral"), ("referral", "neurology-urgent"),
           ("advice", "advice-n2o-alternative")]
findings_strategy = st.lists(
    st.builds(
        lambda family, indicator, actions: finding(family, indicator, *actions),
        st.sampled_from(FAMILIES),
        st.sampled_from(list(Indicator)),
        st.lists(st.sampled_from(ACTIONS), unique=True, max_size=5),
    ),
    max_size=6,
    unique_by=lambda f: f.family,
)


@settings(max_examples=300, deadline=None)
@given(findings_strategy)
def test_arbitration_invariants(findings):
    cards = arbitrate(findings)
    state = [c for c in cards if c.family in b12_state_precedence()]
    assert len(state) <= 1
    before = max((f.indicator.rank for f in findings), default=-1)
    after = max((c.indicator.rank for c in cards), default=-1)
    assert before == after, "arbitration never lowers (or raises) the highest indicator"
    offered = [(k, key) for c in cards for k, key in keys(c)]
    assert len(offered) == len(set(offered)), "no action offered twice in one response"
    for card in cards:
        regimens = [k for k in keys(card) if k[0] == MED]
        if card.family in b12_state_precedence() and len(state) == 1:
            treated = [k for c in cards if c.family not in b12_state_precedence() for k in keys(c)
                       if k[0] == MED]
            assert not (regimens and treated), "B12 treatment is offered on one card only"
    drugs_before = sorted(f.family for f in findings if f.family not in b12_state_precedence())
    assert sorted(c.family for c in cards if c.family not in b12_state_precedence()) == drugs_before
