"""MMA and homocysteine interpretation, with the renal modifiers.

Clinical-reference 1.3 and 4.1:
- MMA raised: above the lab's own `referenceRange.high` when sent (ranges are method-dependent),
  else above mma.uln (0.40 umol/L, Mayo) or mma.uln-age-65 (0.46 umol/L, Danish reference study) from
  age.risk-factor-years; strongly raised above mma.strongly-raised (0.75 umol/L, Paris 2023).
- MMA rises as GFR falls: with eGFR (latest within window.egfr-recent-days) below
  egfr.mma-caution-below the raised-but-not-strongly band is "possibly renal"; below
  egfr.mma-uninterpretable-below it is uninterpretable, and only a strongly raised MMA still supports
  deficiency (edge case 2). These eGFR cut-offs are a design convention (status U), not guideline.
- Homocysteine raised: above the lab ULN when sent, else homocysteine.uln (15 umol/L).
Comparators classify by their bound, like B12.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from ...knowledge.concepts import CKD, EGFR, HOMOCYSTEINE, MMA
from ..findings import EvidenceItem, ThresholdApplied
from ..record import LabResult, PatientRecord, Problem
from .common import (
    KnowledgeView,
    active_problems,
    applied,
    days,
    fmt_number,
    lab_evidence,
    latest_interpretable,
    problem_evidence,
    since,
    window_text,
)

RenalLevel = Literal["unknown", "normal", "caution", "severe"]
MmaInterpretation = Literal["not-raised", "raised", "strongly-raised", "possibly-renal", "uninterpretable"]


def exceeds(result: LabResult, limit: float) -> bool:
    """Result above a limit, reading a comparator by its bound ('> 0.4' exceeds 0.4)."""
    assert result.value is not None
    if result.comparator == ">":
        return result.value >= limit
    if result.comparator in ("<", "<="):
        return result.value > limit
    return result.value > limit


def below(result: LabResult, limit: float) -> bool:
    """Result below a limit, reading a comparator by its bound ('< 30' is below 30)."""
    assert result.value is not None
    if result.comparator == "<":
        return result.value <= limit
    return result.value < limit


@dataclass(frozen=True)
class RenalContext:
    level: RenalLevel
    egfr: LabResult | None = None
    ckd: tuple[Problem, ...] = ()

    def thresholds(self, kb: KnowledgeView) -> tuple[ThresholdApplied, ...]:
        if self.egfr is None:
            return ()
        return (
            applied(kb, "egfr.mma-caution-below", "eGFR below which MMA is interpreted with caution", "<"),
            applied(
                kb, "egfr.mma-uninterpretable-below", "eGFR below which MMA 'raised' is uninterpretable", "<"
            ),
        )

    def evidence(self, kb: KnowledgeView) -> tuple[EvidenceItem, ...]:
        items = [lab_evidence(kb, self.egfr)] if self.egfr is not None else []
        return tuple(items) + tuple(problem_evidence(p) for p in self.ckd)

    def caveats(self, kb: KnowledgeView) -> tuple[str, ...]:
        if self.level == "severe":
            return (
                f"eGFR below {fmt_number(kb.value('egfr.mma-uninterpretable-below'))}: MMA rises in renal "
                f"impairment; only MMA above {fmt_number(kb.value('mma.strongly-raised'))} umol/L supports "
                "B12 deficiency.",
            )
        if self.level == "caution":
            return (
                f"eGFR below {fmt_number(kb.value('egfr.mma-caution-below'))}: MMA (and homocysteine) rise "
                "with reduced kidney function; interpret a raised result with caution.",
            )
        if self.level == "unknown" and self.ckd:
            return (
                f"Chronic kidney disease on record but no eGFR in the last "
                f"{window_text(kb, 'window.egfr-recent-days')}: MMA may be raised by renal impairment.",
            )
        return ()


def renal_context(record: PatientRecord, kb: KnowledgeView) -> RenalContext:
    egfr = latest_interpretable(record, EGFR, since(record, kb, "window.egfr-recent-days"))
    ckd = tuple(active_problems(record, [CKD]))
    if egfr is None:
        return RenalContext("unknown", None, ckd)
    if below(egfr, kb.value("egfr.mma-uninterpretable-below")):
        return RenalContext("severe", egfr, ckd)
    if below(egfr, kb.value("egfr.mma-caution-below")):
        return RenalContext("caution", egfr, ckd)
    return RenalContext("normal", egfr, ckd)


@dataclass(frozen=True)
class MmaAssessment:
    result: LabResult
    raised: bool
    strongly_raised: bool
    uln: float
    uln_source: str
    renal: RenalContext
    thresholds: tuple[ThresholdApplied, ...]

    @property
    def interpretation(self) -> MmaInterpretation:
        if self.strongly_raised:
            return "strongly-raised"
        if not self.raised:
            return "not-raised"
        if self.renal.level == "severe":
            return "uninterpretable"
        if self.renal.level == "caution":
            return "possibly-renal"
        return "raised"

    @property
    def supports_deficiency(self) -> bool:
        """Raised enough to support deficiency once the renal modifier is applied (possibly-renal counts)."""
        return self.interpretation in ("raised", "strongly-raised", "possibly-renal")

    def evidence(self, kb: KnowledgeView) -> EvidenceItem:
        note = {
            "not-raised": f"not raised (upper limit {fmt_number(self.uln)} umol/L, {self.uln_source})",
            "raised": f"raised (upper limit {fmt_number(self.uln)} umol/L, {self.uln_source})",
            "strongly-raised": "strongly raised",
            "possibly-renal": "raised, possibly from reduced kidney function",
            "uninterpretable": "raised but uninterpretable with eGFR this low",
        }[self.interpretation]
        return lab_evidence(kb, self.result, note)


def assess_mma(result: LabResult, record: PatientRecord, kb: KnowledgeView) -> MmaAssessment:
    """Classify one interpretable MMA result against the lab or age-adjusted ULN."""
    thresholds = [applied(kb, "mma.strongly-raised", "MMA strongly raised", ">")]
    if result.reference_high is not None:
        uln, source = result.reference_high, "lab reference range"
    elif record.age_years is not None and record.age_years >= kb.value("age.risk-factor-years"):
        uln, source = kb.value("mma.uln-age-65"), "age-adjusted"
        thresholds.append(applied(kb, "mma.uln-age-65", "MMA upper limit, older adults", ">"))
    else:
        uln, source = kb.value("mma.uln"), "adult default"
        thresholds.append(applied(kb, "mma.uln", "MMA upper limit", ">"))
    renal = renal_context(record, kb)
    return MmaAssessment(
        result=result,
        raised=exceeds(result, uln),
        strongly_raised=exceeds(result, kb.value("mma.strongly-raised")),
        uln=uln,
        uln_source=source,
        renal=renal,
        thresholds=tuple(thresholds) + renal.thresholds(kb),
    )


def latest_mma(
    record: PatientRecord, kb: KnowledgeView, start: datetime | None = None
) -> MmaAssessment | None:
    """Latest interpretable MMA since `start` (default: the B12 look-back), assessed."""
    start = start if start is not None else since(record, kb, "window.b12-lookback-days")
    result = latest_interpretable(record, MMA, start)
    return assess_mma(result, record, kb) if result is not None else None


@dataclass(frozen=True)
class HomocysteineAssessment:
    result: LabResult
    raised: bool
    threshold: ThresholdApplied | None

    def evidence(self, kb: KnowledgeView) -> EvidenceItem:
        return lab_evidence(kb, self.result, "raised" if self.raised else "not raised")


def latest_homocysteine(record: PatientRecord, kb: KnowledgeView) -> HomocysteineAssessment | None:
    result = latest_interpretable(record, HOMOCYSTEINE, since(record, kb, "window.b12-lookback-days"))
    if result is None:
        return None
    if result.reference_high is not None:
        return HomocysteineAssessment(result, exceeds(result, result.reference_high), None)
    return HomocysteineAssessment(
        result,
        exceeds(result, kb.value("homocysteine.uln")),
        applied(kb, "homocysteine.uln", "Homocysteine upper limit", ">"),
    )


def homocysteine_caveats(
    hcy: HomocysteineAssessment | None, renal: RenalContext, kb: KnowledgeView
) -> tuple[str, ...]:
    """The confounders of a raised homocysteine (clinical-reference 1.4, 4.6 D6), read with the record."""
    if hcy is None or not hcy.raised:
        return ()
    text = "Homocysteine also rises with folate or B6 deficiency and reduced kidney function"
    if renal.egfr is not None and renal.level in ("caution", "severe"):
        text += f" (eGFR here {fmt_number(renal.egfr.value or 0)})"
    return (text + ": read it with the folate and eGFR results.",)


def mma_for_b12(record: PatientRecord, kb: KnowledgeView, index: LabResult | None) -> MmaAssessment | None:
    """The MMA that speaks to a B12 result: after it, or at most window.mma-before-b12-days before it.

    With no index B12, the latest MMA in the B12 look-back.
    """
    if index is None or index.effective is None:
        return latest_mma(record, kb)
    return latest_mma(record, kb, index.effective - days(kb, "window.mma-before-b12-days"))
