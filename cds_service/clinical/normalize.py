"""FHIR R4 JSON -> PatientRecord: classify through the knowledge value sets, convert to canonical units.

Pure functions over plain dicts (already R4B-validated upstream, except draft orders, which are parsed
leniently). Rules from clinical-reference 4.1: entered-in-error and cancelled data are ignored;
final/amended/corrected results are used (preliminary only when asked); a result whose unit is missing
or unknown is kept with `problem` set, never dropped and never guessed; comparators are kept.
A resource that maps to no concept is skipped after one or two dict lookups.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

from cds_service.clinical import units as dose
from cds_service.clinical.concepts import B12_REPLACEMENT, CONDITION_CLASSES, FOLIC_ACID, MEDICATION_CLASSES
from cds_service.clinical.record import (
    CodeRef,
    LabResult,
    MedicationExposure,
    OrderFact,
    PatientRecord,
    Problem,
    StrengthSource,
)
from cds_service.knowledge import Knowledge
from cds_service.knowledge.model import ProductInfo

UCUM = "http://unitsofmeasure.org"
RESULT_STATUSES = frozenset({"final", "amended", "corrected"})
CONDITION_ACTIVE = frozenset({"active", "recurrence", "relapse"})
CONDITION_IGNORED = frozenset({"entered-in-error", "refuted"})
COMPARATORS = frozenset({"<", "<=", ">", ">="})
OPEN_ORDER = frozenset({"active", "draft", "on-hold"})
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
    resources: Sequence[dict],
    kb: Knowledge,
    *,
    patient_id: str,
    as_of: datetime,
    draft_orders: Sequence[dict] = (),
    selections: Sequence[str] = (),
    unavailable_inputs: Sequence[str] = (),
    include_preliminary: bool = False,
) -> PatientRecord:
    """Normalise prefetch/fetched resources and draft orders into the facts the rules read."""
    items = _unique(_flatten(resources))
    drafts = list(_flatten(draft_orders))
    medications = _medication_index(items + drafts)
    labs: list[LabResult] = []
    meds: list[MedicationExposure | None] = []
    problems: list[Problem | None] = []
    orders: list[OrderFact | None] = []
    birth: date | None = None
    sex: str | None = None
    unreadable = [_ref(r) for r in items + drafts if _unresolved_medication(r, medications)]
    for res in items:
        rt = res.get("resourceType")
        if rt == "Observation":
            fact = _observation(res, kb, include_preliminary)
            if isinstance(fact, LabResult):
                labs.append(fact)
            elif fact is not None:
                problems.append(fact)
        elif rt == "Condition":
            problems.append(_condition(res, kb))
        elif rt == "Procedure":
            problems.append(_procedure(res, kb))
        elif rt in ACTIVE_BY_TYPE:
            meds.append(_medication(res, kb, medications, is_draft=False))
        elif rt == "ServiceRequest":
            orders.append(_service_request(res, kb, is_draft=False))
        elif rt == "Patient" and birth is None and sex is None:
            birth = _date(res.get("birthDate"))
            sex = _str(res.get("gender"))
    for res in drafts:
        rt = res.get("resourceType")
        if rt == "MedicationRequest":
            meds.append(_medication(res, kb, medications, is_draft=True))
        elif rt == "ServiceRequest":
            orders.append(_service_request(res, kb, is_draft=True))
    if as_of.tzinfo is None:
        as_of = as_of.replace(tzinfo=UTC)
    return PatientRecord(
        patient_id=patient_id, as_of=as_of, birth_date=birth, sex=sex, labs=tuple(labs),
        medications=tuple(m for m in meds if m), problems=tuple(p for p in problems if p),
        orders=tuple(o for o in orders if o),
        unavailable_inputs=tuple(unavailable_inputs), subject_refs=tuple(selections),
        unreadable_medications=tuple(unreadable),
    )


def _unresolved_medication(res: dict, index: dict[str, dict]) -> bool:
    """A medication resource naming its product only by a reference we were not sent (and no display)."""
    if res.get("resourceType") not in ACTIVE_BY_TYPE or "medicationCodeableConcept" in res:
        return False
    if "medicationReference" not in res:
        return False
    concept, display, _, _ = _medication_concept(res, index)
    return concept is None and not display


# --- plumbing --------------------------------------------------------------------------------------
def _flatten(resources: Sequence[Any]) -> list[dict]:
    """Resources as a flat list; Bundles (e.g. a draftOrders Bundle) contribute their entries."""
    out: list[dict] = []
    for res in resources:
        if not isinstance(res, dict):
            continue
        if res.get("resourceType") == "Bundle":
            out.extend(_flatten([_dict(e).get("resource") for e in _list(res.get("entry"))]))
        elif isinstance(res.get("resourceType"), str):
            out.append(res)
    return out


def _unique(resources: list[dict]) -> list[dict]:
    """Deduplicate by resourceType/id (prefetch and fetched data overlap); first copy wins."""
    seen: set[tuple[str, str]] = set()
    out = []
    for res in resources:
        rid = res.get("id")
        if isinstance(rid, str):
            key = (res["resourceType"], rid)
            if key in seen:
                continue
            seen.add(key)
        out.append(res)
    return out


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list:
    if isinstance(value, list):
        return value
    return [value] if isinstance(value, dict) else []


def _str(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _ref(res: dict) -> str:
    return f"{res['resourceType']}/{_str(res.get('id')) or '(no id)'}"


def _codings(concept: Any) -> list[dict]:
    return [c for c in _list(_dict(concept).get("coding")) if isinstance(c, dict) and _str(c.get("code"))]


def _code_ref(coding: dict) -> CodeRef:
    return CodeRef(str(coding.get("system") or ""), coding["code"].strip(), _str(coding.get("display")))


def _first_code(concept: Any) -> str | None:
    codings = _codings(concept)
    return codings[0]["code"].strip() if codings else None


def _datetime(value: Any) -> datetime | None:
    """FHIR date/dateTime/instant as an aware UTC datetime; partial dates take their first day."""
    text = _str(value)
    if text is None:
        return None
    try:
        if len(text) == 4:
            parsed = datetime(int(text), 1, 1)
        elif len(text) == 7:
            parsed = datetime(int(text[:4]), int(text[5:7]), 1)
        else:
            parsed = datetime.fromisoformat(text)
        # year 1 or 9999 with an offset overflows on conversion: such a date is unusable, not a crash
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def _date(value: Any) -> date | None:
    parsed = _datetime(value)
    return parsed.date() if parsed else None


def _classify(kb: Knowledge, codings: list[dict], allowed: frozenset[str]) -> tuple[frozenset[str], CodeRef | None]:
    """Union of allowed concepts over all codings; the first matching coding is the one shown."""
    found: frozenset[str] = frozenset()
    shown: CodeRef | None = None
    for coding in codings:
        hit = kb.concepts_for(coding.get("system"), coding.get("code")) & allowed
        if hit:
            found = found | hit
            shown = shown or _code_ref(coding)
    return found, shown


# --- observations ----------------------------------------------------------------------------------
def _observation(res: dict, kb: Knowledge, include_preliminary: bool) -> LabResult | Problem | None:
    status = res.get("status")
    if status not in RESULT_STATUSES and not (include_preliminary and status == "preliminary"):
        return None
    codings = _codings(res.get("code"))
    for coding in codings:
        analyte = kb.lab_analyte(coding.get("system"), coding.get("code"))
        if analyte is not None:
            return _lab(res, kb, analyte, _code_ref(coding), status)
    # A finding recorded as an Observation (e.g. SNOMED numbness), in its code or its coded value.
    classes, shown = _classify(kb, codings, CONDITION_CLASSES)
    if not classes:
        classes, shown = _classify(kb, _codings(res.get("valueCodeableConcept")), CONDITION_CLASSES)
    if not classes or shown is None or res.get("valueBoolean") is False:
        return None
    return Problem(classes, _ref(res), shown, True, onset=_effective(res), recorded=_datetime(res.get("issued")))


def _effective(res: dict) -> datetime | None:
    return (
        _datetime(res.get("effectiveDateTime"))
        or _datetime(_dict(res.get("effectivePeriod")).get("start"))
        or _datetime(res.get("effectiveInstant"))
        or _datetime(res.get("issued"))
    )


def _lab(res: dict, kb: Knowledge, analyte: str, code: CodeRef, status: str) -> LabResult:
    base: dict[str, Any] = dict(
        analyte=analyte, source_ref=_ref(res), code=code, effective=_effective(res),
        unit=kb.canonical_unit(analyte), status=status,
    )
    if kb.is_qualitative(analyte):
        return _qualitative(res, kb, base)
    quantity = res.get("valueQuantity")
    if isinstance(quantity, dict) and dose.number(quantity.get("value")) is not None:
        number = dose.number(quantity.get("value"))
        raw_value = str(quantity.get("value")).strip()
        comparator = quantity.get("comparator") if quantity.get("comparator") in COMPARATORS else None
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
    text = _str(res.get("valueString"))
    if text is not None:
        return LabResult(**base, raw_value=text, raw_unit=None, value=None,
                         problem=f"result is text ('{text}'), not a quantity with a unit")
    return LabResult(**base, raw_value=None, raw_unit=None, value=None, problem="no numeric value")


def _convert(kb: Knowledge, analyte: str, number: float, quantity: dict) -> tuple[float | None, str | None]:
    """Convert using the UCUM `code` first, then the human `unit`; returns (value, unit as received)."""
    candidates = []
    if quantity.get("system") in (None, UCUM):
        candidates.append(_str(quantity.get("code")))
    candidates.append(_str(quantity.get("unit")))
    units = [u for u in candidates if u is not None]
    for unit in units:
        value = kb.to_canonical(analyte, number, unit)
        if value is not None:
            return value, unit
    return None, (units[0] if units else None)


def _reference_range(
    kb: Knowledge, analyte: str, res: dict, result_unit: str | None
) -> tuple[float | None, float | None]:
    """Lab reference limits in canonical units; a limit without its own unit takes the result's unit."""
    ranges = _list(res.get("referenceRange"))
    if not ranges:
        return None, None
    limits = []
    for name in ("low", "high"):
        q = _dict(_dict(ranges[0]).get(name))
        number = dose.number(q.get("value"))
        unit = _str(q.get("code")) or _str(q.get("unit")) or result_unit
        limits.append(kb.to_canonical(analyte, number, unit) if number is not None else None)
    return limits[0], limits[1]


