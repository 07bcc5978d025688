"""One answer per clinical problem: the step after the families (clinical-reference 4.6 D1).

The families speak independently; a chart with several findings would otherwise get an urgent card
*and* an untreated-deficiency card offering the same hydroxocobalamin order. Arbitration:

1. keeps at most one card about the patient's B12 state, by the families' precedence (urgent >
   untreated > MMA > testing: b12-testing never shows beside another B12-state card, D8). The lower
   cards' unique evidence, tests, thresholds, citations and
   caveats fold into the kept one, its indicator is the highest of them (arbitration never lowers
   the highest indicator), and its trigger names what was folded so a safety officer can trace it.
   A lower card's B12 treatment is not folded when the kept card already treats: regimens are
   alternatives, never offered side by side;
2. keeps drug cards (folate therapy, a nitrous oxide order) separate, because the clinician acts on
   a different thing, but takes off them any action the B12-state card (or an earlier drug card)
   already offers: the same orderable, the same advice, or a second B12 treatment. The card then
   says where that order is.

Pure: findings in, findings out; nothing about Flask, cards or knowledge.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

from .findings import Finding, ProposedAction
from .rules import B12_STATE_PRECEDENCE
from .rules.common import unique_evidence

TREATMENT_KINDS = frozenset({"order-medication"})


def b12_state_precedence() -> dict[str, int]:
    """Family -> rank (0 answers first) for the B12-state families, from the registry."""
    return {name: rank for rank, name in enumerate(B12_STATE_PRECEDENCE)}


def arbitrate(findings: Sequence[Finding], precedence: Mapping[str, int] | None = None) -> list[Finding]:
    """At most one B12-state finding, drug findings kept, no action offered twice (4.6 D1)."""
    ranks = dict(precedence) if precedence is not None else b12_state_precedence()
    state = sorted((f for f in findings if f.family in ranks), key=lambda f: ranks[f.family])
    drugs = [f for f in findings if f.family not in ranks]
    kept: list[Finding] = []
    if state:
        top = state[0]
        for lower in state[1:]:
            top = fold(top, lower)
        kept.append(_without_repeats(top))
    offered = {_action_key(a) for f in kept for a in f.actions}
    treats = any(a.kind in TREATMENT_KINDS for f in kept for a in f.actions)
    for drug in map(_without_repeats, drugs):
        actions, moved = [], []
        for action in drug.actions:
            if _action_key(action) in offered or (action.kind in TREATMENT_KINDS and treats):
                moved.append(action)
            else:
                actions.append(action)
        offered |= {_action_key(a) for a in actions}
        treats = treats or any(a.kind in TREATMENT_KINDS for a in actions)
        if moved:
            note = "B12 orders already on another card of this response are offered there, once."
            drug = replace(drug, actions=tuple(actions), caveats=_union(drug.caveats, [note]))
        kept.append(drug)
    return kept


def fold(top: Finding, lower: Finding) -> Finding:
    """`top` with `lower`'s unique evidence, tests, thresholds, citations and caveats added."""
    top_treats = any(a.kind in TREATMENT_KINDS for a in top.actions)
    have = {_action_key(a) for a in top.actions}
    extra = [
        a
        for a in lower.actions
        if _action_key(a) not in have and not (a.kind in TREATMENT_KINDS and top_treats)
    ]
    indicator = max(top.indicator, lower.indicator, key=lambda i: i.rank)
    return replace(
        top,
        trigger=f"{top.trigger}+{lower.family}:{lower.trigger}",
        indicator=indicator,
        evidence=unique_evidence(top.evidence + lower.evidence),
        thresholds=_union(top.thresholds, lower.thresholds),
        citations=_union(top.citations, lower.citations),
        actions=_advice_last(top.actions + tuple(extra)),
        caveats=_union(top.caveats, lower.caveats),
        subject_refs=_union(top.subject_refs, lower.subject_refs),
    )


def _without_repeats(finding: Finding) -> Finding:
    """One card never offers the same orderable twice."""
    seen: set[tuple[str, str]] = set()
    actions = []
    for action in finding.actions:
        if _action_key(action) not in seen:
            seen.add(_action_key(action))
            actions.append(action)
    return finding if len(actions) == len(finding.actions) else replace(finding, actions=tuple(actions))


def _action_key(action: ProposedAction) -> tuple[str, str]:
    """Two actions are the same when they order the same thing."""
    return action.kind, action.key


def _advice_last(actions: Iterable[ProposedAction]) -> tuple[ProposedAction, ...]:
    items = list(actions)
    return tuple([a for a in items if a.kind != "advice"] + [a for a in items if a.kind == "advice"])


def _union(first: Iterable, second: Iterable) -> tuple:
    return tuple(dict.fromkeys([*first, *second]))
