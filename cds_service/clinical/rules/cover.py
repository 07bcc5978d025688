"""B12 replacement cover and folate therapy: which medications count, and when.

Clinical-reference 4.1: B12 replacement means hydroxocobalamin, cyanocobalamin or methylcobalamin
given IM/SC at any dose, or orally at >= 1 mg/day (NICE NG239: oral replacement for malabsorption is
at least 1 mg/day). The value set decides which products are B12 replacement (cyanide-antidote kits
and low-dose multivitamins are kept out there); here only the dose is judged, per 4.6 D3:
- a daily dose known from the dosage counts at >= dose.oral-b12-replacement-min-mg;
- with no frequency recorded, an oral/sublingual product whose strength per unit (from
  Medication.ingredient.strength, the product name or the product table) reaches that minimum counts
  (a 1 mg tablet is a replacement product), and the card says "frequency not recorded";
- a B12 product whose strength cannot be found is NOT cover: counting it would discard a deficient
  result as "drawn on replacement" and silence every card. It is never invisible either: every card
  that talks about replacement lists it ("strength unknown: confirm it is a replacement dose").

Folate therapy is folic acid or levomefolate *without* B12 in the same product (a combination
product is its own cover), excluding leucovorin (methotrexate rescue) and levomefolate in hormonal
contraceptives (clinical-reference 4.1, 4.3).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ...knowledge.concepts import B12_REPLACEMENT, FOLATE_THERAPY_CLASSES, HORMONAL_CONTRACEPTIVE, LEUCOVORIN
from ..findings import EvidenceItem
from ..record import MedicationExposure, PatientRecord
from ..units import format_mg
from .common import NOT_TAKEN_STATUSES, KnowledgeView, absence, days, medication_evidence, taken, window_text


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


@dataclass(frozen=True)
class ProductReading:
    """One B12 product on record and how its dose was read (clinical-reference 4.6 D3)."""

    med: MedicationExposure
    counts: bool  # replacement strength: cover, and invalidates a B12 drawn on it
    reading: str  # generated from the record: "1 mg per unit, frequency not recorded", "strength unknown"


def read_b12_product(med: MedicationExposure, kb: KnowledgeView) -> ProductReading:
    """Whether a B12 product is replacement strength, and the words that say how that was decided."""
    minimum = kb.value("dose.oral-b12-replacement-min-mg")
    antidote = kb.value("dose.b12-cyanide-antidote-min-mg")
    per_unit = med.unit_strength_mg if med.strength_per == "unit" else None
    per_ml = med.unit_strength_mg if med.strength_per == "mL" else None
    antidote_per_ml = kb.value("dose.b12-cyanide-antidote-min-mg-per-ml")
    if any(v is not None and v >= antidote for v in (med.daily_dose_mg, per_unit)) or (
        per_ml is not None and per_ml >= antidote_per_ml
    ):
        return ProductReading(med, False, "cyanide-antidote strength, not replacement")
    if med.route == "parenteral":
        trace = kb.value("dose.parenteral-b12-trace-max-mg")
        if med.strength_per == "mL" and med.unit_strength_mg is not None and med.unit_strength_mg < trace:
            return ProductReading(med, False, f"{format_mg(med.unit_strength_mg)} per mL: a trace amount "
                                              "(multivitamin), not replacement")
        return ProductReading(med, True, "parenteral (counts at any dose)")
    if med.daily_dose_mg is not None:
        amount = format_mg(med.daily_dose_mg)
        if med.daily_dose_mg >= minimum:
            return ProductReading(med, True, f"{amount}/day")
        return ProductReading(med, False, f"{amount}/day: below the replacement dose of {format_mg(minimum)}/day")
    if med.unit_strength_mg is not None and med.strength_per == "unit":
        reading = f"{format_mg(med.unit_strength_mg)} per unit ({med.strength_source}), frequency not recorded"
        if med.unit_strength_mg >= minimum and med.route == "oral":
            return ProductReading(med, True, reading)
        return ProductReading(med, False, reading + ": not a replacement dose")
    if med.unit_strength_mg is not None and med.strength_per == "mL":
        return ProductReading(med, False, f"{format_mg(med.unit_strength_mg)} per mL, route not recorded: "
                                          "confirm it is a replacement dose")
    return ProductReading(med, False, "strength unknown: confirm it is a replacement dose")


def is_replacement_strength(med: MedicationExposure, kb: KnowledgeView) -> bool:
    """Parenteral at any dose, or oral at a known >= 1 mg/day or >= 1 mg per unit (see module docstring)."""
    return B12_REPLACEMENT in med.classes and read_b12_product(med, kb).counts


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
    """B12 replacement that covers the patient now, and every B12 product on record (D3)."""

    current: tuple[MedicationExposure, ...]  # active or within window.cover-recent-days
    drafts: tuple[MedicationExposure, ...]  # B12 replacement in the draft orders (order hooks)
    products: tuple[ProductReading, ...] = ()  # every B12 product on record, counted or not

    @property
    def any(self) -> bool:
        return bool(self.current or self.drafts)

    @property
    def parenteral(self) -> bool:
        return any(m.route == "parenteral" for m in self.current + self.drafts)

    @property
    def all(self) -> tuple[MedicationExposure, ...]:
        return self.current + self.drafts

    @property
    def uncounted(self) -> tuple[ProductReading, ...]:
        """B12 products that are not cover (unknown or low strength, or not recent): never invisible."""
        counted = set(self.all)
        return tuple(p for p in self.products if p.med not in counted)


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
    products = tuple(
        read_b12_product(m, kb)
        for m in record.medications_in([B12_REPLACEMENT])
        if m.is_draft or m.status not in NOT_TAKEN_STATUSES
    )
    return Cover(tuple(current), tuple(drafts), products)


def cover_evidence(cover: Cover, kb: KnowledgeView, *, drafts_reviewed: bool) -> tuple[EvidenceItem, ...]:
    """What the record says about B12 replacement, read from it (4.6 D3: never a fixed phrase).

    Replacement that counts is listed with how its dose was read; a B12 product that does not count
    (strength unknown, low dose, not recent) is listed with why; only when the record holds no B12
    product at all is an absence stated, naming where it was looked for.
    """
    items = [
        medication_evidence(p.med, f"B12 replacement: {p.reading}") for p in cover.products if p.med in cover.all
    ]
    window = window_text(kb, "window.cover-recent-days")
    items += [
        medication_evidence(p.med, f"not counted as cover: not taken in the last {window}" if p.counts
                            else f"not counted as cover: {p.reading}")
        for p in cover.uncounted
    ]
    if not items:
        where = "the medication orders and statements received" + (" or the draft orders" if drafts_reviewed else "")
        items.append(absence("B12 replacement", f"no B12 product in {where}"))
    return tuple(items)


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
