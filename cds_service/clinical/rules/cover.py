"""B12 replacement cover and folate therapy: which medications count, and when.

Clinical-reference 4.1: B12 replacement means hydroxocobalamin, cyanocobalamin or methylcobalamin
given IM/SC at any dose, or orally at >= 1 mg/day (NICE NG239: oral replacement for malabsorption is
at least 1 mg/day). The value set decides which products are B12 replacement (cyanide-antidote kits
and low-dose multivitamins are kept out there); here only the dose is judged. A product whose dose
is unknown counts as replacement strength: only a dose known to be below the minimum makes it
"not replacement", so an unknown dose can never make a B12 result look more reassuring than it is
(it invalidates the result) and never claims missing cover the record cannot show.

Folate therapy is folic acid or levomefolate *without* B12 in the same product (a combination
product is its own cover), excluding leucovorin (methotrexate rescue) and levomefolate in hormonal
contraceptives (clinical-reference 4.1, 4.3).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..concepts import B12_REPLACEMENT, FOLATE_THERAPY_CLASSES, HORMONAL_CONTRACEPTIVE, LEUCOVORIN
from ..record import MedicationExposure, PatientRecord
from .common import KnowledgeView, days, taken


def exposure_interval(med: MedicationExposure, as_of: datetime) -> tuple[datetime, datetime] | None:
    """When the patient was exposed, as [start, end].

    An active medication runs to `as_of`; an active one with no dates is placed at `as_of` (it is
    being taken now, but nothing says since when); an inactive one with no dates cannot be placed
    in time and returns None.
    """
    start, end = med.start, med.end
    if start is None and end is None:
        return (as_of, as_of) if med.is_active else None
    if start is None:
        start = end
    if end is None or (med.is_active and end < as_of):
        end = as_of if med.is_active else start
    assert start is not None and end is not None
    return (start, end) if start <= end else (end, start)


def overlaps(interval: tuple[datetime, datetime] | None, start: datetime, end: datetime) -> bool:
    return interval is not None and interval[0] <= end and interval[1] >= start


def is_replacement_strength(med: MedicationExposure, kb: KnowledgeView) -> bool:
    """Parenteral at any dose, or a daily dose known to reach dose.oral-b12-replacement-min-mg.

    A B12 product whose dose cannot be computed (a multivitamin by name, "1 tablet" with no strength)
    is NOT counted as replacement: counting it would both discard a deficient result as "drawn on
    replacement" and call the patient covered, silencing every card (clinical-reference 4.1 defines
    replacement as parenteral any dose, or oral >= 1 mg/day). Such products still appear as evidence.
    """
    if B12_REPLACEMENT not in med.classes:
        return False
    if med.route == "parenteral":
        return True
    if med.daily_dose_mg is None:
        return False
    return med.daily_dose_mg >= kb.value("dose.oral-b12-replacement-min-mg")


def replacement_taken_between(
    record: PatientRecord, kb: KnowledgeView, start: datetime, end: datetime
) -> list[MedicationExposure]:
    """B12 replacement (not drafts) the patient took at some point in [start, end]."""
    return [
        m
        for m in record.medications_in([B12_REPLACEMENT])
        if taken(m)
        and is_replacement_strength(m, kb)
        and overlaps(exposure_interval(m, record.as_of), start, end)
    ]


def replacement_invalidating(
    record: PatientRecord, kb: KnowledgeView, sample: datetime
) -> list[MedicationExposure]:
    """Replacement in window.replacement-invalidates-days before a sample: the level reflects treatment.

    BNSSG/clinical-reference 4.1: a B12 level drawn on replacement is uninformative.
    """
    return replacement_taken_between(
        record, kb, sample - days(kb, "window.replacement-invalidates-days"), sample
    )


def replacement_since(record: PatientRecord, kb: KnowledgeView, sample: datetime) -> list[MedicationExposure]:
    """Replacement taken at or after a sample (active now, or started/continued since)."""
    return replacement_taken_between(record, kb, sample, record.as_of)


@dataclass(frozen=True)
class Cover:
    """B12 replacement that covers the patient now: taken recently or ordered in this session."""

    current: tuple[MedicationExposure, ...]  # active or within window.cover-recent-days
    drafts: tuple[MedicationExposure, ...]  # B12 replacement in the draft orders (order hooks)

    @property
    def any(self) -> bool:
        return bool(self.current or self.drafts)

    @property
    def parenteral(self) -> bool:
        return any(m.route == "parenteral" for m in self.current + self.drafts)

    @property
    def all(self) -> tuple[MedicationExposure, ...]:
        return self.current + self.drafts


def b12_cover(record: PatientRecord, kb: KnowledgeView, *, include_drafts: bool = True) -> Cover:
    """B12 replacement active or taken within window.cover-recent-days (clinical-reference 4.1).

    A draft B12 order counts as cover when `include_drafts`: ordering B12 alongside folate is
    exactly what R2 asks for (BSH 2014: give B12 before or with folic acid).
    """
    current = replacement_taken_between(
        record, kb, record.as_of - days(kb, "window.cover-recent-days"), record.as_of
    )
    drafts: list[MedicationExposure] = []
    if include_drafts:
        drafts = [
            m for m in record.medications_in([B12_REPLACEMENT], drafts=True) if is_replacement_strength(m, kb)
        ]
    return Cover(tuple(current), tuple(drafts))


def folate_classes(kb: KnowledgeView) -> frozenset[str]:
    """Classes that make a product folate therapy: leucovorin too when the site switches its exclusion off."""
    if kb.value("policy.exclude-leucovorin") >= 1:
        return FOLATE_THERAPY_CLASSES
    return FOLATE_THERAPY_CLASSES | {LEUCOVORIN}


def folate_exclusion_reason(med: MedicationExposure, kb: KnowledgeView) -> str | None:
    """Why a folate-containing product is not 'folate therapy', or None when it is.

    The leucovorin and contraceptive exclusions are alert-fatigue choices, not guideline statements
    (clinical-reference section 5), so each is a knowledge switch a site can turn off.
    """
    if not med.classes & folate_classes(kb):
        return "not a folate product"
    if B12_REPLACEMENT in med.classes:
        return "contains B12 in the same product"
    if LEUCOVORIN in med.classes and kb.value("policy.exclude-leucovorin") >= 1:
        return "leucovorin (folinic acid) rescue"
    if HORMONAL_CONTRACEPTIVE in med.classes and kb.value("policy.exclude-contraceptive-levomefolate") >= 1:
        return "hormonal contraceptive containing levomefolate"
    return None
