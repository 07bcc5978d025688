"""The same-patient check: the one data problem that still refuses a request (400).

Everything else wrong with a resource is handled per resource by the read pass (`fhir.reader`: left
out and named) or reported by the full R4 check off the hot path (`fhir.conformance`). Data about
another patient is different: advice built on the wrong chart is worse than none, and the request
itself is then wrong, so it is refused whatever else the resource holds.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..errors import InvalidFhirResource
from .ids import describe_ref


def _reference_id(reference: Any) -> str | None:
    if not isinstance(reference, dict):
        return None
    ref = reference.get("reference")
    if not isinstance(ref, str) or "Patient/" not in ref:
        return None
    return ref.rsplit("Patient/", 1)[1].split("/", 1)[0]


def check_patient(resource: dict[str, Any], patient_id: str) -> None:
    """Refuse data about another patient: advice built on the wrong chart is worse than none."""
    if resource.get("resourceType") == "Patient":
        if resource.get("id") not in (None, patient_id):
            raise InvalidFhirResource(describe_ref(resource), "is not the patient in context.patientId")
        return
    for field in ("subject", "patient"):
        ref_id = _reference_id(resource.get(field))
        if ref_id is not None and ref_id != patient_id:
            raise InvalidFhirResource(
                f"{describe_ref(resource)}.{field}", "refers to a patient other than context.patientId"
            )


def check_same_patient(resources: Iterable[dict[str, Any]], patient_id: str) -> None:
    """`check_patient` over several resources (the read pass checks each as it reads it)."""
    for resource in resources:
        check_patient(resource, patient_id)
