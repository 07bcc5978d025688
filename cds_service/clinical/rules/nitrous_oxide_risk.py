"""`nitrous-oxide-risk`: a draft nitrous oxide order in a patient whose B12 may already be low.

Nitrous oxide oxidises cobalamin and inactivates it; in a patient with low or borderline B12 stores it
can precipitate subacute combined degeneration, and the serum level may stay normal (Paris et al.
Pract Neurol 2023, "no agreed guidelines"; NICE NG239 on N2O). The card asks for a B12 status check
or an alternative agent before the order is signed.

Fires for each subject draft order of nitrous oxide (order-select: selected; order-sign: all) when:
B12 is deficient or indeterminate (valid); or a B12 deficiency is coded; or MMA or homocysteine is
raised; or there are neurological findings from the B12 neuro value set; or B12 status is unknown
(none in the look-back, invalid, uninterpretable) and there is at least one non-age risk factor
(age alone would flag every older surgical patient). Indicator warning. Existing B12 replacement is
shown in the evidence but does not silence the card: N2O inactivates B12 whatever the stores.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...knowledge.concepts import B12_ACTIVE, B12_TOTAL, MMA
from ..findings import EvidenceItem, Finding, Indicator, ProposedAction
from .common import (
    KnowledgeView,
    applied,
    has_open_order,
    join_words,
    medication_evidence,
    problem_evidence,
    record_caveats,
    summary,
    unique,
    unique_evidence,
)
from .orderables import ADVICE_N2O_ALTERNATIVE, HYDROXOCOBALAMIN_IM, HYDROXOCOBALAMIN_IM_NEURO

if TYPE_CHECKING:
    from ..assessment import Assessment

FAMILY = "nitrous-oxide-risk"


def evaluate(a: Assessment, kb: KnowledgeView) -> list[Finding]:
    record = a.record
    drafts = a.subjects.nitrous_oxide
    if not drafts:
        return []
    b12, neuro, risk = a.b12, a.neuro, a.risk
    mma, hcy = a.mma_latest, a.homocysteine
    b12_dx = a.coded_b12_deficiency

    reasons: list[str] = []
    if b12.status in ("deficient", "indeterminate"):
        reasons.append(f"{b12.status} B12")
    if b12_dx:
        reasons.append("coded B12 deficiency")
    if (mma is not None and mma.raised) or (hcy is not None and hcy.raised):
        reasons.append("raised MMA or homocysteine")
    if neuro.any:
        reasons.append("neurological findings")
    unknown = b12.status in ("none", "invalid", "uninterpretable")
    if unknown and risk.count_without_age >= 1:
        reasons.append("unknown B12 status and risk factors")
    if not reasons:
        return []

    cover = a.cover
    evidence: list[EvidenceItem] = [medication_evidence(m, "draft order being placed") for m in drafts]
    evidence.extend(b12.evidence(kb))
    evidence.extend(problem_evidence(p, "coded B12 deficiency") for p in b12_dx)
    if mma is not None:
        evidence.append(mma.evidence(kb))
    if hcy is not None:
        evidence.append(hcy.evidence(kb))
    evidence.extend(neuro.evidence())
    evidence.extend(risk.evidence())
    evidence.extend(
        medication_evidence(m, "B12 replacement (does not prevent inactivation)") for m in cover.all
    )
    evidence.extend(
        medication_evidence(p.med, f"not counted as cover: {p.reading}") for p in cover.uncounted
    )

    thresholds = list(b12.thresholds)
    thresholds.append(applied(kb, "window.b12-lookback-days", "B12 result look-back", "<="))
    if mma is not None:
        thresholds.extend(mma.thresholds)
    if hcy is not None and hcy.threshold is not None:
        thresholds.append(hcy.threshold)
    thresholds.extend(risk.thresholds)

    actions: list[ProposedAction] = [ProposedAction("advice", ADVICE_N2O_ALTERNATIVE)]
    b12_test = B12_ACTIVE if a.pregnant else B12_TOTAL
    if unknown and not has_open_order(record, b12_test):
        actions.append(ProposedAction("order-lab", b12_test))
    if (
        b12.status == "indeterminate"
        and a.mma_for_index is None
        and not has_open_order(record, MMA)
    ):
        actions.append(ProposedAction("order-lab", MMA))
    if (b12.status == "deficient" or b12_dx) and not cover.any:
        key = HYDROXOCOBALAMIN_IM_NEURO if neuro.any else HYDROXOCOBALAMIN_IM
        actions.append(ProposedAction("order-medication", key))

    return [
        Finding(
            family=FAMILY,
            trigger="N2O",
            indicator=Indicator.WARNING,
            summary=summary(
                f"Nitrous oxide ordered with {join_words(reasons[:2])}: it inactivates B12 and can "
                "precipitate SCD"
            ),
            rationale=(  # what to do is the advice sentence that follows on the card
                "Nitrous oxide inactivates vitamin B12; with low or borderline stores it can precipitate "
                "subacute combined degeneration, and serum B12 may remain normal (Paris 2023).",
                f"This patient has {join_words(reasons)}.",
            ),
            evidence=unique_evidence(evidence),
            thresholds=unique(thresholds),
            citations=("paris-2023", "nice-ng239"),
            actions=tuple(a for a in actions if a.kind == "advice" or a.key in kb.orderables),
            caveats=record_caveats(record, evidence),
            subject_refs=tuple(m.source_ref for m in drafts),
        )
    ]
