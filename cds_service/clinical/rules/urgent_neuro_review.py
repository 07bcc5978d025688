"""R3 (`urgent-neuro-review`): findings that may be B12-related spinal cord or nerve damage.

Symptoms suggesting a spinal cord lesion (subacute combined degeneration, SCD) warrant same-day
review (NHS Lothian); treatment is not delayed for results (BSH 2014) and uses the neurological
regimen (BNF); nitrous oxide can precipitate SCD with a normal B12 (Paris 2023; NICE NG239).
Clinical-reference 4.4; indicator always critical.

Triggers: A nitrous oxide within 12 months and any neuro symptom with onset or recorded date within
window.red-flag-days, whatever the B12; B active SCD/myelopathy with B12-related evidence (B12
deficient/indeterminate or a coded B12 deficiency, raised MMA or homocysteine, or a non-age risk
factor); C deficient/indeterminate B12 (or coded deficiency) or raised MMA with a new red flag; D folate
therapy without B12 cover, neuro symptoms and deficiency not excluded (R2 is critical alongside).
Chronic stable symptoms (all first noted > window.neuro-recent-days ago, no new red flag) fire
neither B nor C; an SCD code with no date is treated as current.

Not implemented: the exclusion "neurology referral/encounter already in progress <= 14 days ->
downgrade to info", because the neurology referral code set is unverified (status U) and a U code
never ships as active; the card asks the clinician to check instead. Renal impairment never
suppresses this rule (edge case 2): MMA/homocysteine rises are flagged as caveats only.
In order hooks the rule speaks only when an order under review is folate therapy, nitrous oxide or a
B12/MMA/active-B12 test (clinical-reference 4.4 hooks row, 4.6 D2), so unrelated orders do not repeat
the chart-open card. "Same-day review" wording belongs to spinal-cord and red-flag findings (triggers
B and C, or a new red flag behind A or D); isolated sensory symptoms after nitrous oxide read "urgent
review" without the spinal-cord sentence (4.6 D7).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...knowledge.concepts import B12_ACTIVE, B12_TOTAL, FOLATE_SERUM, HOMOCYSTEINE, MMA
from ..findings import EvidenceItem, Finding, Indicator, ProposedAction
from .b12_status import b12_summary_text
from .common import (
    UNINTERPRETABLE_B12_CAVEAT,
    KnowledgeView,
    applied,
    has_open_order,
    medication_evidence,
    problem_evidence,
    record_caveats,
    since,
    summary,
    unique,
    unique_evidence,
    usable_results,
)
from .cover import cover_evidence
from .mma import homocysteine_caveats
from .neuro import neuro_thresholds
from .orderables import (
    ADVICE_N2O_ABSTINENCE,
    FBC,
    HYDROXOCOBALAMIN_IM_NEURO,
    NEUROLOGY_URGENT,
    NEUROLOGY_URGENT_NEUROPATHY,
)

if TYPE_CHECKING:
    from ..assessment import Assessment

FAMILY = "urgent-neuro-review"


def subject_orders(a: Assessment) -> tuple[str, ...]:
    """Orders under review that let this rule speak in an order hook (4.4, 4.6 D2)."""
    refs = [m.source_ref for m in a.folate.subjects] + [m.source_ref for m in a.subjects.nitrous_oxide]
    refs += [o.source_ref for o in (*a.subjects.b12_tests, *a.subjects.mma_tests)]
    return tuple(dict.fromkeys(refs))


def evaluate(a: Assessment, kb: KnowledgeView) -> list[Finding]:
    record, neuro, b12, risk = a.record, a.neuro, a.b12, a.risk
    subjects: tuple[str, ...] = ()
    if a.order_hook:
        subjects = subject_orders(a)
        if not subjects:
            return []
    if not neuro.any:
        return []
    mma, hcy = a.mma_latest, a.homocysteine
    b12_dx = a.coded_b12_deficiency
    biochemistry = (
        b12.status in ("deficient", "indeterminate") or bool(b12_dx) or (mma is not None and mma.raised)
    )

    triggers: list[str] = []
    flag_start = since(record, kb, "window.red-flag-days")
    if risk.n2o_exposed and neuro.noted_since(flag_start):
        triggers.append("R3-A")
    current_scd = [p for p in neuro.scd if not neuro.is_chronic(p)]
    if neuro.scd and neuro.has_new_non_scd_red_flag:
        current_scd = list(neuro.scd)
    b12_related = biochemistry or (hcy is not None and hcy.raised) or risk.count_without_age >= 1
    if current_scd and b12_related:
        triggers.append("R3-B")
    if biochemistry and neuro.has_new_non_scd_red_flag:
        triggers.append("R3-C")
    ctx = a.folate
    if ctx.applies:
        triggers.append("R3-D")
    if not triggers:
        return []
    spinal = "R3-B" in triggers or "R3-C" in triggers or bool(neuro.red_flags)

    evidence: list[EvidenceItem] = list(neuro.evidence())
    evidence.extend(b12.evidence(kb))
    evidence.extend(problem_evidence(p, "coded B12 deficiency") for p in b12_dx)
    if mma is not None:
        evidence.append(mma.evidence(kb))
    if hcy is not None:
        evidence.append(hcy.evidence(kb))
    evidence.extend(risk.evidence())
    if "R3-D" in triggers:
        evidence.extend(medication_evidence(m, "folate therapy without B12 cover") for m in ctx.subjects)
    if "R3-D" in triggers or a.cover.products:
        evidence.extend(cover_evidence(a.cover, kb, drafts_reviewed=a.order_hook))

    thresholds = list(neuro_thresholds(kb, red_flags=True, recent=True))
    thresholds.extend(b12.thresholds)
    if mma is not None:
        thresholds.extend(mma.thresholds)
    if hcy is not None and hcy.threshold is not None:
        thresholds.append(hcy.threshold)
    thresholds.extend(risk.thresholds)
    if "R3-D" in triggers:
        thresholds.extend(ctx.thresholds(kb))
    thresholds.append(applied(kb, "window.b12-lookback-days", "B12, MMA and homocysteine look-back", "<="))

    citations = ["bsh-2014", "bnf-b12-dosing", "nice-ng239"]
    if spinal:
        citations.insert(0, "nhs-lothian-referral")
    if risk.n2o_exposed:
        citations.extend(["paris-2023", "hashi-2025"])
    if neuro.spreading_numbness or "R3-D" in triggers:
        citations.append("design-convention")
    if "R3-D" in triggers:
        citations.append("lindenbaum-1988")

    caveats = [
        "A neurology referral in progress cannot be detected (referral codes unverified): check first.",
    ]
    if neuro.spreading_numbness:
        caveats.append("'Spreading numbness' is inferred from two sensory findings with different codes.")
    if mma is not None and mma.raised:
        caveats.extend(mma.renal.caveats(kb))
    caveats.extend(homocysteine_caveats(hcy, a.renal, kb))
    if b12.uninterpretable:
        caveats.append(UNINTERPRETABLE_B12_CAVEAT)

    return [
        Finding(
            family=FAMILY,
            trigger="+".join(triggers),
            indicator=Indicator.CRITICAL,
            summary=summary(_summary(triggers, b12_summary_text(b12), spinal)),
            rationale=_rationale(triggers, spinal),
            evidence=unique_evidence(evidence),
            thresholds=unique(thresholds),
            citations=unique(citations),
            actions=_actions(a, kb, triggers, spinal),
            caveats=tuple(caveats) + record_caveats(record, evidence),
            subject_refs=subjects,
        )
    ]


def _summary(triggers: list[str], b12_text: str, spinal: bool) -> str:
    if "R3-B" in triggers:
        return "Possible subacute combined degeneration: same-day neurology review; start IM hydroxocobalamin"
    if "R3-A" in triggers:
        review = "same-day neurology review" if spinal else "urgent neurology review"
        return f"Nitrous oxide use with new neurological symptoms: {review} and IM B12 now"
    if "R3-C" in triggers:
        return f"New neurological red flag with {b12_text}: same-day neurology review; start IM B12"
    return "Folate without B12 and neurological symptoms: urgent review; give IM hydroxocobalamin now"


def _rationale(triggers: list[str], spinal: bool) -> tuple[str, ...]:
    """Why (the trigger, one sentence) and what to do (one sentence): the card anatomy's two lines."""
    why = {
        "R3-B": "A spinal cord disorder is coded together with B12-related evidence.",
        "R3-C": "B12 biochemistry is abnormal and a new neurological red flag has appeared.",
        "R3-A": "Nitrous oxide inactivates B12 and can cause subacute combined degeneration even with a normal "
        "B12 level (Paris 2023).",
        "R3-D": "Folate is given without B12 while deficiency is not excluded, and there are neurological "
        "symptoms: folate can mask the anaemia while nerve damage progresses.",
    }
    lines = [why[t] for t in ("R3-B", "R3-C", "R3-A", "R3-D") if t in triggers][:2]
    review = "Same-day neurology review (NHS Lothian)" if spinal else "Urgent neurology review"
    lines.append(
        f"{review}; draw B12, folate, MMA, homocysteine and FBC, then start hydroxocobalamin on the "
        "neurological regimen without waiting for results (BSH 2014; BNF)."
    )
    return tuple(lines)


def _actions(a: Assessment, kb: KnowledgeView, triggers: list[str], spinal: bool) -> tuple[ProposedAction, ...]:
    record = a.record
    actions = [ProposedAction("referral", NEUROLOGY_URGENT if spinal else NEUROLOGY_URGENT_NEUROPATHY)]
    recent = since(record, kb, "window.red-flag-days")
    b12_test = B12_ACTIVE if a.pregnant else B12_TOTAL
    for key in (b12_test, FOLATE_SERUM, MMA, HOMOCYSTEINE, FBC):
        if has_open_order(record, key):
            continue
        if key in (b12_test, MMA, HOMOCYSTEINE) and any(
            r.interpretable for r in usable_results(record, [key], recent)
        ):
            continue  # a baseline from the last weeks is already there
        actions.append(ProposedAction("order-lab", key))
    if not a.cover.parenteral:
        actions.append(ProposedAction("order-medication", HYDROXOCOBALAMIN_IM_NEURO))
    if "R3-A" in triggers:
        actions.append(ProposedAction("advice", ADVICE_N2O_ABSTINENCE))
    return tuple(a for a in actions if a.kind == "advice" or a.key in kb.orderables)
