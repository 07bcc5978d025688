"""FHIR R4 read forms -> PatientRecord: classify through the knowledge value sets, convert to canonical units.

Input is the typed read forms of `fhir.forms` (one read pass, `fhir.reader`: every field used here
is already validated, so nothing is walked defensively twice); `build_patient_record` also accepts
the raw JSON and reads it first. Rules from clinical-reference 4.1: entered-in-error and cancelled
data are ignored; final/amended/corrected results are used (preliminary only when asked); a result
whose unit is missing or unknown is kept with `problem` set, never dropped and never guessed;
comparators are kept. A resource that maps to no concept is skipped after one or two lookups. A
resource that could not be read is not a fact but an `UnreadableResource`, named on every card.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

import msgspec

from cds_service.clinical import units as dose
from cds_service.clinical.record import (
    OPEN_ORDER_STATUSES,
    USABLE_LAB_STATUSES,
    CodeRef,
    LabResult,
    MatchMethod,
    MedicationExposure,
    OrderFact,
    PatientRecord,
    Problem,
    Route,
    StrengthSource,
)
from cds_service.clinical.unreadable import unreadable_resource
from cds_service.fhir import forms as f
from cds_service.fhir.reader import ReadResult, contained_medication, read_resources
from cds_service.knowledge import Knowledge
from cds_service.knowledge.concepts import B12_REPLACEMENT, CONDITION_CLASSES, FOLIC_ACID, MEDICATION_CLASSES
from cds_service.knowledge.model import ProductInfo

UCUM = "http://unitsofmeasure.org"
CONDITION_ACTIVE = frozenset({"active", "recurrence", "relapse"})
CONDITION_IGNORED = frozenset({"entered-in-error", "refuted"})
COMPARATORS = frozenset({"<", "<=", ">", ">="})
ACTIVE_BY_TYPE: dict[str, frozenset[str]] = {
    "MedicationRequest": frozenset({"active", "on-hold"}),
    "MedicationStatement": frozenset({"active", "intended"}),
    "MedicationAdministration": frozenset({"in-progress"}),
}
DROPPED_BY_TYPE: dict[str, frozenset[str]] = {
    "MedicationRequest": frozenset({"entered-in-error"}),
    "MedicationStatement": frozenset({"entered-in-error", "not-taken"}),
    "MedicationAdministration": frozenset({"entered-in-error", "not-done"}),
}
DRAFT_CLOSED = frozenset({"entered-in-error", "cancelled", "revoked", "stopped", "completed"})


MAX_PLAUSIBLE_VALUE = 1e7  # far above any real lab concentration in canonical units (B12 ~100-2000 pmol/L)


def build_patient_record(
    resources: Sequence[dict[str, Any]],
    kb: Knowledge,
    *,
    patient_id: str,
    as_of: datetime,
    draft_orders: Sequence[dict[str, Any]] = (),
    selections: Sequence[str] = (),
    unavailable_inputs: Sequence[str] = (),
    include_preliminary: bool = False,
) -> PatientRecord:
    """Read the raw FHIR JSON (prefetch/fetched resources, draft orders) and normalise it."""
    read = read_resources(_flatten(resources), kb, _flatten(draft_orders))
    return record_from_read(read, kb, patient_id=patient_id, as_of=as_of, selections=selections,
                            unavailable_inputs=unavailable_inputs, include_preliminary=include_preliminary)


def record_from_read(
    read: ReadResult,
    kb: Knowledge,
    *,
    patient_id: str,
    as_of: datetime,
    selections: Sequence[str] = (),
    unavailable_inputs: Sequence[str] = (),
    include_preliminary: bool = False,
) -> PatientRecord:
    """Normalise the read forms into the facts the rules read."""
    items = read.resources
    drafts = read.drafts
    medications = _medication_index([*items, *drafts])
    labs: list[LabResult] = []
    meds: list[MedicationExposure | None] = []
    problems: list[Problem | None] = []
    orders: list[OrderFact | None] = []
    birth: date | None = None
    sex: str | None = None
    unreadable = [_ref(r) for r in [*items, *drafts] if _unresolved_medication(r, medications)]
    for res in items:
        if isinstance(res, f.Observation):
            fact = _observation(res, kb, include_preliminary)
            if isinstance(fact, LabResult):
                labs.append(fact)
            elif fact is not None:
                problems.append(fact)
        elif isinstance(res, f.Condition):
            problems.append(_condition(res, kb))
        elif isinstance(res, f.Procedure):
            problems.append(_procedure(res, kb))
        elif isinstance(res, f.MedicationUse):
            meds.append(_medication(res, kb, medications, is_draft=False))
        elif isinstance(res, f.ServiceRequest):
            orders.append(_service_request(res, kb, is_draft=False))
        elif isinstance(res, f.Patient) and birth is None and sex is None:
            birth = _date(res.birthDate)
            sex = res.gender
    for res in drafts:
        if isinstance(res, f.MedicationRequest):
            meds.append(_medication(res, kb, medications, is_draft=True))
        elif isinstance(res, f.ServiceRequest):
            orders.append(_service_request(res, kb, is_draft=True))
    if as_of.tzinfo is None:
        as_of = as_of.replace(tzinfo=UTC)
    return PatientRecord(
        patient_id=patient_id, as_of=as_of, birth_date=birth, sex=sex, labs=tuple(labs),
        medications=tuple(m for m in meds if m), problems=tuple(p for p in problems if p),
        orders=tuple(o for o in orders if o),
        unavailable_inputs=tuple(unavailable_inputs), subject_refs=tuple(selections),
        unreadable_medications=tuple(unreadable),
        unreadable_resources=tuple(unreadable_resource(failure) for failure in read.failures),
    )


def _unresolved_medication(res: f.Resource, index: dict[str, f.Medication]) -> bool:
    """A medication resource naming its product only by a reference we were not sent (and no display)."""
    if not isinstance(res, f.MedicationUse) or res.medicationCodeableConcept is not None:
        return False
    if res.medicationReference is None:
        return False
    concept, display, _, _ = _medication_concept(res, index)
    return concept is None and not display


# --- plumbing --------------------------------------------------------------------------------------
def _flatten(resources: Sequence[Any]) -> list[dict[str, Any]]:
    """Resources as a flat list; Bundles (e.g. a draftOrders Bundle) contribute their entries."""
    out: list[dict[str, Any]] = []
    for res in resources:
        if not isinstance(res, dict):
            continue
        if res.get("resourceType") == "Bundle":
            entries = res.get("entry")
            out.extend(_flatten([e.get("resource") for e in entries if isinstance(e, dict)]
                                if isinstance(entries, list) else []))
        elif isinstance(res.get("resourceType"), str):
            out.append(res)
    return out


def _str(value: str | None) -> str | None:
    return value.strip() if value is not None and value.strip() else None


def _ref(res: f.Resource) -> str:
    return f"{res.resourceType}/{res.id or '(no id)'}"


def _codings(concept: f.CodeableConcept | None) -> list[f.Coding]:
    return [cd for cd in concept.coding if cd.code is not None] if concept is not None else []


def _code_ref(coding: f.Coding) -> CodeRef:
    return CodeRef(coding.system or "", str(coding.code), _str(coding.display))


def _first_code(concept: f.CodeableConcept | None) -> str | None:
    codings = _codings(concept)
    return codings[0].code if codings else None


def _datetime(value: str | None) -> datetime | None:
    """FHIR date/dateTime/instant as an aware UTC datetime; partial dates take their first day."""
    if value is None:
        return None
    try:
        if len(value) == 4:
            parsed = datetime(int(value), 1, 1)
        elif len(value) == 7:
            parsed = datetime(int(value[:4]), int(value[5:7]), 1)
        else:
            parsed = datetime.fromisoformat(value)
        # year 1 or 9999 with an offset overflows on conversion: such a date is unusable, not a crash
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None  # the format is valid FHIR but the day is not (2026-02-30)


def _date(value: str | None) -> date | None:
    parsed = _datetime(value)
    return parsed.date() if parsed else None


def _start(period: f.Period | None) -> datetime | None:
    return _datetime(period.start) if period is not None else None


def _classify(kb: Knowledge, codings: list[f.Coding], allowed: frozenset[str]) -> tuple[frozenset[str], CodeRef | None]:
    """Union of allowed concepts over all codings; the first matching coding is the one shown."""
    found: frozenset[str] = frozenset()
    shown: CodeRef | None = None
    for coding in codings:
        hit = kb.concepts_for(coding.system, coding.code) & allowed
        if hit:
            found = found | hit
            shown = shown or _code_ref(coding)
    return found, shown


# --- observations ----------------------------------------------------------------------------------
def _observation(res: f.Observation, kb: Knowledge, include_preliminary: bool) -> LabResult | Problem | None:
    status = res.status
    if status not in USABLE_LAB_STATUSES and not (include_preliminary and status == "preliminary"):
        return None
    codings = _codings(res.code)
    for coding in codings:
        analyte = kb.lab_analyte(coding.system, coding.code)
        if analyte is not None:
            return _lab(res, kb, analyte, _code_ref(coding), status)
    # A finding recorded as an Observation (e.g. SNOMED numbness), in its code or its coded value.
    classes, shown = _classify(kb, codings, CONDITION_CLASSES)
    if not classes:
        classes, shown = _classify(kb, _codings(res.valueCodeableConcept), CONDITION_CLASSES)
    if not classes or shown is None or res.valueBoolean is False:
        return None
    return Problem(classes, _ref(res), shown, True, onset=_effective(res), recorded=_datetime(res.issued))


def _effective(res: f.Observation) -> datetime | None:
    return (
        _datetime(res.effectiveDateTime)
        or _start(res.effectivePeriod)
        or _datetime(res.effectiveInstant)
        or _datetime(res.issued)
    )


def _lab(res: f.Observation, kb: Knowledge, analyte: str, code: CodeRef, status: str) -> LabResult:
    base: dict[str, Any] = dict(
        analyte=analyte, source_ref=_ref(res), code=code, effective=_effective(res),
        unit=kb.canonical_unit(analyte), status=status,
    )
    if kb.is_qualitative(analyte):
        return _qualitative(res, kb, base)
    quantity = res.valueQuantity
    if quantity is not None and quantity.value is not None:
        number = float(quantity.value)
        raw_value = str(quantity.value)
        comparator = quantity.comparator if quantity.comparator in COMPARATORS else None
        value, unit = _convert(kb, analyte, number, quantity)
        problem = None
        if value is None:
            problem = "unit missing" if unit is None else f"unit '{unit}' not recognised"
        elif not math.isfinite(value) or value < 0 or value > MAX_PLAUSIBLE_VALUE:
            # a negative, infinite or absurd concentration is a data error, never a result to classify
            value, problem = None, "value outside any plausible range"
        low, high = _reference_range(kb, analyte, res, unit if value is not None else None)
        return LabResult(
            **base, raw_value=raw_value, raw_unit=unit, value=value, comparator=comparator,
            reference_low=low, reference_high=high, problem=problem,
        )
    text = _str(res.valueString)
    if text is not None:
        return LabResult(**base, raw_value=text, raw_unit=None, value=None,
                         problem=f"result is text ('{text}'), not a quantity with a unit")
    return LabResult(**base, raw_value=None, raw_unit=None, value=None, problem="no numeric value")


def _convert(kb: Knowledge, analyte: str, number: float, quantity: f.Quantity) -> tuple[float | None, str | None]:
    """Convert using the UCUM `code` first, then the human `unit`; returns (value, unit as received)."""
    candidates = []
    if quantity.system in (None, UCUM):
        candidates.append(_str(quantity.code))
    candidates.append(_str(quantity.unit))
    units = [u for u in candidates if u is not None]
    for unit in units:
        value = kb.to_canonical(analyte, number, unit)
        if value is not None:
            return value, unit
    return None, (units[0] if units else None)


def _reference_range(
    kb: Knowledge, analyte: str, res: f.Observation, result_unit: str | None
) -> tuple[float | None, float | None]:
    """Lab reference limits in canonical units; a limit without its own unit takes the result's unit."""
    if not res.referenceRange:
        return None, None
    limits = []
    first = res.referenceRange[0]
    for q in (first.low, first.high):
        number = float(q.value) if q is not None and q.value is not None else None
        unit = (_str(q.code) or _str(q.unit) if q is not None else None) or result_unit
        limits.append(kb.to_canonical(analyte, number, unit) if number is not None else None)
    return limits[0], limits[1]


