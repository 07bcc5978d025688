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
In order hooks the rule speaks only when the order in hand is folate, B12, a B12/MMA test or nitrous
oxide (clinical-reference 4.4 hooks row), so unrelated orders do not repeat the chart-open card.
"""

from __future__ import annotations

from ..concepts import (
    B12_ACTIVE,
    B12_DEFICIENCY,
    B12_REPLACEMENT,
    B12_TOTAL,
    FOLATE_SERUM,
    FOLATE_THERAPY_CLASSES,
    HOMOCYSTEINE,
    MMA,
    NITROUS_OXIDE_DRUG,
)
from ..findings import EvidenceItem, Finding, Indicator, ProposedAction
from ..record import PatientRecord
from .b12_status import b12_summary_text, classify_b12
from .common import (
    KnowledgeView,
    active_problems,
    applied,
    has_open_order,
    in_order_context,
    is_pregnant,
    is_subject,
    medication_evidence,
    problem_evidence,
    record_caveats,
    since,
    subject_drafts,
    summary,
    unique,
    usable_results,
)
from .folate_context import folate_context
from .mma import latest_homocysteine, latest_mma
from .neuro import assess_neuro, neuro_thresholds
from .orderables import (
    ADVICE_DRAW_BEFORE_TREATMENT,
    ADVICE_N2O_ABSTINENCE,
    FBC,
    HYDROXOCOBALAMIN_IM_NEURO,
    NEUROLOGY_URGENT,
)
from .risk import assess_risk

FAMILY = "urgent-neuro-review"
_RELEVANT_DRAFT_CLASSES = FOLATE_THERAPY_CLASSES | {NITROUS_OXIDE_DRUG, B12_REPLACEMENT}
_RELEVANT_TESTS = frozenset({B12_TOTAL, B12_ACTIVE, MMA})


def relevant_drafts(record: PatientRecord) -> tuple[str, ...]:
    """Subject draft orders that make this rule speak in an order hook."""
    meds = [m.source_ref for m in subject_drafts(record, _RELEVANT_DRAFT_CLASSES)]
    tests = [
        o.source_ref
        for o in record.orders
        if o.is_draft and is_subject(record, o.source_ref) and o.concepts & _RELEVANT_TESTS
    ]
    return tuple(dict.fromkeys(meds + tests))


def evaluate(record: PatientRecord, kb: KnowledgeView) -> list[Finding]:
    subjects: tuple[str, ...] = ()
    if in_order_context(record):
        subjects = relevant_drafts(record)
        if not subjects:
            return []
    neuro = assess_neuro(record, kb)
    if not neuro.any:
        return []
    b12 = classify_b12(record, kb)
    risk = assess_risk(record, kb)
    mma = latest_mma(record, kb)
    hcy = latest_homocysteine(record, kb)
    b12_dx = active_problems(record, [B12_DEFICIENCY])
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
    ctx = folate_context(record, kb, b12)
    if ctx.applies:
        triggers.append("R3-D")
    if not triggers:
        return []

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
        evidence.append(ctx.cover_evidence(kb))

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

    citations = ["nhs-lothian-referral", "bsh-2014", "bnf-b12-dosing", "nice-ng239"]
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
    if b12.uninterpretable:
        caveats.append(
            "A B12 result could not be interpreted (unit missing or not recognised): see evidence."
        )

    return [
        Finding(
            family=FAMILY,
            trigger="+".join(triggers),
            indicator=Indicator.CRITICAL,
            summary=summary(_summary(triggers, b12_summary_text(b12))),
            rationale=_rationale(triggers),
            evidence=unique(evidence),
            thresholds=unique(thresholds),
            citations=unique(citations),
            actions=_actions(record, kb, triggers, ctx.cover.parenteral),
            caveats=tuple(caveats) + record_caveats(record, evidence),
            subject_refs=subjects,
        )
    ]


def _summary(triggers: list[str], b12_text: str) -> str:
    if "R3-B" in triggers:
        return "Possible subacute combined degeneration: urgent neurology review; start IM hydroxocobalamin"
    if "R3-A" in triggers:
        return "Nitrous oxide use with new neurological symptoms: urgent neurology review and IM B12 now"
    if "R3-C" in triggers:
        return f"New neurological red flag with {b12_text}: urgent neurology review; start IM B12"
    return "Folate without B12 and neurological symptoms: urgent review; give IM hydroxocobalamin now"


def _rationale(triggers: list[str]) -> tuple[str, ...]:
    lines = []
    if "R3-A" in triggers:
        lines.append(
            "Nitrous oxide inactivates B12 and can cause subacute combined degeneration with a normal "
            "B12 level (Paris 2023)."
        )
    if "R3-B" in triggers:
        lines.append("A spinal cord disorder is coded together with B12-related evidence.")
    if "R3-C" in triggers:
        lines.append("B12 biochemistry is abnormal and a new neurological red flag has appeared.")
    if "R3-D" in triggers:
        lines.append(
            "Folate is given without B12 while deficiency is not excluded and there are neurological "
            "symptoms: folate can mask the anaemia while nerve damage progresses."
        )
    lines.append(
        "Spinal cord symptoms warrant same-day review (NHS Lothian); do not delay treatment for "
        "results (BSH 2014)."
    )
    lines.append(
        "Draw B12, folate, MMA, homocysteine and FBC before the first injection, then give "
        "hydroxocobalamin on the neurological regimen (BNF)."
    )
    return tuple(lines)


def _actions(
    record: PatientRecord, kb: KnowledgeView, triggers: list[str], parenteral_cover: bool
) -> tuple[ProposedAction, ...]:
    actions = [ProposedAction("referral", NEUROLOGY_URGENT)]
    recent = since(record, kb, "window.red-flag-days")
    b12_test = B12_ACTIVE if is_pregnant(record) else B12_TOTAL
    for key in (b12_test, FOLATE_SERUM, MMA, HOMOCYSTEINE, FBC):
        if has_open_order(record, key):
            continue
        if key in (b12_test, MMA, HOMOCYSTEINE) and any(
            r.interpretable for r in usable_results(record, [key], recent)
        ):
            continue  # a baseline from the last weeks is already there
        actions.append(ProposedAction("order-lab", key))
    if not parenteral_cover:
        actions.append(ProposedAction("order-medication", HYDROXOCOBALAMIN_IM_NEURO))
    actions.append(ProposedAction("advice", ADVICE_DRAW_BEFORE_TREATMENT))
    if "R3-A" in triggers:
        actions.append(ProposedAction("advice", ADVICE_N2O_ABSTINENCE))
    return tuple(a for a in actions if a.kind == "advice" or a.key in kb.orderables)
