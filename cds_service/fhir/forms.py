"""Typed read forms: exactly the FHIR R4 fields the rules read, validated strictly, nothing else.

Why msgspec Structs: a request's resources are read once, from the decoded JSON, into these forms,
and the normaliser reads attributes instead of walking dicts defensively. `msgspec.convert` checks
the declared fields in C (2-5 us a resource on this machine, against 35-90 us for a full
fhir.resources R4B model; docs/performance.md) and ignores every undeclared field, so a defect in a
field no rule reads (meta, text, extension, note, performer ...) costs nothing and is no error.
Declared fields are strict: FHIR primitive formats (dateTime, date, instant, code, id, uri,
decimal as a JSON number), the required `status` of each type, and the required value sets of the
codes the rules branch on (statuses, comparator, gender, condition clinical/verification status).
A resource that fails is not read at all: the reader sets it aside and the cards name it.

Full conformance (every element, every cardinality) stays with fhir.resources in
`fhir.conformance`, for `b12-cds check` and the preview's check section, off the hot path.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import Meta, Struct

# --- FHIR R4 primitive formats (http://hl7.org/fhir/R4/datatypes.html, anchored with \Z) ---------
_YEAR = r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)"
_TIME = r"([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?"
_ZONE = r"(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))"
DATE_RE = rf"^{_YEAR}(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1]))?)?\Z"
DATETIME_RE = rf"^{_YEAR}(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])(T{_TIME}{_ZONE})?)?)?\Z"
INSTANT_RE = rf"^{_YEAR}-(0[1-9]|1[0-2])-(0[1-9]|[1-2][0-9]|3[0-1])T{_TIME}{_ZONE}\Z"

FhirString = Annotated[str, Meta(min_length=1)]  # R4 string: [ \r\n\t\S]+, i.e. not empty
Code = Annotated[str, Meta(pattern=r"^[^\s]+( [^\s]+)*\Z")]
Uri = Annotated[str, Meta(pattern=r"^\S*\Z")]
Id = Annotated[str, Meta(pattern=r"^[A-Za-z0-9\-.]{1,64}\Z")]
Date = Annotated[str, Meta(pattern=DATE_RE)]
DateTime = Annotated[str, Meta(pattern=DATETIME_RE)]
Instant = Annotated[str, Meta(pattern=INSTANT_RE)]
Decimal = int | float  # a JSON number as written (150 stays "150"); strings and booleans are refused
PositiveInt = Annotated[int, Meta(ge=1)]

# --- required value sets of the codes the rules branch on (R4 bindings) ----------------------------
ObservationStatus = Literal["registered", "preliminary", "final", "amended", "corrected", "cancelled",
                            "entered-in-error", "unknown"]
MedicationRequestStatus = Literal["active", "on-hold", "cancelled", "completed", "entered-in-error", "stopped",
                                  "draft", "unknown"]
MedicationStatementStatus = Literal["active", "completed", "entered-in-error", "intended", "stopped", "on-hold",
                                    "unknown", "not-taken"]
MedicationAdministrationStatus = Literal["in-progress", "not-done", "on-hold", "completed", "entered-in-error",
                                         "stopped", "unknown"]
ProcedureStatus = Literal["preparation", "in-progress", "not-done", "on-hold", "stopped", "completed",
                          "entered-in-error", "unknown"]
ServiceRequestStatus = Literal["draft", "active", "on-hold", "revoked", "completed", "entered-in-error", "unknown"]
Comparator = Literal["<", "<=", ">=", ">"]
Gender = Literal["male", "female", "other", "unknown"]
PeriodUnit = Literal["s", "min", "h", "d", "wk", "mo", "a"]

CONDITION_CLINICAL_SYSTEM = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CONDITION_CLINICAL = frozenset({"active", "recurrence", "relapse", "inactive", "remission", "resolved"})
CONDITION_VERIFICATION = frozenset({"unconfirmed", "provisional", "differential", "confirmed", "refuted",
                                    "entered-in-error"})


class Form(Struct, kw_only=True, omit_defaults=True, gc=False):
    """Base of every read form: unknown fields are ignored, defaults are omitted on output."""


# --- datatypes -------------------------------------------------------------------------------------
class Coding(Form, kw_only=True):
    system: Uri | None = None
    code: Code | None = None
    display: FhirString | None = None


class CodeableConcept(Form, kw_only=True):
    coding: list[Coding] = []
    text: FhirString | None = None


class Quantity(Form, kw_only=True):
    value: Decimal | None = None
    comparator: Comparator | None = None
    unit: FhirString | None = None
    system: Uri | None = None
    code: Code | None = None


class Period(Form, kw_only=True):
    start: DateTime | None = None
    end: DateTime | None = None


class Range(Form, kw_only=True):
    low: Quantity | None = None
    high: Quantity | None = None


class Ratio(Form, kw_only=True):
    numerator: Quantity | None = None
    denominator: Quantity | None = None


class Reference(Form, kw_only=True):
    reference: FhirString | None = None
    display: FhirString | None = None


class ReferenceRange(Form, kw_only=True):
    low: Quantity | None = None
    high: Quantity | None = None


class TimingRepeat(Form, kw_only=True):
    frequency: PositiveInt | None = None
    period: Decimal | None = None
    periodUnit: PeriodUnit | None = None


class Timing(Form, kw_only=True):
    repeat: TimingRepeat | None = None
    code: CodeableConcept | None = None


class DoseAndRate(Form, kw_only=True):
    doseQuantity: Quantity | None = None


class Dosage(Form, kw_only=True):
    """Dosage (MedicationRequest.dosageInstruction, MedicationStatement.dosage)."""

    timing: Timing | None = None
    route: CodeableConcept | None = None
    doseAndRate: list[DoseAndRate] = []


class AdministrationDosage(Form, kw_only=True):
    """MedicationAdministration.dosage: one dose given, by a route."""

    route: CodeableConcept | None = None
    dose: Quantity | None = None


class DispenseRequest(Form, kw_only=True):
    validityPeriod: Period | None = None


class Ingredient(Form, kw_only=True):
    itemCodeableConcept: CodeableConcept | None = None
    itemReference: Reference | None = None
    isActive: bool | None = None
    strength: Ratio | None = None


# --- resources -------------------------------------------------------------------------------------
class Resource(Form, kw_only=True):
    resourceType: str
    id: Id | None = None


class Clinical(Resource, kw_only=True):
    """A resource about the patient: its subject is checked against context.patientId."""

    subject: Reference | None = None


class Patient(Resource, kw_only=True):
    birthDate: Date | None = None
    gender: Gender | None = None


class Observation(Clinical, kw_only=True):
    status: ObservationStatus
    code: CodeableConcept
    effectiveDateTime: DateTime | None = None
    effectivePeriod: Period | None = None
    effectiveInstant: Instant | None = None
    # `issued` is only a fallback date: read leniently (an unusable one is ignored and counted)
    issued: str | None = None
    valueQuantity: Quantity | None = None
    valueString: FhirString | None = None
    valueCodeableConcept: CodeableConcept | None = None
    valueBoolean: bool | None = None
    interpretation: list[CodeableConcept] = []
    referenceRange: list[ReferenceRange] = []


class Condition(Clinical, kw_only=True):
    clinicalStatus: CodeableConcept | None = None
    verificationStatus: CodeableConcept | None = None
    code: CodeableConcept | None = None
    onsetDateTime: DateTime | None = None
    onsetPeriod: Period | None = None
    recordedDate: DateTime | None = None
    abatementDateTime: DateTime | None = None
    abatementPeriod: Period | None = None
    abatementAge: Quantity | None = None
    abatementRange: Range | None = None
    abatementString: FhirString | None = None

    def __post_init__(self) -> None:
        _check_bound(self.clinicalStatus, CONDITION_CLINICAL_SYSTEM, CONDITION_CLINICAL, "clinicalStatus")
        _check_bound(self.verificationStatus, CONDITION_VERIFICATION_SYSTEM, CONDITION_VERIFICATION,
                     "verificationStatus")

    @property
    def has_abatement(self) -> bool:
        return any(v is not None for v in (self.abatementDateTime, self.abatementPeriod, self.abatementAge,
                                           self.abatementRange, self.abatementString))


def _check_bound(concept: CodeableConcept | None, system: str, allowed: frozenset[str], name: str) -> None:
    """A required binding: a coding of the bound system must carry one of its codes."""
    if concept is None:
        return
    for coding in concept.coding:
        if coding.system in (system, None) and coding.code is not None and coding.code not in allowed:
            raise ValueError(f"{name}: code not in the required value set")


class Procedure(Clinical, kw_only=True):
    status: ProcedureStatus
    code: CodeableConcept | None = None
    performedDateTime: DateTime | None = None
    performedPeriod: Period | None = None


class Medication(Resource, kw_only=True):
    code: CodeableConcept | None = None
    form: CodeableConcept | None = None
    ingredient: list[Ingredient] = []


class MedicationUse(Clinical, kw_only=True):
    """Fields shared by the three medication resources: the product and when."""

    medicationCodeableConcept: CodeableConcept | None = None
    medicationReference: Reference | None = None
    # contained resources of any type; a contained Medication is read when it is referenced
    contained: list[dict[str, Any]] = []


class MedicationRequest(MedicationUse, kw_only=True):
    status: MedicationRequestStatus
    authoredOn: DateTime | None = None
    dosageInstruction: list[Dosage] = []
    dispenseRequest: DispenseRequest | None = None


class MedicationStatement(MedicationUse, kw_only=True):
    status: MedicationStatementStatus
    effectiveDateTime: DateTime | None = None
    effectivePeriod: Period | None = None
    dosage: list[Dosage] = []


class MedicationAdministration(MedicationUse, kw_only=True):
    status: MedicationAdministrationStatus
    effectiveDateTime: DateTime | None = None
    effectivePeriod: Period | None = None
    dosage: AdministrationDosage | None = None


class ServiceRequest(Clinical, kw_only=True):
    status: ServiceRequestStatus
    code: CodeableConcept | None = None
    authoredOn: DateTime | None = None


# Draft orders (context.draftOrders) are being written: their status may not be set yet.
class DraftMedicationRequest(MedicationRequest, kw_only=True):
    status: MedicationRequestStatus | None = None  # type: ignore[assignment]


class DraftServiceRequest(ServiceRequest, kw_only=True):
    status: ServiceRequestStatus | None = None  # type: ignore[assignment]


FORMS: dict[str, type[Resource]] = {
    "Patient": Patient,
    "Observation": Observation,
    "Condition": Condition,
    "Procedure": Procedure,
    "Medication": Medication,
    "MedicationRequest": MedicationRequest,
    "MedicationStatement": MedicationStatement,
    "MedicationAdministration": MedicationAdministration,
    "ServiceRequest": ServiceRequest,
}
DRAFT_FORMS: dict[str, type[Resource]] = {
    "MedicationRequest": DraftMedicationRequest,
    "ServiceRequest": DraftServiceRequest,
}
USED_RESOURCE_TYPES = frozenset(FORMS)