def _qualitative(res: f.Observation, kb: Knowledge, base: dict[str, Any]) -> LabResult:
    """Antibody results: positive/negative from a coded value, a text value or the interpretation."""
    concept = res.valueCodeableConcept
    quantity = res.valueQuantity
    codings = _codings(concept) + [cd for i in res.interpretation for cd in _codings(i)]
    coded = [(kb.qualitative_result(cd.system, cd.code), _str(cd.display) or str(cd.code)) for cd in codings]
    texts = [t for t in (_str(concept.text) if concept else None, _str(res.valueString)) if t]
    # the flag's own words count too: interpretation.text, or a coding's display with no known code
    texts += [t for i in res.interpretation for t in [_str(i.text)] + [_str(cd.display) for cd in i.coding] if t]
    found = [hit for hit in coded if hit[0] is not None] + [(kb.qualitative_text(t), t) for t in texts]
    positive, shown = next(((p, label) for p, label in found if p is not None), (None, None))
    value = quantity.value if quantity is not None else None
    unit = (_str(quantity.unit) or _str(quantity.code)) if quantity is not None else None
    number = float(value) if value is not None else None
    high = _qualitative_high(res, unit)
    reference_high = None
    if positive is None and number is not None and high is not None:
        # clinical-reference 4.6 D5: a titre reported as a number is positive above the lab's upper
        # reference limit (same unit, or a limit without a unit of its own), negative at or below it
        positive, reference_high = number > high, high
    raw_value = (str(value).strip() if number is not None else None) or shown or (texts[0] if texts else None)
    if positive is not None:
        problem = None
    elif number is not None:
        problem = "a number without a reference range or interpretation: positive or negative cannot be told"
    else:
        problem = "no positive/negative result or interpretation"
    return LabResult(**base, raw_value=raw_value, raw_unit=unit if number is not None else None,
                     value=None, positive=positive, reference_high=reference_high, problem=problem)


