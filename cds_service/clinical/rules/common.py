"""Helpers every rule family shares: the knowledge view, time windows, evidence and caveat builders.

Rules read knowledge only through `KnowledgeView` (threshold, value, citations, orderables) so that
every number comes from a threshold key and every code from an orderable (conventions.md: knowledge
never hides in code as literals). Evidence builders keep the wording of a card's evidence table the
same across families: value as received, value as interpreted in the canonical unit, date, code.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol, TypeVar

from ...knowledge.concepts import LOWER_IS_ABNORMAL, PREGNANCY
from ..findings import SUMMARY_MAX, EvidenceItem, ThresholdApplied
from ..record import (
    FUTURE_SKEW,
    OPEN_ORDER_STATUSES,
    USABLE_LAB_STATUSES,
    LabResult,
    MedicationExposure,
    OrderFact,
    PatientRecord,
    Problem,
)

if TYPE_CHECKING:
    from ...knowledge.model import Citation, Orderable, Threshold

_T = TypeVar("_T")


# Medication statuses that mean the drug was never taken: ignored for exposure and cover.
NOT_TAKEN_STATUSES = frozenset({"entered-in-error", "cancelled", "not-taken", "draft"})


class KnowledgeView(Protocol):
    """The part of `cds_service.knowledge.Knowledge` rules and cards are allowed to use."""

    def threshold(self, key: str) -> Threshold: ...

    def value(self, key: str) -> float: ...

    @property
    def citations(self) -> Mapping[str, Citation]: ...

    @property
    def orderables(self) -> Mapping[str, Orderable]: ...


# --- time ------------------------------------------------------------------------------------------


def days(kb: KnowledgeView, key: str) -> timedelta:
    """A window threshold (unit d) as a timedelta."""
    return timedelta(days=kb.value(key))


def since(record: PatientRecord, kb: KnowledgeView, key: str) -> datetime:
    """Start of the window `key` ending at the evaluation time."""
    return record.as_of - days(kb, key)


def iso_date(moment: datetime | None) -> str | None:
    return moment.date().isoformat() if moment is not None else None


def in_window(moment: datetime | None, start: datetime, end: datetime) -> bool:
    """True when a known moment lies in [start, end]; an unknown date is never inside a window.

    Every window ends at the evaluation time; a moment up to FUTURE_SKEW after it (EHR clock or time
    zone error) still counts, so a result stamped "later today" is not silently dropped.
    """
    return moment is not None and start <= moment <= end + FUTURE_SKEW


def window_text(kb: KnowledgeView, key: str) -> str:
    """'12 months' / '90 days': how a window reads in a card."""
    n = int(kb.value(key))
    if n % 365 == 0:
        years = n // 365
        return f"{years * 12} months" if years == 1 else f"{years} years"
    return f"{n} days"


# --- record queries ----------------------------------------------------------------------------------


def usable_results(
    record: PatientRecord, analytes: Iterable[str], within: datetime | None = None
) -> list[LabResult]:
    """Results with a usable status, newest first, optionally on or after `within` (up to as_of)."""
    picked = [r for r in record.results(analytes) if r.status in USABLE_LAB_STATUSES]
    if within is not None:
        picked = [r for r in picked if in_window(r.effective, within, record.as_of)]
    return picked


def latest_interpretable(record: PatientRecord, analyte: str, within: datetime | None) -> LabResult | None:
    """The newest interpretable result; of several on that day, the most abnormal (never request order)."""
    results = [r for r in usable_results(record, [analyte], within) if r.interpretable]
    if not results or results[0].effective is None:
        return results[0] if results else None
    day = results[0].effective.date()
    same_day = [r for r in results if r.effective is not None and r.effective.date() == day and r.value is not None]
    if len(same_day) <= 1:
        return results[0]
    worst = min if analyte in LOWER_IS_ABNORMAL else max
    return worst(same_day, key=lambda r: (r.value, r.source_ref))


def active_problems(record: PatientRecord, classes: Iterable[str]) -> list[Problem]:
    return [p for p in record.problems_in(classes) if p.is_active]


def taken(med: MedicationExposure) -> bool:
    """A medication the patient is taking or took (not a draft, not cancelled or entered in error)."""
    return not med.is_draft and med.status not in NOT_TAKEN_STATUSES


def is_subject(record: PatientRecord, ref: str) -> bool:
    """order-select: only the selected drafts are subjects; order-sign (no selections): all drafts."""
    return not record.subject_refs or ref in record.subject_refs


def subject_drafts(record: PatientRecord, classes: Iterable[str]) -> list[MedicationExposure]:
    return [m for m in record.medications_in(classes, drafts=True) if is_subject(record, m.source_ref)]


def has_open_order(record: PatientRecord, concept: str) -> bool:
    return any(
        concept in o.concepts and (o.is_draft or o.status in OPEN_ORDER_STATUSES) for o in record.orders
    )


def is_pregnant(record: PatientRecord) -> bool:
    return bool(active_problems(record, [PREGNANCY]))


# --- formatting ----------------------------------------------------------------------------------------


def fmt_number(value: float) -> str:
    """Numbers as a clinician reads them: 110.68 -> '110.7', 0.52 -> '0.52', 258.0 -> '258'."""
    if abs(value) >= 100:
        text = f"{value:.1f}"
    elif abs(value) >= 1:
        text = f"{value:.2f}"
    else:
        text = f"{value:.3f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def fmt_result(result: LabResult) -> str:
    """Interpreted value with canonical unit, keeping the comparator: '< 73.8 pmol/L'."""
    if result.value is None:
        return "not interpreted"
    prefix = f"{result.comparator} " if result.comparator else ""
    return f"{prefix}{fmt_number(result.value)} {result.unit}"


def summary(text: str) -> str:
    """One line inside the CDS Hooks limit even if patient data made it long (clipped here, once)."""
    text = " ".join(text.split())
    return text if len(text) <= SUMMARY_MAX else text[: SUMMARY_MAX - 1].rstrip() + "…"


def short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def sentence_case(text: str) -> str:
    """'Serum folate' -> 'serum folate' inside a sentence; acronyms and names with capitals stay ('MMA')."""
    word = text.split(" ", 1)[0]
    if len(word) > 1 and word[0].isupper() and word[1:].islower():
        return text[0].lower() + text[1:]
    return text


def join_words(items: Sequence[str]) -> str:
    items = list(dict.fromkeys(items))
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def analyte_label(kb: KnowledgeView, analyte: str, result: LabResult | None = None) -> str:
    """Short human name of an analyte: the orderable text when knowledge has one."""
    orderable = kb.orderables.get(analyte)
    if orderable is not None:
        return orderable.text or orderable.display or analyte
    if result is not None and result.code.display:
        return result.code.display
    return analyte


def problem_label(problem: Problem) -> str:
    return problem.code.display or problem.code.label()


# --- evidence ------------------------------------------------------------------------------------------


def lab_evidence(kb: KnowledgeView, result: LabResult, note: str | None = None) -> EvidenceItem:
    notes = [
        n for n in (note, f"could not be interpreted: {result.problem}" if result.problem else None) if n
    ]
    return EvidenceItem(
        kind="lab",
        label=analyte_label(kb, result.analyte, result),
        as_received=result.as_received(),
        converted=fmt_result(result) if result.value is not None else None,
        date=iso_date(result.effective),
        code=result.code.label(),
        reference=result.source_ref,
        note="; ".join(notes) if notes else None,
    )


def medication_evidence(med: MedicationExposure, note: str | None = None) -> EvidenceItem:
    details = []
    if med.daily_dose_mg is not None:
        details.append(f"{fmt_number(med.daily_dose_mg)} mg/day")
    if med.route != "unknown":
        details.append(med.route)
    details.append("draft order" if med.is_draft else ("active" if med.is_active else med.status))
    by_name = {"text": "matched by name, not by code", "brand": "matched by brand name, not by code"}
    notes = [n for n in (note, by_name.get(med.matched_by)) if n]
    return EvidenceItem(
        kind="medication",
        label=med.label(),
        as_received=med.text or (med.code.display if med.code and med.code.display else med.label()),
        converted=", ".join(details),
        date=iso_date(med.start),
        code=med.code.label() if med.code else None,
        reference=med.source_ref,
        note="; ".join(notes) if notes else None,
    )


def problem_evidence(problem: Problem, note: str | None = None) -> EvidenceItem:
    return EvidenceItem(
        kind="condition",
        label=problem_label(problem),
        as_received=problem.code.display or problem.code.code,
        converted="active" if problem.is_active else "inactive",
        date=iso_date(problem.first_noted),
        code=problem.code.label(),
        reference=problem.source_ref,
        note=note,
    )


def order_evidence(order: OrderFact, note: str | None = None) -> EvidenceItem:
    """A lab order or referral (open, or a draft under review) as the record holds it."""
    shown = order.code.display or order.code.label() if order.code else order.source_ref
    return EvidenceItem(
        kind="order",
        label=shown,
        as_received=shown,
        converted="draft order" if order.is_draft else order.status,
        date=iso_date(order.authored),
        code=order.code.label() if order.code else None,
        reference=order.source_ref,
        note=note,
    )


def absence(label: str, text: str) -> EvidenceItem:
    """A relevant absence: 'no MMA result since the B12 sample' is evidence too."""
    return EvidenceItem(kind="absence", label=label, as_received=text)


# --- thresholds and caveats ------------------------------------------------------------------------------


def applied(kb: KnowledgeView, key: str, name: str, op: str = "") -> ThresholdApplied:
    """The threshold `key` as a card shows it, with its status tag and citation."""
    t = kb.threshold(key)
    value = f"{op}{' ' if op else ''}{fmt_number(t.value)} {t.unit}".strip()
    return ThresholdApplied(name=name, value=value, status=t.status, citation=t.citation)


def band(kb: KnowledgeView, low_key: str, high_key: str, name: str) -> ThresholdApplied:
    """A two-sided band such as 'B12 indeterminate 133-258 pmol/L'; the weaker status wins."""
    low, high = kb.threshold(low_key), kb.threshold(high_key)
    order = ["V", "S", "design", "U"]
    status = max((low.status, high.status), key=lambda s: order.index(s) if s in order else len(order))
    return ThresholdApplied(
        name=name,
        value=f"{fmt_number(low.value)}-{fmt_number(high.value)} {high.unit}",
        status=status,
        citation=high.citation,
    )


def unique(items: Iterable[_T]) -> tuple[_T, ...]:
    return tuple(dict.fromkeys(items))


def evidence_key(item: EvidenceItem) -> tuple[str, str, str]:
    """One row per piece of patient data: the same record reached by two paths is one row."""
    return item.kind, item.reference or item.label, item.as_received


def unique_evidence(items: Iterable[EvidenceItem]) -> tuple[EvidenceItem, ...]:
    """Evidence rows in first-seen order, the notes of repeated records joined into one row."""
    rows: dict[tuple[str, str, str], EvidenceItem] = {}
    for item in items:
        key = evidence_key(item)
        first = rows.get(key)
        if first is None:
            rows[key] = item
        elif item.note and item.note not in (first.note or ""):
            rows[key] = replace(first, note=f"{first.note}; {item.note}" if first.note else item.note)
    return tuple(rows.values())


_INPUT_NAMES = {
    "patient": "patient demographics",
    "labs": "laboratory results",
    "conditions": "conditions",
    "medicationRequests": "medication orders",
    "medicationStatements": "medication statements (self-reported and over-the-counter drugs)",
    "procedures": "procedures",
    "serviceRequests": "open lab orders and referrals",
}


UNINTERPRETABLE_B12_CAVEAT = "A B12 result could not be interpreted (unit missing or not recognised): see evidence."


def record_caveats(record: PatientRecord, evidence: Iterable[EvidenceItem]) -> tuple[str, ...]:
    """Caveats every card carries when they apply: missing inputs and name-matched medications."""
    caveats: list[str] = []
    if record.unavailable_inputs:
        names = join_words([_INPUT_NAMES.get(k, k) for k in record.unavailable_inputs])
        caveats.append(f"Not available for this assessment: {names}; the conclusion may be incomplete.")
    if record.unreadable_medications:
        refs = join_words(list(record.unreadable_medications))
        caveats.append(f"Medication product could not be read (its Medication resource was not sent): {refs}; "
                       "check these orders by hand.")
    if record.unreadable_resources:
        items = join_words([u.describe() for u in record.unreadable_resources])
        caveats.append(f"Could not be read (invalid data, left out): {items}; the conclusion may be incomplete.")
    notes = [e.note for e in evidence if e.kind == "medication" and e.note]
    if any("matched by name" in n for n in notes):
        caveats.append("Some medications were recognised by name, not by code: check the evidence table.")
    if any("matched by brand name" in n for n in notes):
        caveats.append("Some medications were recognised by brand name, not by code: check the evidence table.")
    return tuple(caveats)
