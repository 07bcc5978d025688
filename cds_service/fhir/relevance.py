"""Which prefetched resources can matter to the rules: a cheap, crash-proof look at their codes.

Full R4B validation costs ~100-150 us a resource (tooling-notes 2.4) and a real chart is mostly
resources no rule reads (other lab codes, unrelated problems and drugs). So the codes are looked up
in the knowledge tables first, defensively (the resource is not validated yet), and only resources
that could produce a fact are validated and normalised. A resource whose codes cannot be read at all
cannot produce a fact either, so skipping it loses nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..knowledge import Knowledge

ALWAYS = frozenset({"Patient", "Medication"})  # demographics; products referenced by medication orders
BY_CODE = frozenset({"Observation", "Condition", "Procedure", "ServiceRequest"})
MEDICATIONS = frozenset({"MedicationRequest", "MedicationStatement", "MedicationAdministration"})


def _codings(concept: Any) -> Iterable[tuple[Any, Any, Any]]:
    if not isinstance(concept, dict):
        return ()
    codings = concept.get("coding")
    if not isinstance(codings, list):
        return ()
    return [(c.get("system"), c.get("code"), c.get("display")) for c in codings if isinstance(c, dict)]


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _code_matches(kb: Knowledge, concept: Any) -> bool:
    for system, code, _ in _codings(concept):
        if isinstance(system, str) and isinstance(code, str):
            if kb.lab_analyte(system, code) is not None or kb.concepts_for(system, code):
                return True
    return False


def _medication_matches(kb: Knowledge, resource: dict[str, Any]) -> bool:
    if isinstance(resource.get("medicationReference"), dict):
        return True  # the product is elsewhere (contained or a Medication resource): let the normaliser look
    concept = resource.get("medicationCodeableConcept")
    if _code_matches(kb, concept):
        return True
    names = [_str(concept.get("text")) if isinstance(concept, dict) else None]
    names += [_str(display) for _, _, display in _codings(concept)]
    return any(kb.medication_classes_for_text(name) for name in names if name)


def is_relevant(resource: dict[str, Any], kb: Knowledge) -> bool:
    resource_type = resource.get("resourceType")
    if resource_type in ALWAYS:
        return True
    if resource_type in BY_CODE:
        # a symptom recorded as an Observation carries the finding in its coded value
        return _code_matches(kb, resource.get("code")) or (
            resource_type == "Observation" and _code_matches(kb, resource.get("valueCodeableConcept"))
        )
    if resource_type in MEDICATIONS:
        return _medication_matches(kb, resource)
    return False


def relevant_resources(resources: Iterable[dict[str, Any]], kb: Knowledge) -> list[dict[str, Any]]:
    return [r for r in resources if is_relevant(r, kb)]