def _qualitative_high(res: f.Observation, unit: str | None) -> float | None:
    """Upper reference limit of an antibody titre, only when its unit (if any) is the result's."""
    if not res.referenceRange:
        return None
    high = res.referenceRange[0].high
    if high is None or high.value is None:
        return None
    limit_unit = _str(high.unit) or _str(high.code)
    if limit_unit is not None and unit is not None and limit_unit != unit:
        return None
    return float(high.value)


# --- conditions and procedures ---------------------------------------------------------------------
def _condition(res: f.Condition, kb: Knowledge) -> Problem | None:
    verification = {str(cd.code) for cd in _codings(res.verificationStatus)}
    if verification & CONDITION_IGNORED:
        return None
    classes, shown = _classify(kb, _codings(res.code), CONDITION_CLASSES)
    if not classes or shown is None:
        return None
    clinical = _first_code(res.clinicalStatus)
    if clinical is not None:
        active = clinical in CONDITION_ACTIVE
    else:  # no clinicalStatus: active unless an abatement is recorded
        active = not res.has_abatement
    onset = _datetime(res.onsetDateTime) or _start(res.onsetPeriod)
    return Problem(classes, _ref(res), shown, active, onset=onset, recorded=_datetime(res.recordedDate))


def _procedure(res: f.Procedure, kb: Knowledge) -> Problem | None:
    if res.status != "completed":
        return None
    classes, shown = _classify(kb, _codings(res.code), CONDITION_CLASSES)
    if not classes or shown is None:
        return None
    performed = _datetime(res.performedDateTime) or _start(res.performedPeriod)
    return Problem(classes, _ref(res), shown, True, onset=performed)


