"""Medications named by reference: find the Medication resources a request lacks, and fetch them.

Many EHRs write MedicationRequest.medicationReference ("Medication/123") instead of a code, and the
CDS Hooks 2.0 prefetch subset cannot template a read of it. Without the Medication the product is
unknown and a folate order cannot be checked, so when the service may query fhirServer it reads the
missing ones (same allowlist, budget and breaker as every fetch); otherwise the cards name them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..protocol.services import PrefetchSpec
from .ids import MEDICATION_RESOURCE_TYPES
from .prefetch import Fetched, Fetcher

MAX_MEDICATION_READS = 20


def referenced_medication_id(resource: dict[str, Any]) -> str | None:
    """The id in medicationReference 'Medication/<id>' (None for codes, contained '#x' or nothing)."""
    if resource.get("resourceType") not in MEDICATION_RESOURCE_TYPES or "medicationCodeableConcept" in resource:
        return None
    reference = resource.get("medicationReference")
    target = reference.get("reference") if isinstance(reference, dict) else None
    if not isinstance(target, str) or "Medication/" not in target:
        return None
    mid = target.rsplit("Medication/", 1)[1].split("/")[0]
    return mid if mid and len(mid) <= 64 else None


def available_medication_ids(resources: Iterable[dict[str, Any]]) -> set[str]:
    """Ids of the Medication resources at hand (a Medication without a string id can match no reference)."""
    return {mid for r in resources if r.get("resourceType") == "Medication" and isinstance(mid := r.get("id"), str)}


def missing_medication_ids(resources: Iterable[dict[str, Any]]) -> list[str]:
    """Ids of Medication resources referenced but neither sent nor contained."""
    resources = list(resources)
    have = available_medication_ids(resources)
    wanted: list[str] = []
    for resource in resources:
        mid = referenced_medication_id(resource)
        if mid and mid not in have and mid not in wanted:
            wanted.append(mid)
    return wanted[:MAX_MEDICATION_READS]


def fetch_medications(ids: list[str], fetcher: Fetcher | None) -> list[dict[str, Any]]:
    """Read the missing Medications; what cannot be read stays missing (and is named on the cards)."""
    if not ids or fetcher is None:
        return []
    specs = [PrefetchSpec(f"medication-{mid}", f"Medication/{mid}", False, "referenced product") for mid in ids]
    results = fetcher(specs)
    return [r for spec in specs if isinstance(got := results.get(spec.key), Fetched) for r in got.resources
            if r.get("resourceType") == "Medication"]