def _qualitative(res: dict, kb: Knowledge, base: dict[str, Any]) -> LabResult:
    """Antibody results: positive/negative from a coded value, a text value or the interpretation."""
    concept = _dict(res.get("valueCodeableConcept"))
    quantity = _dict(res.get("valueQuantity"))
    codings = _codings(concept) + [c for i in _list(res.get("interpretation")) for c in _codings(i)]
    coded = [(kb.qualitative_result(c.get("system"), c.get("code")), _str(c.get("display")) or c["code"])
             for c in codings]
    interpretations = [_dict(i) for i in _list(res.get("interpretation"))]
    # the flag's own words count too: interpretation.text, or a coding's display with no known code
    texts = [t for t in (_str(concept.get("text")), _str(res.get("valueString"))) if t]
    texts += [t for i in interpretations for t in [_str(i.get("text"))] + [_str(c.get("display")) for c in
                                                                          _list(i.get("coding"))
                                                                          if isinstance(c, dict)] if t]
    found = [hit for hit in coded if hit[0] is not None] + [(kb.qualitative_text(t), t) for t in texts]
    positive, shown = next(((p, label) for p, label in found if p is not None), (None, None))
    value = quantity.get("value")
    unit = _str(quantity.get("unit")) or _str(quantity.get("code"))
    number = dose.number(value)
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