# --- medications -----------------------------------------------------------------------------------
def _medication_index(resources: list[f.Resource]) -> dict[str, f.Medication]:
    return {r.id: r for r in resources if isinstance(r, f.Medication) and r.id is not None}


def _medication_concept(
    res: f.MedicationUse, index: dict[str, f.Medication]
) -> tuple[f.CodeableConcept | None, str | None, str | None, list[f.Ingredient]]:
    """(code concept, reference display, Medication.form text, Medication.ingredient) from medication[x].

    References are resolved to a contained or sent Medication; its ingredients carry the strength that
    D3 (clinical-reference 4.6) reads when the dosage instructions are missing.
    """
    if res.medicationCodeableConcept is not None:
        return res.medicationCodeableConcept, None, None, []
    reference = res.medicationReference
    target = _str(reference.reference) if reference is not None else None
    display = _str(reference.display) if reference is not None else None
    medication: f.Medication | None = None
    if target and target.startswith("#"):
        medication = contained_medication(res, target[1:])
    elif target and "Medication/" in target:
        medication = index.get(target.rsplit("Medication/", 1)[1].split("/")[0])
    if medication is None:
        return None, display, None, []
    form = medication.form
    form_text = (_str(form.text) or next((_str(cd.display) for cd in _codings(form)), None)) if form else None
    return medication.code or f.CodeableConcept(), display, form_text, list(medication.ingredient)


