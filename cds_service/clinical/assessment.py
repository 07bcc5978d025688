"""The patient's picture, computed once per request: every family reads it, none recomputes any of it.

Before this module each family re-derived B12 status, neuro findings, risk and the folate context for
itself, and families kept each other quiet by copying each other's conditions; that is how charts
with several findings got more cards than problems (clinical-reference 4.6 D1). Here each fact is
computed once, from the PatientRecord and the hook, and handed to the families and to arbitration.

The hook is an explicit input (4.6 D2): order-select reviews its `selections`, order-sign all drafts,
and patient-view no order at all. Nothing infers the hook from which draft orders survived
normalisation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..knowledge.concepts import (
    B12_ACTIVE,
    B12_DEFICIENCY,
    B12_TOTAL,
    FOLATE_THERAPY_CLASSES,
    IF_ANTIBODY,
    MMA,
    NITROUS_OXIDE_DRUG,
    PERNICIOUS_ANAEMIA,
)
from .findings import EvidenceItem
from .record import LabResult, MedicationExposure, OrderFact, PatientRecord, Problem
from .rules.b12_status import B12Assessment, classify_b12
from .rules.common import KnowledgeView, active_problems, is_subject, usable_results
from .rules.cover import Cover, b12_cover, replacement_since
from .rules.folate_context import FolateContext, folate_context
from .rules.haematology import Haematology, assess_haematology
from .rules.mma import (
    HomocysteineAssessment,
    MmaAssessment,
    RenalContext,
    latest_homocysteine,
    latest_mma,
    mma_for_b12,
    renal_context,
)
from .rules.neuro import NeuroPicture, assess_neuro
from .rules.risk import RiskProfile, assess_risk

Hook = Literal["patient-view", "order-select", "order-sign"]
ORDER_HOOKS: frozenset[str] = frozenset({"order-select", "order-sign"})
B12_TESTS = frozenset({B12_TOTAL, B12_ACTIVE})


@dataclass(frozen=True)
class OrderSubjects:
    """The draft orders under review that the service may speak about (4.6 D2), by kind."""

    folate: tuple[MedicationExposure, ...] = ()  # folate-containing drafts (exclusions judged by R2)
    nitrous_oxide: tuple[MedicationExposure, ...] = ()
    b12_tests: tuple[OrderFact, ...] = ()  # total or active B12
    mma_tests: tuple[OrderFact, ...] = ()

    @property
    def any(self) -> bool:
        return bool(self.folate or self.nitrous_oxide or self.b12_tests or self.mma_tests)

    @property
    def refs(self) -> tuple[str, ...]:
        items: list[MedicationExposure | OrderFact] = [*self.folate, *self.nitrous_oxide, *self.b12_tests,
                                                       *self.mma_tests]
        return tuple(dict.fromkeys(i.source_ref for i in items))


@dataclass(frozen=True)
class Antibodies:
    """Intrinsic factor antibody results (4.6 D5: a titre above the lab's upper limit is positive)."""

    positive: tuple[LabResult, ...]
    uninterpretable: tuple[LabResult, ...]
    any_result: bool

    def evidence_notes(self) -> tuple[tuple[LabResult, str], ...]:
        notes = [(r, "positive: can falsely normalise B12") for r in self.positive[:1]]
        notes += [(r, "") for r in self.uninterpretable]
        return tuple(notes)


@dataclass(frozen=True)
class Assessment:
    record: PatientRecord
    hook: Hook
    b12: B12Assessment
    cover: Cover  # replacement that counts, and every B12 product on record with its reading (D3)
    replacement_since_index: tuple[MedicationExposure, ...]  # replacement taken since the index B12
    neuro: NeuroPicture
    risk: RiskProfile
    haematology: Haematology
    renal: RenalContext
    mma_latest: MmaAssessment | None  # latest interpretable MMA in the look-back
    mma_for_index: MmaAssessment | None  # the MMA that speaks to the index B12 (4.2 exclusions)
    homocysteine: HomocysteineAssessment | None
    folate: FolateContext
    coded_b12_deficiency: tuple[Problem, ...]
    autoimmune_cause: tuple[Problem, ...]  # pernicious anaemia / autoimmune gastritis (4.6 D4)
    antibodies: Antibodies
    subjects: OrderSubjects

    @property
    def order_hook(self) -> bool:
        return self.hook in ORDER_HOOKS

    @property
    def pregnant(self) -> bool:
        return self.b12.pregnant

    def hcy_evidence(self, kb: KnowledgeView) -> tuple[EvidenceItem, ...]:
        """A raised homocysteine in the look-back, for the B12-state card (4.6 D6)."""
        if self.homocysteine is None or not self.homocysteine.raised:
            return ()
        return (self.homocysteine.evidence(kb),)


def order_subjects(record: PatientRecord, hook: Hook) -> OrderSubjects:
    """Draft orders under review by kind: order-select the selections, order-sign every draft."""
    if hook not in ORDER_HOOKS:
        return OrderSubjects()
    meds = [m for m in record.medications if m.is_draft and is_subject(record, m.source_ref)]
    orders = [o for o in record.orders if o.is_draft and is_subject(record, o.source_ref)]
    return OrderSubjects(
        folate=tuple(m for m in meds if m.classes & FOLATE_THERAPY_CLASSES),
        nitrous_oxide=tuple(m for m in meds if NITROUS_OXIDE_DRUG in m.classes),
        b12_tests=tuple(o for o in orders if o.concepts & B12_TESTS),
        mma_tests=tuple(o for o in orders if MMA in o.concepts),
    )


def assess(record: PatientRecord, kb: KnowledgeView, hook: str = "patient-view") -> Assessment:
    """Everything the families need, once. `hook` decides which draft orders are under review."""
    match hook:
        case "patient-view" | "order-select" | "order-sign":  # the values of Hook
            typed_hook: Hook = hook
        case _:
            raise ValueError(f"unknown hook {hook!r}")
    b12 = classify_b12(record, kb)
    since_index: tuple[MedicationExposure, ...] = ()
    if b12.index is not None and b12.index.effective is not None:
        since_index = tuple(replacement_since(record, kb, b12.index.effective))
    antibodies = [r for r in usable_results(record, [IF_ANTIBODY])]
    return Assessment(
        record=record,
        hook=typed_hook,
        b12=b12,
        cover=b12_cover(record, kb, include_drafts=True),
        replacement_since_index=since_index,
        neuro=assess_neuro(record, kb),
        risk=assess_risk(record, kb),
        haematology=assess_haematology(record, kb),
        renal=renal_context(record, kb),
        mma_latest=latest_mma(record, kb),
        mma_for_index=mma_for_b12(record, kb, b12.index),
        homocysteine=latest_homocysteine(record, kb),
        folate=folate_context(record, kb, b12, order_hook=typed_hook in ORDER_HOOKS),
        coded_b12_deficiency=tuple(active_problems(record, [B12_DEFICIENCY])),
        autoimmune_cause=tuple(active_problems(record, [PERNICIOUS_ANAEMIA])),
        antibodies=Antibodies(
            positive=tuple(r for r in antibodies if r.positive),
            uninterpretable=tuple(r for r in antibodies if not r.interpretable),
            any_result=bool(antibodies),
        ),
        subjects=order_subjects(record, typed_hook),
    )