def _qualitative_high(res: dict, unit: str | None) -> float | None:
    """Upper reference limit of an antibody titre, only when its unit (if any) is the result's."""
    ranges = _list(res.get("referenceRange"))
    if not ranges:
        return None
    high = _dict(_dict(ranges[0]).get("high"))
    number = dose.number(high.get("value"))
    limit_unit = _str(high.get("unit")) or _str(high.get("code"))
    if number is None or (limit_unit is not None and unit is not None and limit_unit != unit):
        return None
    return number


# --- conditions and procedures ---------------------------------------------------------------------
def _condition(res: dict, kb: Knowledge) -> Problem | None:
    verification = {c["code"].strip() for c in _codings(res.get("verificationStatus"))}
    if verification & CONDITION_IGNORED:
        return None
    classes, shown = _classify(kb, _codings(res.get("code")), CONDITION_CLASSES)
    if not classes or shown is None:
        return None
    clinical = _first_code(res.get("clinicalStatus"))
    if clinical is not None:
        active = clinical in CONDITION_ACTIVE
    else:  # no clinicalStatus: active unless an abatement is recorded
        active = not any(k.startswith("abatement") for k in res)
    onset = _datetime(res.get("onsetDateTime")) or _datetime(_dict(res.get("onsetPeriod")).get("start"))
    return Problem(classes, _ref(res), shown, active, onset=onset, recorded=_datetime(res.get("recordedDate")))


def _procedure(res: dict, kb: Knowledge) -> Problem | None:
    if res.get("status") != "completed":
        return None
    classes, shown = _classify(kb, _codings(res.get("code")), CONDITION_CLASSES)
    if not classes or shown is None:
        return None
    performed = _datetime(res.get("performedDateTime")) or _datetime(_dict(res.get("performedPeriod")).get("start"))
    return Problem(classes, _ref(res), shown, True, onset=performed)