def _medication(res: f.MedicationUse, kb: Knowledge, index: dict[str, f.Medication], *,
                is_draft: bool) -> MedicationExposure | None:
    rt = res.resourceType
    status = getattr(res, "status", None) or "unknown"
    if status in DROPPED_BY_TYPE.get(rt, frozenset()):
        return None
    concept, ref_display, form_text, ingredients = _medication_concept(res, index)
    codings = _codings(concept)
    classes, shown = _classify(kb, codings, MEDICATION_CLASSES)
    text = (_str(concept.text) if concept else None) or ref_display or next((_str(cd.display) for cd in codings), None)
    # A Medication may state its content only in its ingredients (a local product name, an ingredient
    # coded RxNorm cyanocobalamin): those codes count like the product's own (4.6 D3).
    ingredient_codings = [cd for i in ingredients for cd in _codings(i.itemCodeableConcept)]
    from_ingredients, ingredient_shown = _classify(kb, ingredient_codings, MEDICATION_CLASSES)
    classes, shown = classes | from_ingredients, shown or ingredient_shown
    # The product name can name ingredients the codes do not (a combined contraceptive coded only by its
    # levomefolate ingredient); classes found only by name make the whole exposure 'matched by name'.
    named, generic, excluded = frozenset[str](), frozenset[str](), frozenset[str]()
    ingredient_names = [_str(i.itemCodeableConcept.text) if i.itemCodeableConcept else None for i in ingredients]
    for candidate in [text, ref_display] + [_str(cd.display) for cd in codings] + ingredient_names:
        match = kb.medication_name_match(candidate)
        named, generic, excluded = named | match.classes, generic | match.by_ingredient, excluded | match.excluded
    by_name = named - classes  # classes only the name states: 'brand' when no ingredient name stated them
    matched_by: MatchMethod = "code" if classes and not by_name else ("brand" if not by_name & generic else "text")
    shown = shown or (_code_ref(codings[0]) if codings else None)
    classes = (classes | named) - excluded  # a cyanide-antidote kit never counts as B12 replacement
    if not classes:
        return None
    if is_draft:
        active = status not in DRAFT_CLOSED
    else:
        active = status in ACTIVE_BY_TYPE[rt]
    product = next((p for cd in codings if (p := kb.product(cd.system, cd.code)) is not None), None)
    dosage: f.Dosage | f.AdministrationDosage | None
    if isinstance(res, f.MedicationRequest):
        dosage = res.dosageInstruction[0] if res.dosageInstruction else None
    elif isinstance(res, f.MedicationStatement):
        dosage = res.dosage[0] if res.dosage else None
    elif isinstance(res, f.MedicationAdministration):
        dosage = res.dosage
    else:  # the three MedicationUse forms are handled above
        dosage = None
    # the dose arithmetic (clinical.units) reads the Dosage as FHIR JSON: the validated form, as builtins
    dosage_json: dict[str, Any] = msgspec.to_builtins(dosage) if dosage is not None else {}
    start, end = _medication_period(res, rt)
    names = [text, ref_display] + [_str(cd.display) for cd in codings]
    strength, source = _unit_strength(kb, classes, ingredients, names, product)
    daily = dose.daily_dose_mg(dosage_json, strength, single_event=rt == "MedicationAdministration")
    return MedicationExposure(
        classes=classes, source_ref=_ref(res), resource_type=rt, status=status, is_active=active,
        matched_by=matched_by, code=shown, text=text, start=start, end=end,
        route=_route(kb, dosage, product.dose_form if product else None, form_text, text),
        daily_dose_mg=daily, is_draft=is_draft,
        unit_strength_mg=strength.strength_mg if strength else None,
        strength_per=strength.strength_per if strength else None,
        strength_source=source,
        frequency_known=dose.per_day(dosage_json.get("timing")) is not None,
    )


