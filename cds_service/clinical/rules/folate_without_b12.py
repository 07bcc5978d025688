"""R2 (`folate-without-b12`): folate therapy while B12 deficiency has not been excluded and is not covered.

Folic acid can correct the anaemia of B12 deficiency while the neurological damage progresses, so B12
is given before or together with folic acid whenever deficiency is not excluded (BSH 2014; BNF/NICE
CKS; Lindenbaum 1988: neurological deficiency without anaemia). Clinical-reference 4.3, edge cases
1, 4-8.

- Subjects: in order hooks the draft folate orders (order-select: the selected ones; order-sign: all),
  otherwise active folate therapy (patient-view). Existing therapy is not re-carded on every order.
- Cover: B12 replacement active or within window.cover-recent-days, or a B12 product in the draft
  orders.
- Exclusions: folic acid <= dose.folate-prophylaxis-max-mg/day in pregnancy without neuro symptoms
  (public-health prophylaxis; a design choice, configurable through the threshold), judged on the
  strength per unit when the frequency is not recorded (4.6 D3); levomefolate in a
  hormonal contraceptive; leucovorin rescue. "Planning pregnancy" has no concept yet and is not used.
- Indicator: critical with neuro symptoms or a deficient B12 (R3 Trigger D fires alongside); info
  when methotrexate is co-prescribed (folate for methotrexate toxicity) and no neuro symptoms;
  warning otherwise. The folate order is never removed: B12 is added.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...knowledge.concepts import B12_ACTIVE, B12_TOTAL, FOLIC_ACID, METHOTREXATE, MMA, PREGNANCY
from ..findings import EvidenceItem, Finding, Indicator, ProposedAction
from ..record import MedicationExposure, PatientRecord
from .b12_status import b12_summary_text
from .common import (
    UNINTERPRETABLE_B12_CAVEAT,
    KnowledgeView,
    active_problems,
    applied,
    has_open_order,
    medication_evidence,
    problem_evidence,
    record_caveats,
    summary,
    unique,
    unique_evidence,
)
from .folate_context import FolateContext
from .neuro import NeuroPicture
from .orderables import (
    CYANOCOBALAMIN_ORAL,
    HYDROXOCOBALAMIN_IM,
    HYDROXOCOBALAMIN_IM_NEURO,
)

if TYPE_CHECKING:
    from ..assessment import Assessment

FAMILY = "folate-without-b12"


def _prophylactic(med: MedicationExposure, kb: KnowledgeView) -> bool:
    """Folic acid within the pregnancy prophylaxis range: a known daily dose, or with no frequency
    recorded a strength per unit (tablet) within it (4.6 D3: "folic acid 0.4 MG Oral Tablet")."""
    limit = kb.value("dose.folate-prophylaxis-max-mg")
    if FOLIC_ACID not in med.classes:
        return False
    if med.daily_dose_mg is not None:
        return med.daily_dose_mg <= limit
    return (
        not med.frequency_known
        and med.strength_per == "unit"
        and med.unit_strength_mg is not None
        and med.unit_strength_mg <= limit
    )


def evaluate(a: Assessment, kb: KnowledgeView) -> list[Finding]:
    record, ctx = a.record, a.folate
    if not ctx.applies:
        return []
    neuro = a.neuro
    pregnancies = active_problems(record, [PREGNANCY])
    prophylactic: list[MedicationExposure] = []
    subjects = list(ctx.subjects)
    if pregnancies and not neuro.any:
        prophylactic = [m for m in subjects if _prophylactic(m, kb)]
        subjects = [m for m in subjects if m not in prophylactic]
    if not subjects:
        return []

    methotrexate = [
        m
        for m in record.medications_in([METHOTREXATE])
        if m.is_draft or (m.is_active and m.status != "draft")
    ]
    deficient = ctx.b12.status == "deficient"
    if neuro.any or deficient:
        indicator = Indicator.CRITICAL
    elif methotrexate:
        indicator = Indicator.INFO
    else:
        indicator = Indicator.WARNING

    evidence: list[EvidenceItem] = [
        medication_evidence(m, "draft order being placed" if m.is_draft else "active folate therapy")
        for m in subjects
    ]
    evidence.extend(ctx.cover_evidence(kb))
    evidence.extend(ctx.b12_evidence(kb))
    evidence.extend(neuro.evidence())
    evidence.extend(medication_evidence(m, "methotrexate co-prescribed") for m in methotrexate)
    evidence.extend(medication_evidence(m, f"not counted: {why}") for m, why in ctx.set_aside)
    evidence.extend(problem_evidence(p, "pregnancy") for p in pregnancies)

    thresholds = list(ctx.thresholds(kb))
    citations = ["bsh-2014", "bnf-b12-dosing", "lindenbaum-1988", "nice-ng239"]
    if pregnancies:
        thresholds.append(
            applied(kb, "dose.folate-prophylaxis-max-mg", "Pregnancy folic acid prophylaxis up to", "<=")
        )
        citations.append("design-convention")
    if ctx.n2o:
        citations.append("paris-2023")
    if methotrexate:
        citations.append("design-convention")

    return [
        Finding(
            family=FAMILY,
            trigger="R2",
            indicator=indicator,
            summary=summary(_summary(ctx, neuro, deficient)),
            rationale=_rationale(ctx, neuro, bool(methotrexate)),
            evidence=unique_evidence(evidence),
            thresholds=unique(thresholds),
            citations=unique(citations),
            actions=_actions(record, kb, ctx, neuro, bool(pregnancies), bool(a.subjects.nitrous_oxide)),
            caveats=_caveats(record, kb, ctx, evidence),
            subject_refs=tuple(m.source_ref for m in subjects) if ctx.on_drafts else (),
        )
    ]


def _summary(ctx: FolateContext, neuro: NeuroPicture, deficient: bool) -> str:
    what = "Folate ordered" if ctx.on_drafts else "Folate therapy"
    if deficient:
        return f"{what} but {b12_summary_text(ctx.b12)} is deficient and untreated: give B12 first or with it"
    if neuro.any:
        return f"{what} without B12 cover, neurological symptoms, B12 deficiency not excluded: give B12 too"
    return f"{what} without B12 cover while B12 deficiency is not excluded: give B12 first or with it"


def _rationale(ctx: FolateContext, neuro: NeuroPicture, methotrexate: bool) -> tuple[str, ...]:
    """Why (folate masks the anaemia; deficiency not excluded, read from the record) and what to do."""
    last = f" (last B12: {b12_summary_text(ctx.b12)})" if ctx.b12.index is not None else ""
    lines = [
        f"Folic acid can correct the anaemia while B12 nerve damage progresses, and B12 deficiency is not "
        f"excluded: {ctx.reason}{last}.",
    ]
    act = "Give B12 before or together with folic acid (BSH 2014; BNF)"
    if neuro.any:
        act += "; with neurological symptoms, without delay"
    if ctx.b12.index is None:
        act += "; draw B12 before the first dose, but do not wait for the result"
    lines.append(act + ".")
    if methotrexate:
        lines.append("Methotrexate is co-prescribed, so the folate is probably for methotrexate toxicity.")
    if ctx.on_drafts and ctx.b12.status == "deficient":
        # Never a delete suggestion (a client may apply it half way): the clinician decides on the draft.
        lines.append("B12 is deficient: if the folic acid was meant for this anaemia, cancel the draft and "
                     "treat with B12 instead.")
    return tuple(lines)


def _actions(
    record: PatientRecord, kb: KnowledgeView, ctx: FolateContext, neuro: NeuroPicture, pregnant: bool,
    n2o_ordered: bool,
) -> tuple[ProposedAction, ...]:
    """B12 tests and treatment; IM only after nitrous oxide, past or being ordered now (Paris 2023)."""
    actions: list[ProposedAction] = []
    if ctx.b12.index is None:
        test = B12_ACTIVE if pregnant else B12_TOTAL
        if not has_open_order(record, test):
            actions.append(ProposedAction("order-lab", test))
    elif ctx.b12.status == "indeterminate" and ctx.mma is None and not has_open_order(record, MMA):
        actions.append(ProposedAction("order-lab", MMA))
    if neuro.any:
        actions.append(ProposedAction("order-medication", HYDROXOCOBALAMIN_IM_NEURO))
    else:
        actions.append(ProposedAction("order-medication", HYDROXOCOBALAMIN_IM))
        if not ctx.n2o and not n2o_ordered:
            actions.append(ProposedAction("order-medication", CYANOCOBALAMIN_ORAL))
    return tuple(a for a in actions if a.kind == "advice" or a.key in kb.orderables)


def _caveats(
    record: PatientRecord, kb: KnowledgeView, ctx: FolateContext, evidence: list[EvidenceItem]
) -> tuple[str, ...]:
    caveats: list[str] = []
    if ctx.b12.uninterpretable:
        caveats.append(UNINTERPRETABLE_B12_CAVEAT)
    if ctx.mma is not None and ctx.mma.raised:
        caveats.extend(ctx.mma.renal.caveats(kb))
    return tuple(caveats) + record_caveats(record, evidence)