# --- medications -----------------------------------------------------------------------------------
def _medication_index(resources: list[dict]) -> dict[str, dict]:
    return {r["id"]: r for r in resources if r.get("resourceType") == "Medication" and isinstance(r.get("id"), str)}


def _medication_concept(res: dict, index: dict[str, dict]) -> tuple[dict | None, str | None, str | None, list]:
    """(code concept, reference display, Medication.form text, Medication.ingredient) from medication[x].

    References are resolved to a contained or sent Medication; its ingredients carry the strength that
    D3 (clinical-reference 4.6) reads when the dosage instructions are missing.
    """
    concept = res.get("medicationCodeableConcept")
    if isinstance(concept, dict):
        return concept, None, None, []
    reference = _dict(res.get("medicationReference"))
    target = _str(reference.get("reference"))
    medication: dict | None = None
    if target and target.startswith("#"):
        medication = next((c for c in _list(res.get("contained")) if isinstance(c, dict)
                           and c.get("resourceType") == "Medication" and c.get("id") == target[1:]), None)
    elif target and "Medication/" in target:
        medication = index.get(target.rsplit("Medication/", 1)[1].split("/")[0])
    if medication is None:
        return None, _str(reference.get("display")), None, []
    form = _dict(medication.get("form"))
    form_text = _str(form.get("text")) or next((_str(c.get("display")) for c in _codings(form)), None)
    ingredients = [i for i in _list(medication.get("ingredient")) if isinstance(i, dict)]
    return _dict(medication.get("code")), _str(reference.get("display")), form_text, ingredients


def _medication(res: dict, kb: Knowledge, index: dict[str, dict], *, is_draft: bool) -> MedicationExposure | None:
    rt = res["resourceType"]
    status = _str(res.get("status")) or "unknown"
    if status in DROPPED_BY_TYPE.get(rt, frozenset()):
        return None
    concept, ref_display, form_text, ingredients = _medication_concept(res, index)
    codings = _codings(concept)
    classes, shown = _classify(kb, codings, MEDICATION_CLASSES)
    # A Medication may state its content only in its ingredients (a local product name, an ingredient
    # coded RxNorm cyanocobalamin): those codes count like the product's own (4.6 D3).
    ingredient_codings = [c for i in ingredients for c in _codings(_dict(i.get("itemCodeableConcept")))]
    from_ingredients, ingredient_shown = _classify(kb, ingredient_codings, MEDICATION_CLASSES)
    classes, shown = classes | from_ingredients, shown or ingredient_shown
    text = _str(_dict(concept).get("text")) or ref_display or next((_str(c.get("display")) for c in codings), None)
    # The product name can name ingredients the codes do not (a combined contraceptive coded only by its
    # levomefolate ingredient); classes found only by name make the whole exposure 'matched by name'.
    named, generic, excluded = frozenset[str](), frozenset[str](), frozenset[str]()
    ingredient_names = [_str(_dict(i.get("itemCodeableConcept")).get("text")) for i in ingredients]
    for candidate in [text, ref_display] + [_str(c.get("display")) for c in codings] + ingredient_names:
        match = kb.medication_name_match(candidate)
        named, generic, excluded = named | match.classes, generic | match.by_ingredient, excluded | match.excluded
    by_name = named - classes  # classes only the name states: 'brand' when no ingredient name stated them
    matched_by = "code" if classes and not by_name else ("brand" if not by_name & generic else "text")
    shown = shown or (_code_ref(codings[0]) if codings else None)
    classes = (classes | named) - excluded  # a cyanide-antidote kit never counts as B12 replacement
    if not classes:
        return None
    if is_draft:
        active = status not in DRAFT_CLOSED
    else:
        active = status in ACTIVE_BY_TYPE[rt]
    product = next((p for c in codings if (p := kb.product(c.get("system"), c.get("code"))) is not None), None)
    if rt == "MedicationRequest":
        dosage = _dict(_list(res.get("dosageInstruction"))[0]) if _list(res.get("dosageInstruction")) else {}
    else:
        dosage = _dict(_list(res.get("dosage"))[0]) if _list(res.get("dosage")) else {}
    start, end = _medication_period(res, rt)
    names = [text, ref_display] + [_str(c.get("display")) for c in codings]
    strength, source = _unit_strength(kb, classes, ingredients, names, product)
    daily = dose.daily_dose_mg(dosage, strength, single_event=rt == "MedicationAdministration")
    return MedicationExposure(
        classes=classes, source_ref=_ref(res), resource_type=rt, status=status, is_active=active,
        matched_by=matched_by, code=shown, text=text, start=start, end=end,
        route=_route(kb, dosage, product.dose_form if product else None, form_text, text),
        daily_dose_mg=daily, is_draft=is_draft,
        unit_strength_mg=strength.strength_mg if strength else None,
        strength_per=strength.strength_per if strength else None,
        strength_source=source,
        frequency_known=dose.per_day(dosage.get("timing")) is not None,
    )


