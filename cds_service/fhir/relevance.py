"""Can a resource matter to the rules? A crash-proof look at its codes in the raw JSON.

The read pass (`fhir.reader`) asks this first, of every resource of a used type: a real chart is
mostly resources no rule reads (other lab codes, unrelated problems and drugs), and building a
typed form of those would be wasted work. The codes are looked up defensively (nothing is trusted
yet) in the knowledge tables: a code that maps to a lab analyte or a concept makes the resource a
possible input, and only then is it read into its typed form. The same answer says, for a resource
that then cannot be read, what it could have been (a B12 result, a B12 product) so the cards can
name it. Codes that map to nothing (or cannot be read at all) mean it could not have produced a
fact, so leaving it out loses nothing.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from typing import Any

from ..knowledge import Knowledge
from .ids import MEDICATION_RESOURCE_TYPES

# Per knowledge object, the concepts of each (system, code) and each medication name already looked
# up: a chart repeats the same few codes, and this runs for every resource of a used type. Bounded so
# a stream of distinct codes cannot grow it without limit.
_MEMO: weakref.WeakKeyDictionary[Knowledge, dict[Any, frozenset[str]]] = weakref.WeakKeyDictionary()
_MEMO_MAX = 8192

BY_CODE = frozenset({"Observation", "Condition", "Procedure", "ServiceRequest"})


def _codings(concept: Any) -> Iterable[tuple[Any, Any, Any]]:
    if not isinstance(concept, dict):
        return ()
    codings = concept.get("coding")
    if not isinstance(codings, list):
        return ()
    return [(c.get("system"), c.get("code"), c.get("display")) for c in codings if isinstance(c, dict)]


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


Memo = dict[Any, frozenset[str]]


def lookup_memo(kb: Knowledge) -> Memo:
    """The lookup memo of this knowledge object (take it once per request and pass it on)."""
    memo = _MEMO.get(kb)
    if memo is None or len(memo) > _MEMO_MAX:
        memo = _MEMO[kb] = {}
    return memo


def _code(kb: Knowledge, memo: Memo, system: str, code: str) -> frozenset[str]:
    key = (system, code)
    found = memo.get(key)
    if found is None:
        code = code.strip()
        analyte = kb.lab_analyte(system, code)
        found = memo[key] = kb.concepts_for(system, code) | ({analyte} if analyte else frozenset())
    return found


def _named(kb: Knowledge, memo: Memo, text: str) -> frozenset[str]:
    found = memo.get(text)
    if found is None:
        found = memo[text] = kb.medication_classes_for_text(text)
    return found


def code_concepts(kb: Knowledge, concept: Any, memo: Memo | None = None) -> frozenset[str]:
    """Lab analytes and concepts the codings of a CodeableConcept map to (empty if none or unreadable).

    Written for the common case (this runs for every resource of a used type): one memo lookup per
    coding, no intermediate lists.
    """
    codings = concept.get("coding") if isinstance(concept, dict) else None
    if not isinstance(codings, list):
        return frozenset()
    memo = lookup_memo(kb) if memo is None else memo
    found: frozenset[str] = frozenset()
    for coding in codings:
        if not isinstance(coding, dict):
            continue
        system, code = coding.get("system"), coding.get("code")
        if isinstance(system, str) and isinstance(code, str):
            hit = memo.get((system, code))
            found = found | (hit if hit is not None else _code(kb, memo, system, code))
    return found


def medication_index(resources: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Medication resources by id (the products medicationReference may point to)."""
    return {r["id"]: r for r in resources if r.get("resourceType") == "Medication" and isinstance(r.get("id"), str)}


def _product_concept(resource: dict[str, Any], medications: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """medication[x] as a CodeableConcept, following a contained or sent Medication if referenced."""
    concept = resource.get("medicationCodeableConcept")
    if isinstance(concept, dict):
        return concept
    reference = resource.get("medicationReference")
    target = reference.get("reference") if isinstance(reference, dict) else None
    if not isinstance(target, str):
        return None
    item: Any = None
    if target.startswith("#"):
        contained = resource.get("contained")
        item = next((c for c in contained if isinstance(c, dict) and c.get("resourceType") == "Medication"
                     and c.get("id") == target[1:]), None) if isinstance(contained, list) else None
    elif "Medication/" in target:
        item = medications.get(target.rsplit("Medication/", 1)[1].split("/")[0])
    code = item.get("code") if isinstance(item, dict) else None
    return code if isinstance(code, dict) else None


def _medication_concepts(
    kb: Knowledge, resource: dict[str, Any], medications: dict[str, dict[str, Any]], memo: Memo
) -> frozenset[str] | None:
    concept = _product_concept(resource, medications)
    if concept is None:
        # the product is named elsewhere (a Medication not sent) or not at all: it could be anything
        return frozenset() if isinstance(resource.get("medicationReference"), dict) else None
    return _product_classes(kb, concept, memo) or None


def _product_classes(kb: Knowledge, concept: Any, memo: Memo) -> frozenset[str]:
    """Classes a product concept maps to, by code and by the names in its text and displays."""
    if not isinstance(concept, dict):
        return frozenset()
    found = code_concepts(kb, concept, memo)
    names = [_str(concept.get("text"))] + [_str(display) for _, _, display in _codings(concept)]
    for name in names:
        if name:
            found = found | _named(kb, memo, name)
    return found


def input_concepts(
    resource: dict[str, Any], kb: Knowledge, medications: dict[str, dict[str, Any]] | None = None,
    memo: Memo | None = None,
) -> frozenset[str] | None:
    """What a resource could have been an input for: its concepts; None if it could not have mattered.

    An empty set means "something the rules read, but not which" (a Patient, a Medication, a
    medication order whose product is named only by a reference that was not sent).
    """
    resource_type = resource.get("resourceType")
    if resource_type == "Patient":
        return frozenset()
    memo = lookup_memo(kb) if memo is None else memo
    if resource_type == "Medication":
        # always read (orders may reference it); its own codes say what product it could have been
        return _product_classes(kb, resource.get("code"), memo)
    if resource_type in BY_CODE:
        # a symptom recorded as an Observation carries the finding in its coded value
        found = code_concepts(kb, resource.get("code"), memo)
        if resource_type == "Observation" and "valueCodeableConcept" in resource:
            found = found | code_concepts(kb, resource["valueCodeableConcept"], memo)
        return found or None
    if resource_type in MEDICATION_RESOURCE_TYPES:
        return _medication_concepts(kb, resource, medications or {}, memo)
    return None


def is_relevant(resource: dict[str, Any], kb: Knowledge) -> bool:
    """True when the resource's codes could produce a fact (kept for callers outside the read pass)."""
    return input_concepts(resource, kb) is not None
