"""Neurological findings: any symptom, and the "new red flag" definition of clinical-reference 4.1.

- Any neuro symptom: an active problem in one of the neuro domains.
- Red flag (new): SCD/myelopathy at any date; or a gait/balance/falls, weakness, bladder/bowel or
  cognitive finding first noted (onset, else recorded date) within window.red-flag-days; or
  "spreading numbness", which coded data cannot express, approximated as >= 2 sensory findings with
  different codes first noted <= window.red-flag-days apart, the later one new. The proxy needs
  clinical sign-off (clinical-reference 5). A finding with no date cannot be shown to be new and is
  not a red flag (except SCD, which is one at any date).
- Chronic stable: every symptom first noted more than window.neuro-recent-days ago and no new red
  flag; R3 triggers B and C do not fire on it (clinical-reference 4.4 exclusions).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from itertools import combinations

from ...knowledge.concepts import (
    DIABETIC_NEUROPATHY,
    NEURO_DOMAINS,
    NEURO_SCD_MYELOPATHY,
    NEURO_SENSORY,
    RED_FLAG_DOMAINS,
)
from ..findings import EvidenceItem, ThresholdApplied
from ..record import PatientRecord, Problem
from .common import KnowledgeView, active_problems, applied, days, in_window, problem_evidence, since


@dataclass(frozen=True)
class NeuroPicture:
    symptoms: tuple[Problem, ...]  # active neuro findings, any date
    scd: tuple[Problem, ...]  # active SCD/myelopathy, any date
    new_red_flags: tuple[Problem, ...]  # new gait/weakness/bladder-bowel/cognitive findings
    spreading_numbness: tuple[Problem, ...]  # the sensory pair(s) behind the proxy
    as_of: datetime
    red_flag_window_start: datetime
    recent_window_start: datetime

    @property
    def any(self) -> bool:
        return bool(self.symptoms)

    @property
    def red_flags(self) -> tuple[Problem, ...]:
        return tuple(dict.fromkeys(self.scd + self.new_red_flags + self.spreading_numbness))

    @property
    def has_new_non_scd_red_flag(self) -> bool:
        return bool(self.new_red_flags or self.spreading_numbness)

    def is_chronic(self, problem: Problem) -> bool:
        """First noted before the recent window (a problem with no date is not known to be chronic)."""
        return problem.first_noted is not None and problem.first_noted < self.recent_window_start

    @property
    def chronic_stable(self) -> bool:
        return (
            bool(self.symptoms)
            and all(self.is_chronic(p) for p in self.symptoms)
            and not (self.has_new_non_scd_red_flag)
        )

    def recent_symptoms(self) -> tuple[Problem, ...]:
        """Symptoms first noted within window.neuro-recent-days (R1 Trigger B: 'onset <= 12 months')."""
        return tuple(
            p for p in self.symptoms if in_window(p.first_noted, self.recent_window_start, self.as_of)
        )

    def noted_since(self, start: datetime) -> tuple[Problem, ...]:
        """Symptoms whose onset *or* recorded date falls on or after `start` (R3 Trigger A: 'recorded')."""
        return tuple(
            p
            for p in self.symptoms
            if in_window(p.onset, start, self.as_of) or in_window(p.recorded, start, self.as_of)
        )

    def evidence(self, problems: tuple[Problem, ...] | None = None) -> tuple[EvidenceItem, ...]:
        chosen = self.symptoms if problems is None else problems
        flags = set(self.red_flags)
        return tuple(problem_evidence(p, _note(p, flags)) for p in chosen)


def _note(problem: Problem, red_flags: set[Problem]) -> str | None:
    notes = []
    if problem in red_flags:
        notes.append("red flag")
    if DIABETIC_NEUROPATHY in problem.classes:
        notes.append("coded as diabetic neuropathy: B12 deficiency can coexist (metformin)")
    return "; ".join(notes) if notes else None


def assess_neuro(record: PatientRecord, kb: KnowledgeView) -> NeuroPicture:
    symptoms = tuple(active_problems(record, NEURO_DOMAINS))
    flag_start = since(record, kb, "window.red-flag-days")
    scd = tuple(p for p in symptoms if NEURO_SCD_MYELOPATHY in p.classes)
    new_flags = tuple(
        p
        for p in symptoms
        if p.classes & (RED_FLAG_DOMAINS - {NEURO_SCD_MYELOPATHY})
        and in_window(p.first_noted, flag_start, record.as_of)
    )
    return NeuroPicture(
        symptoms=symptoms,
        scd=scd,
        new_red_flags=new_flags,
        spreading_numbness=_spreading_numbness(symptoms, kb, flag_start),
        as_of=record.as_of,
        red_flag_window_start=flag_start,
        recent_window_start=since(record, kb, "window.neuro-recent-days"),
    )


def _spreading_numbness(
    symptoms: tuple[Problem, ...], kb: KnowledgeView, flag_start: datetime
) -> tuple[Problem, ...]:
    """Sensory findings with different codes noted within the red-flag window of each other, one new."""
    sensory = [p for p in symptoms if NEURO_SENSORY in p.classes and p.first_noted is not None]
    gap = days(kb, "window.red-flag-days")
    found: list[Problem] = []
    for a, b in combinations(sensory, 2):
        assert a.first_noted is not None and b.first_noted is not None
        different = (a.code.system, a.code.code) != (b.code.system, b.code.code)
        close = abs(a.first_noted - b.first_noted) <= gap
        new = max(a.first_noted, b.first_noted) >= flag_start
        if different and close and new:
            found.extend((a, b))
    return tuple(dict.fromkeys(found))


def neuro_thresholds(
    kb: KnowledgeView, *, red_flags: bool = False, recent: bool = False
) -> tuple[ThresholdApplied, ...]:
    items = []
    if red_flags:
        items.append(applied(kb, "window.red-flag-days", "New red-flag finding: first noted within", "<="))
    if recent:
        items.append(
            applied(kb, "window.neuro-recent-days", "Recent neurological symptom: onset within", "<=")
        )
    return tuple(items)
