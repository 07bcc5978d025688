"""Risk factors for B12 deficiency (NICE NG239 list, clinical-reference 4.1) and nitrous oxide exposure.

- Conditions: pernicious anaemia, atrophic gastritis, gastric surgery, ileal disease, coeliac disease,
  autoimmune endocrine disease (lifelong: count even when recorded as resolved or as a completed
  procedure), vegan/vegetarian diet and alcohol use disorder (count while active).
- Medications taken now: metformin (MHRA 2022), PPI, H2RA, colchicine/topiramate/pregabalin.
- Age >= age.risk-factor-years: a soft factor (commonly used, not a NICE threshold, status U); it never
  counts towards R1 Trigger B's ">= 2 risk factors".
- Nitrous oxide exposure within window.n2o-exposure-days: an active or recent N2O/inhalant-misuse
  condition, or nitrous oxide taken (not a draft order). Procedural N2O (dental/obstetric analgesia)
  cannot be told apart from coded data here; the card says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ...knowledge.concepts import (
    ALCOHOL_USE_DISORDER,
    NITROUS_OXIDE_DRUG,
    NITROUS_OXIDE_EXPOSURE,
    RISK_CONDITION_CLASSES,
    RISK_MEDICATION_CLASSES,
    VEGAN_DIET,
)
from ..findings import EvidenceItem, ThresholdApplied
from ..record import PatientRecord
from .common import (
    KnowledgeView,
    applied,
    fmt_number,
    in_window,
    medication_evidence,
    problem_evidence,
    since,
    taken,
)
from .cover import exposure_interval, overlaps

_NEEDS_ACTIVE = frozenset({VEGAN_DIET, ALCOHOL_USE_DISORDER})

RiskKind = Literal["condition", "medication", "age", "nitrous-oxide"]


@dataclass(frozen=True)
class RiskFactor:
    kind: RiskKind
    label: str  # concept id: two records of the same factor count once
    evidence: EvidenceItem

    @property
    def soft(self) -> bool:
        """Age is a soft factor: never counted towards 'two or more risk factors'."""
        return self.kind == "age"


@dataclass(frozen=True)
class RiskProfile:
    factors: tuple[RiskFactor, ...]
    n2o: tuple[EvidenceItem, ...]  # evidence of nitrous oxide exposure within the window
    thresholds: tuple[ThresholdApplied, ...]

    @property
    def any(self) -> bool:
        return bool(self.factors)

    @property
    def count_without_age(self) -> int:
        return len({f.label for f in self.factors if not f.soft})

    @property
    def n2o_exposed(self) -> bool:
        return bool(self.n2o)

    def evidence(self) -> tuple[EvidenceItem, ...]:
        return tuple(dict.fromkeys([f.evidence for f in self.factors] + list(self.n2o)))

    def labels(self) -> list[str]:
        return list(dict.fromkeys(f.label for f in self.factors))


def nitrous_oxide_exposure(record: PatientRecord, kb: KnowledgeView) -> tuple[EvidenceItem, ...]:
    start = since(record, kb, "window.n2o-exposure-days")
    items: list[EvidenceItem] = []
    for problem in record.problems_in([NITROUS_OXIDE_EXPOSURE]):
        dates = (problem.onset, problem.recorded)
        if problem.is_active or any(in_window(d, start, record.as_of) for d in dates):
            items.append(problem_evidence(problem, "nitrous oxide exposure"))
    for med in record.medications_in([NITROUS_OXIDE_DRUG]):
        if taken(med) and overlaps(exposure_interval(med, record.as_of), start, record.as_of):
            items.append(medication_evidence(med, "nitrous oxide exposure"))
    return tuple(items)


def assess_risk(record: PatientRecord, kb: KnowledgeView) -> RiskProfile:
    factors: list[RiskFactor] = []
    for problem in record.problems_in(RISK_CONDITION_CLASSES - {NITROUS_OXIDE_EXPOSURE}):
        classes = problem.classes & RISK_CONDITION_CLASSES
        if classes & _NEEDS_ACTIVE and not (classes - _NEEDS_ACTIVE) and not problem.is_active:
            continue
        factors.append(RiskFactor("condition", sorted(classes)[0], problem_evidence(problem, "risk factor")))
    for med in record.medications_in(RISK_MEDICATION_CLASSES):
        if taken(med) and med.is_active:
            cls = sorted(med.classes & RISK_MEDICATION_CLASSES)[0]
            factors.append(RiskFactor("medication", cls, medication_evidence(med, "risk factor")))
    thresholds: list[ThresholdApplied] = []
    age = record.age_years
    if age is not None and age >= kb.value("age.risk-factor-years"):
        factors.append(
            RiskFactor(
                "age",
                "age",
                EvidenceItem(
                    kind="patient",
                    label="Age",
                    as_received=f"{age} years",
                    note=f"soft risk factor (age >= {fmt_number(kb.value('age.risk-factor-years'))})",
                ),
            )
        )
        thresholds.append(applied(kb, "age.risk-factor-years", "Age risk factor", ">="))
    n2o = nitrous_oxide_exposure(record, kb)
    if n2o:
        factors.append(RiskFactor("nitrous-oxide", NITROUS_OXIDE_EXPOSURE, n2o[0]))
        thresholds.append(applied(kb, "window.n2o-exposure-days", "Nitrous oxide exposure within", "<="))
    return RiskProfile(tuple(factors), n2o, tuple(thresholds))