# The ingredient whose strength a dose decision reads (4.6 D3): B12 decides cover, folic acid decides
# the pregnancy prophylaxis exclusion; a combination product is judged by its B12 content.
DOSE_CLASSES = (B12_REPLACEMENT, FOLIC_ACID)
_NAME_PARTS = re.compile(r"\s+/\s+|\s+\+\s+|\s+with\s+", re.IGNORECASE)
_RXNORM_BRAND = re.compile(r"\s*\[[^\]]*\]\s*$")  # "... Tablet [Slow Fe with Folic Acid]": not an ingredient part


def _dose_class(classes: frozenset[str]) -> str | None:
    return next((c for c in DOSE_CLASSES if c in classes), None)


def _unit_strength(
    kb: Knowledge, classes: frozenset[str], ingredients: list, names: list[str | None], product: ProductInfo | None
) -> tuple[dose.StrengthInfo | None, StrengthSource | None]:
    """Strength of one unit, in the order of clinical-reference 4.6 D3 (after the dosage itself).

    Medication.ingredient.strength, then the strength an RxNorm-style name states, then the
    knowledge's product table. In a combination product only the strength of the dose-deciding
    ingredient is read (B12, else folic acid); when it cannot be told apart, nothing is guessed.
    """
    wanted = _dose_class(classes)
    strengths = []
    for ingredient in ingredients:
        item = _dict(ingredient.get("itemCodeableConcept"))
        item_classes, _ = _classify(kb, _codings(item), MEDICATION_CLASSES)
        item_classes = item_classes | kb.medication_classes_for_text(_str(item.get("text")))
        if len(ingredients) == 1 or (wanted is not None and wanted in item_classes):
            strengths.append(dose.strength_from_ratio(ingredient.get("strength")))
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
    strengths = [dose.strength_from_name(p) for p in parts if wanted in kb.medication_classes_for_text(p)]
    if not strengths or any(s is None or s.strength_mg is None for s in strengths):
        return None
    if len({s.strength_per for s in strengths if s is not None}) != 1:
        return None
    total = sum(s.strength_mg for s in strengths if s is not None and s.strength_mg is not None)
    return dose.Strength(round(total, 9), strengths[0].strength_per)  # type: ignore[union-attr]


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


def _medication_period(res: dict, rt: str) -> tuple[datetime | None, datetime | None]:
    period = _dict(res.get("effectivePeriod"))
    validity = _dict(_dict(res.get("dispenseRequest")).get("validityPeriod"))
    start = (
        _datetime(res.get("authoredOn")) or _datetime(res.get("effectiveDateTime"))
        or _datetime(period.get("start")) or _datetime(validity.get("start"))
    )
    end = _datetime(period.get("end")) or _datetime(validity.get("end"))
    if rt == "MedicationAdministration" and end is None:
        end = start  # an administration is a point in time
    return start, end


def _route(kb: Knowledge, dosage: dict, dose_form: str | None, form_text: str | None, text: str | None) -> str:
    """Route from the dosage route (text, displays, codes), else from the product's dose form."""
    route = _dict(dosage.get("route"))
    parts = [_str(route.get("text"))] + [_str(c.get("display")) or c["code"] for c in _codings(route)]
    for candidate in (" ".join(p for p in parts if p), dose_form, form_text, text):
        found = kb.route_for_text(candidate)
        if found is not None:
            return found
    return "unknown"


# --- service requests ------------------------------------------------------------------------------
def _service_request(res: dict, kb: Knowledge, *, is_draft: bool) -> OrderFact | None:
    status = _str(res.get("status")) or ("draft" if is_draft else "unknown")
    if status not in OPEN_ORDER and not (is_draft and status not in DRAFT_CLOSED):
        return None
    codings = _codings(res.get("code"))
    concepts: frozenset[str] = frozenset()
    shown: CodeRef | None = None
    for coding in codings:
        hit = kb.concepts_for(coding.get("system"), coding.get("code"))
        analyte = kb.lab_analyte(coding.get("system"), coding.get("code"))
        if analyte is not None:
            hit = hit | {analyte}
        if hit:
            concepts = concepts | hit
            shown = shown or _code_ref(coding)
    if not concepts:
        return None
    return OrderFact(concepts, _ref(res), status, shown, authored=_datetime(res.get("authoredOn")), is_draft=is_draft)
