"""B12 status: the latest valid total or active B12, classified into NICE NG239 bands.

Clinical-reference 4.1:
- look-back window.b12-lookback-days (12 months); older results are stale and ignored (edge case 7);
- in pregnancy only results from the current pregnancy count (total B12 falls physiologically), and
  a valid active B12 from this pregnancy is preferred to total B12 (NICE NG239 prefers active B12);
- both on the same day: active B12 wins;
- a result drawn within window.replacement-invalidates-days of B12 replacement is invalid for
  interpretation (edge case 1);
- results whose unit is missing or unknown are kept and reported, never classified (edge case 8);
- comparators classify by their bound ('< 100 pg/mL' is deficient, '> 2000' normal; edge case 9).

Band edges: values are rounded to whole pmol/L before comparison (clinical-reference 2: 349 pg/mL =
257.5 pmol/L is indeterminate, 351 pg/mL = 259.0 pmol/L normal, and 180 ng/L = 132.8 pmol/L stays
indeterminate as NICE's ng/L band says).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal, TypedDict

from ...knowledge.concepts import B12_ACTIVE, B12_TOTAL, PREGNANCY
from ..findings import EvidenceItem, ThresholdApplied
from ..record import LabResult, MedicationExposure, PatientRecord
from .common import (
    KnowledgeView,
    absence,
    active_problems,
    analyte_label,
    band,
    iso_date,
    lab_evidence,
    since,
    usable_results,
    window_text,
)
from .cover import replacement_invalidating

Band = Literal["deficient", "indeterminate", "normal"]
B12Status = Literal["deficient", "indeterminate", "normal", "invalid", "uninterpretable", "none"]


@dataclass(frozen=True)
class InvalidResult:
    result: LabResult
    replacement: tuple[MedicationExposure, ...]


class _Common(TypedDict):
    """The B12Assessment fields that are set whether or not a valid index result was found."""

    invalid: tuple[InvalidResult, ...]
    uninterpretable: tuple[LabResult, ...]
    stale: tuple[LabResult, ...]
    before_pregnancy: tuple[LabResult, ...]
    pregnant: bool


@dataclass(frozen=True)
class B12Assessment:
    status: B12Status
    index: LabResult | None  # the valid result classified; None unless status is a band
    invalid: tuple[InvalidResult, ...] = ()  # drawn on replacement, inside the look-back
    uninterpretable: tuple[LabResult, ...] = ()  # unit missing/unknown, inside the look-back
    stale: tuple[LabResult, ...] = ()  # usable results older than the look-back (newest first)
    before_pregnancy: tuple[LabResult, ...] = ()  # in look-back but before the current pregnancy
    pregnant: bool = False
    thresholds: tuple[ThresholdApplied, ...] = ()
    bound_note: str | None = None  # "classified by its bound (<)"
    same_day_disagreeing: tuple[LabResult, ...] = ()  # same analyte, same day, another band (4.6 D10)

    @property
    def valid(self) -> bool:
        return self.index is not None

    @property
    def index_is_total(self) -> bool:
        return self.index is not None and self.index.analyte == B12_TOTAL

    def evidence(self, kb: KnowledgeView) -> tuple[EvidenceItem, ...]:
        """Everything that went into the status, so a card shows why B12 was (not) usable."""
        items: list[EvidenceItem] = []
        if self.index is not None:
            note = self.bound_note or f"{self.status} band"
            if self.same_day_disagreeing:
                note += "; two results on the same day disagree: the more abnormal is used"
            items.append(lab_evidence(kb, self.index, note))
        for other in self.same_day_disagreeing:
            items.append(lab_evidence(kb, other, "two results on the same day disagree: not used"))
        for inv in self.invalid:
            names = ", ".join(m.label() for m in inv.replacement)
            items.append(
                lab_evidence(kb, inv.result, f"drawn on B12 replacement ({names}): not interpretable")
            )
        for result in self.uninterpretable:
            items.append(lab_evidence(kb, result))
        for result in self.before_pregnancy:
            items.append(lab_evidence(kb, result, "before the current pregnancy: not used"))
        if self.index is None:
            window = window_text(kb, "window.b12-lookback-days")
            items.append(absence(analyte_label(kb, B12_TOTAL), f"no valid B12 result in the last {window}"))
            if self.stale:
                items.append(lab_evidence(kb, self.stale[0], f"older than {window}: not used"))
        return tuple(items)


def _whole(value: float) -> Decimal:
    return Decimal(str(value)).quantize(Decimal(1), rounding=ROUND_HALF_UP)


def classify_value(result: LabResult, kb: KnowledgeView) -> tuple[Band, str | None]:
    """Band of an interpretable B12 result; the note says when a comparator bound was used."""
    assert result.value is not None
    prefix = "b12-total" if result.analyte == B12_TOTAL else "b12-active"
    low = _whole(kb.value(f"{prefix}.deficient-below"))
    high = _whole(kb.value(f"{prefix}.normal-above"))
    value = _whole(result.value)
    note = f"classified by its bound ({result.comparator})" if result.comparator else None
    if result.comparator in ("<", "<="):
        # the true value is below the bound: deficient only if the bound itself is at or under the
        # cut-off; "< 300" could still be deficient, so it can never read as normal
        return ("deficient" if value <= low else "indeterminate"), note
    if result.comparator in (">", ">="):
        # "> 100" could be anything above 100: normal only if the bound is at or over the upper cut-off
        return ("normal" if value >= high else "indeterminate"), note
    if value < low:
        return "deficient", note
    if value > high:
        return "normal", note
    return "indeterminate", note


def band_thresholds(kb: KnowledgeView, analyte: str) -> tuple[ThresholdApplied, ...]:
    prefix = "b12-total" if analyte == B12_TOTAL else "b12-active"
    name = "Total B12" if analyte == B12_TOTAL else "Active B12"
    return (
        band(
            kb,
            f"{prefix}.deficient-below",
            f"{prefix}.normal-above",
            f"{name} indeterminate band (below: deficient; above: deficiency unlikely)",
        ),
    )


def pregnancy_start(record: PatientRecord) -> tuple[bool, datetime | None]:
    """(pregnant, first noted date of the current pregnancy or None)."""
    pregnancies = active_problems(record, [PREGNANCY])
    if not pregnancies:
        return False, None
    dates = [p.first_noted for p in pregnancies if p.first_noted is not None]
    return True, (min(dates) if dates else None)


def classify_b12(record: PatientRecord, kb: KnowledgeView) -> B12Assessment:
    """Latest valid total or active B12 in the look-back, classified (clinical-reference 4.1)."""
    lookback = since(record, kb, "window.b12-lookback-days")
    pregnant, pregnancy_from = pregnancy_start(record)
    candidates = usable_results(record, [B12_TOTAL, B12_ACTIVE], lookback)
    stale = tuple(
        r
        for r in usable_results(record, [B12_TOTAL, B12_ACTIVE])
        if r.effective is not None and r.effective < lookback
    )
    before_pregnancy = tuple(
        r
        for r in candidates
        if pregnancy_from is not None and r.effective is not None and r.effective < pregnancy_from
    )
    candidates = [r for r in candidates if r not in before_pregnancy]

    # A result with no date cannot be placed in any window: it is reported as not interpretable rather
    # than silently left out (a deficient B12 must never end in silence).
    undated = tuple(r for r in usable_results(record, [B12_TOTAL, B12_ACTIVE]) if r.effective is None)
    uninterpretable = tuple(r for r in candidates if not r.interpretable) + undated
    invalid: list[InvalidResult] = []
    valid: list[LabResult] = []
    for result in candidates:
        if not result.interpretable or result.value is None:
            continue
        assert result.effective is not None  # usable_results with a window only keeps dated results
        replacement = replacement_invalidating(record, kb, result.effective)
        if replacement:
            invalid.append(InvalidResult(result, tuple(replacement)))
        else:
            valid.append(result)

    index, disagreeing = _pick_index(valid, pregnant, kb)
    common = _Common(
        invalid=tuple(invalid),
        uninterpretable=uninterpretable,
        stale=stale,
        before_pregnancy=before_pregnancy,
        pregnant=pregnant,
    )
    if index is None:
        status: B12Status = "invalid" if invalid else ("uninterpretable" if uninterpretable else "none")
        return B12Assessment(status=status, index=None, **common)
    classified, note = classify_value(index, kb)
    return B12Assessment(
        status=classified,
        index=index,
        thresholds=band_thresholds(kb, index.analyte),
        bound_note=note,
        same_day_disagreeing=disagreeing,
        **common,
    )


_SEVERITY: dict[str, int] = {"deficient": 0, "indeterminate": 1, "normal": 2}


def _pick_index(
    valid: list[LabResult], pregnant: bool, kb: KnowledgeView
) -> tuple[LabResult | None, tuple[LabResult, ...]]:
    """(index result, same-day results of the same analyte that disagree with it).

    Newest day wins; on that day active B12 wins over total B12 (4.1), and throughout pregnancy
    active B12 from this pregnancy wins. Results of one analyte on one day that fall in different
    bands are never decided by their order in the request: the more abnormal band is used and the
    others are shown (4.6 D10). Ties break on value and reference, so the request order never matters.
    """
    if pregnant and any(r.analyte == B12_ACTIVE for r in valid):
        valid = [r for r in valid if r.analyte == B12_ACTIVE]
    dated = [r for r in valid if r.effective is not None]
    if not dated:
        return None, ()
    newest_day = max(r.effective.date() for r in dated if r.effective is not None)
    same_day = [r for r in dated if r.effective is not None and r.effective.date() == newest_day]
    active = [r for r in same_day if r.analyte == B12_ACTIVE]
    candidates = active or same_day
    bands = {id(r): classify_value(r, kb)[0] for r in candidates}
    chosen = min(candidates, key=lambda r: (_SEVERITY[bands[id(r)]], r.value, r.source_ref))
    disagreeing = tuple(
        sorted((r for r in candidates if bands[id(r)] != bands[id(chosen)]), key=lambda r: r.source_ref)
    )
    return chosen, disagreeing


def b12_summary_text(assessment: B12Assessment) -> str:
    """'total B12 260 pg/mL (2026-09-01)': the value as the lab sent it, so it matches the results
    screen the clinician sees (the band was judged on the converted value, shown in the evidence)."""
    if assessment.index is None:
        return {
            "invalid": "B12 drawn on replacement (not interpretable)",
            "uninterpretable": "B12 result could not be interpreted",
            "none": "no recent valid B12",
        }.get(assessment.status, "no recent valid B12")
    r = assessment.index
    kind = "total B12" if r.analyte == B12_TOTAL else "active B12"
    return f"{kind} {r.as_received()} ({iso_date(r.effective)})"