# The ingredient whose strength a dose decision reads (4.6 D3): B12 decides cover, folic acid decides
# the pregnancy prophylaxis exclusion; a combination product is judged by its B12 content.
DOSE_CLASSES = (B12_REPLACEMENT, FOLIC_ACID)
_NAME_PARTS = re.compile(r"\s+/\s+|\s+\+\s+|\s+with\s+", re.IGNORECASE)
_RXNORM_BRAND = re.compile(r"\s*\[[^\]]*\]\s*$")  # "... Tablet [Slow Fe with Folic Acid]": not an ingredient part


def _dose_class(classes: frozenset[str]) -> str | None:
    return next((c for c in DOSE_CLASSES if c in classes), None)


def _unit_strength(
    kb: Knowledge, classes: frozenset[str], ingredients: list[f.Ingredient], names: list[str | None],
    product: ProductInfo | None,
) -> tuple[dose.StrengthInfo | None, StrengthSource | None]:
    """Strength of one unit, in the order of clinical-reference 4.6 D3 (after the dosage itself).

    Medication.ingredient.strength, then the strength an RxNorm-style name states, then the
    knowledge's product table. In a combination product only the strength of the dose-deciding
    ingredient is read (B12, else folic acid); when it cannot be told apart, nothing is guessed.
    """
    wanted = _dose_class(classes)
    strengths = []
    for ingredient in ingredients:
        item = ingredient.itemCodeableConcept
        item_classes, _ = _classify(kb, _codings(item), MEDICATION_CLASSES)
        item_classes = item_classes | kb.medication_classes_for_text(_str(item.text) if item else None)
        if len(ingredients) == 1 or (wanted is not None and wanted in item_classes):
            ratio = msgspec.to_builtins(ingredient.strength) if ingredient.strength is not None else None
            strengths.append(dose.strength_from_ratio(ratio))
    found = {s for s in strengths if s is not None}
    if len(found) == 1:
        return found.pop(), "Medication.ingredient.strength"
    for name in names:
        from_name = _name_strength(kb, name, wanted)
        if from_name is not None:
            return from_name, "product name"
    if product is not None and product.strength_mg is not None:
        return product, "product table"
    return None, None


