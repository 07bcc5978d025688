"""PatientRecord: the typed, normalised facts the rules read.

Built once per request by `normalize.build_patient_record` from the FHIR data (prefetch, fetched
resources and, for order hooks, the draft orders). Rules never see FHIR JSON: everything they need is
here already classified through the knowledge value sets and converted to canonical units, so a rule
is a pure function of this record and can be tested with a hand-built record.

Nothing is silently dropped: a lab result whose unit is missing or unknown is kept with
`problem` set and `value` None, so a card can say "B12 result could not be interpreted".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Literal

from ..knowledge.concepts import CODE_SYSTEM_LABELS

Comparator = Literal["<", "<=", ">", ">="]
# Results timestamped slightly after "now" (EHR and service clocks, or a wrong time zone) still count.
FUTURE_SKEW = timedelta(days=1)
MatchMethod = Literal["code", "text", "brand"]  # "brand": a class named only by a brand name (issue 14)
Route = Literal["parenteral", "oral", "unknown"]
StrengthPer = Literal["unit", "mL"]
# Where a product's strength per unit was read (clinical-reference 4.6 D3, in this order of trust).
StrengthSource = Literal["dosage", "Medication.ingredient.strength", "product name", "product table"]


# Observation statuses a rule may interpret (clinical-reference 4.1: final, amended, corrected;
# preliminary only if configured, which it is not).
USABLE_LAB_STATUSES: frozenset[str] = frozenset({"final", "amended", "corrected"})
# ServiceRequest statuses that mean "already ordered, do not suggest it again".
OPEN_ORDER_STATUSES: frozenset[str] = frozenset({"draft", "active", "on-hold"})

@dataclass(frozen=True)
class CodeRef:
    """The code exactly as the EHR sent it, so a card can show what was interpreted."""

    system: str
    code: str
    display: str | None = None

    def label(self) -> str:
        """Short human label such as 'LOINC 2132-9' used in card evidence."""
        return f"{CODE_SYSTEM_LABELS.get(self.system, self.system)} {self.code}"


@dataclass(frozen=True)
class LabResult:
    """One lab Observation, normalised.

    `value` is in the analyte's canonical unit (see knowledge units) or None when the result could
    not be interpreted; `problem` then says why ("unit missing", "unit 'pg' not recognised",
    "no numeric value"). `comparator` is kept: '<100 pg/mL' has value 73.78 pmol/L and comparator
    '<', and rules classify by the bound.
    """

    analyte: str
    source_ref: str  # "Observation/123"
    code: CodeRef
    effective: datetime | None
    raw_value: str | None  # value as received, e.g. "150"
    raw_unit: str | None  # unit as received, e.g. "pg/mL"
    value: float | None
    unit: str  # canonical unit
    comparator: Comparator | None = None
    reference_high: float | None = None  # canonical unit, from Observation.referenceRange
    reference_low: float | None = None
    positive: bool | None = None  # qualitative results (antibodies)
    status: str = "final"
    problem: str | None = None

    @property
    def interpretable(self) -> bool:
        return self.problem is None and (self.value is not None or self.positive is not None)

    def as_received(self) -> str:
        """The result text as the lab sent it, e.g. '< 100 pg/mL' or '150 (no unit)'."""
        if self.raw_value is None:
            return "no value"
        prefix = f"{self.comparator} " if self.comparator else ""
        unit = self.raw_unit if self.raw_unit else "(no unit)"
        return f"{prefix}{self.raw_value} {unit}"


@dataclass(frozen=True)
class MedicationExposure:
    """A medication the patient takes, took, or is being ordered (draft), by class.

    `classes` holds every concept the product maps to: a folic acid + cyanocobalamin combination
    product is {'folic-acid', 'b12-replacement'}, which is how "folate-only" is decided.
    `matched_by` is 'text' when no code matched and the product name did, 'brand' when only a brand
    name did ("NexIUM 40 MG capsule"); cards flag both.
    """

    classes: frozenset[str]
    source_ref: str  # "MedicationRequest/7"
    resource_type: str
    status: str
    is_active: bool
    matched_by: MatchMethod
    code: CodeRef | None = None
    text: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    route: Route = "unknown"
    daily_dose_mg: float | None = None
    is_draft: bool = False  # from context.draftOrders (order hooks)
    # Strength of one unit (tablet, capsule, ampoule) or of one mL, when the record states it: D3 reads
    # it when the dosage instructions are missing (self-reported medication usually has none).
    unit_strength_mg: float | None = None
    strength_per: StrengthPer | None = None
    strength_source: StrengthSource | None = None
    frequency_known: bool = False  # the dosage states how often (daily dose computable from it)

    def label(self) -> str:
        return self.text or (self.code.display if self.code and self.code.display else "") or (
            self.code.label() if self.code else self.source_ref
        )


@dataclass(frozen=True)
class Problem:
    """A coded condition, finding or procedure (Condition, Observation finding, Procedure)."""

    classes: frozenset[str]
    source_ref: str
    code: CodeRef
    is_active: bool
    onset: datetime | None = None
    recorded: datetime | None = None

    @property
    def first_noted(self) -> datetime | None:
        """Onset if known, else when it was recorded: the date 'new' symptoms are judged by."""
        return self.onset or self.recorded


@dataclass(frozen=True)
class OrderFact:
    """A ServiceRequest (lab order or referral), open or draft, mapped to analytes/concepts."""

    concepts: frozenset[str]
    source_ref: str
    status: str
    code: CodeRef | None
    authored: datetime | None = None
    is_draft: bool = False


@dataclass(frozen=True)
class UnreadableResource:
    """A resource the rules could have read but that was left out: its read fields are unusable.

    `key_input` says what it could have been ("B12 result", "B12 product", "neurological finding"),
    from its codes looked up without trusting the rest of it; `concepts` holds the concept ids for
    rules that need to know exactly (a family must not speak of a B12 result as absent when one
    could not be read). `field` is the path of the first unusable field, never its value.
    """

    ref: str  # "Observation/abc"
    resource_type: str
    key_input: str
    field: str
    reason: str
    concepts: frozenset[str] = frozenset()
    is_draft: bool = False

    def describe(self) -> str:
        """'Observation/abc (B12 result: status missing)' for a card caveat."""
        return f"{self.ref} ({self.key_input}: {self.field} {self.reason})"


@dataclass(frozen=True)
class PatientRecord:
    patient_id: str
    as_of: datetime
    birth_date: date | None = None
    sex: str | None = None  # FHIR administrative gender
    labs: tuple[LabResult, ...] = ()
    medications: tuple[MedicationExposure, ...] = ()
    problems: tuple[Problem, ...] = ()
    orders: tuple[OrderFact, ...] = ()
    unavailable_inputs: tuple[str, ...] = field(default=())  # prefetch keys that could not be had
    subject_refs: tuple[str, ...] = ()  # for order-select: the selected draft order refs
    # medication orders/statements whose product could not be read (a Medication reference that was
    # not sent): never silently dropped, every card names them
    unreadable_medications: tuple[str, ...] = ()
    # resources of a used type whose read fields were unusable and that could have been an input:
    # left out, named on every card, and considered by families that would otherwise read absence
    unreadable_resources: tuple[UnreadableResource, ...] = ()

    @property
    def age_years(self) -> int | None:
        if self.birth_date is None:
            return None
        today = self.as_of.date()
        years = today.year - self.birth_date.year
        if (today.month, today.day) < (self.birth_date.month, self.birth_date.day):
            years -= 1
        return years

    def results(self, analytes: Iterable[str], within_days: int | None = None) -> list[LabResult]:
        """Results for these analytes, newest first, optionally within a look-back window.

        Results with no date are kept at the end: they cannot be placed in time, so rules treat
        them as outside any window but cards can still mention them.
        """
        wanted = set(analytes)
        since = self.as_of - timedelta(days=within_days) if within_days is not None else None
        picked = [
            r
            for r in self.labs
            if r.analyte in wanted
            and (since is None or (r.effective is not None and since <= r.effective <= self.as_of + FUTURE_SKEW))
        ]
        # ties on time break on the reference, so the order of resources in a request never matters
        return sorted(picked, key=lambda r: (r.effective is not None, r.effective, r.source_ref), reverse=True)

    def medications_in(self, classes: Iterable[str], *, drafts: bool | None = None) -> list[MedicationExposure]:
        """Medications of any of these classes (drafts=True/False: draft orders or not), by reference."""
        wanted = set(classes)
        picked = [
            m
            for m in self.medications
            if m.classes & wanted and (drafts is None or m.is_draft == drafts)
        ]
        return sorted(picked, key=lambda m: m.source_ref)

    def problems_in(self, classes: Iterable[str]) -> list[Problem]:
        """Problems of any of these classes, oldest first (then by reference): never in request order."""
        wanted = set(classes)
        picked = [p for p in self.problems if p.classes & wanted]
        return sorted(picked, key=lambda p: (p.first_noted is None, p.first_noted or self.as_of, p.source_ref))