def _name_strength(kb: Knowledge, name: str | None, wanted: str | None) -> dose.StrengthInfo | None:
    """The strength a product name states for the dose-deciding ingredient.

    "... / cyanocobalamin 1 mg / ..." reads the part naming it; several parts naming it (mecobalamin
    0.6 mg / vitamin B12 0.6 mg) add up, as the product table does; "cyanocobalamin-folic acid
    0.025-1 mg" maps the hyphen-joined strengths onto the hyphen-joined ingredients in order. When the
    ingredient cannot be told apart, nothing is guessed.
    """
    if not name:
        return None
    name = _RXNORM_BRAND.sub("", name)
    hyphenated = dose.hyphenated_strengths(name)
    if hyphenated is not None:
        return _positional_strength(kb, name, hyphenated, wanted)
    parts = _NAME_PARTS.split(name)
    if len(parts) == 1:
        return dose.strength_from_name(name)
    if wanted is None:
        return None
    found = [dose.strength_from_name(p) for p in parts if wanted in kb.medication_classes_for_text(p)]
    strengths = [s for s in found if s is not None and s.strength_mg is not None]
    if not found or len(strengths) != len(found):
        return None
    if len({s.strength_per for s in strengths}) != 1:
        return None
    total = sum(s.strength_mg for s in strengths if s.strength_mg is not None)
    return dose.Strength(round(total, 9), strengths[0].strength_per)


def _positional_strength(
    kb: Knowledge, name: str, strengths: list[float], wanted: str | None
) -> dose.StrengthInfo | None:
    """'cyanocobalamin-folic acid 0.025-1 mg': the k-th ingredient before the numbers has the k-th strength."""
    head = re.split(r"\d", name, maxsplit=1)[0]
    ingredients = [part.strip() for part in head.split("-")]
    if wanted is None or len(ingredients) != len(strengths):
        return None
    picked = [mg for part, mg in zip(ingredients, strengths, strict=True)
              if wanted in kb.medication_classes_for_text(part)]
    return dose.Strength(round(sum(picked), 9), "unit") if picked else None


def _medication_period(res: f.MedicationUse, rt: str) -> tuple[datetime | None, datetime | None]:
    period: f.Period | None = getattr(res, "effectivePeriod", None)
    request = getattr(res, "dispenseRequest", None)
    validity = request.validityPeriod if request is not None else None
    start = (
        _datetime(getattr(res, "authoredOn", None)) or _datetime(getattr(res, "effectiveDateTime", None))
        or _start(period) or _start(validity)
    )
    end = (_datetime(period.end) if period else None) or (_datetime(validity.end) if validity else None)
    if rt == "MedicationAdministration" and end is None:
        end = start  # an administration is a point in time
    return start, end


def _route(kb: Knowledge, dosage: f.Dosage | f.AdministrationDosage | None, dose_form: str | None,
           form_text: str | None, text: str | None) -> Route:
    """Route from the dosage route (text, displays, codes), else from the product's dose form."""
    route = dosage.route if dosage is not None else None
    parts = [_str(route.text) if route else None] + [_str(cd.display) or cd.code for cd in _codings(route)]
    for candidate in (" ".join(p for p in parts if p), dose_form, form_text, text):
        found = kb.route_for_text(candidate)
        if found is not None:
            return found
    return "unknown"


# --- service requests ------------------------------------------------------------------------------
def _service_request(
    res: f.ServiceRequest | f.DraftServiceRequest, kb: Knowledge, *, is_draft: bool
) -> OrderFact | None:
    status = res.status or ("draft" if is_draft else "unknown")
    if status not in OPEN_ORDER_STATUSES and not (is_draft and status not in DRAFT_CLOSED):
        return None
    codings = _codings(res.code)
    concepts: frozenset[str] = frozenset()
    shown: CodeRef | None = None
    for coding in codings:
        hit = kb.concepts_for(coding.system, coding.code)
        analyte = kb.lab_analyte(coding.system, coding.code)
        if analyte is not None:
            hit = hit | {analyte}
        if hit:
            concepts = concepts | hit
            shown = shown or _code_ref(coding)
    if not concepts:
        return None
    return OrderFact(concepts, _ref(res), status, shown, authored=_datetime(res.authoredOn), is_draft=is_draft)
