"""R4 validation of the resources the rules use, and the same-patient check.

fhir.resources' R4B models are the closest to R4 4.0.1 that the library ships (its top-level package
is R5 and rejects real R4 data; tooling-notes 2.3). Full validation costs ~120 us a resource, so only
the resource types the rules read are validated; everything else in a prefetch Bundle is ignored
without being parsed into models.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.medication import Medication
from fhir.resources.R4B.medicationadministration import MedicationAdministration
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.medicationstatement import MedicationStatement
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.procedure import Procedure
from fhir.resources.R4B.servicerequest import ServiceRequest
from pydantic import ValidationError

from ..errors import InvalidFhirResource

MODELS = {
    model.__name__: model
    for model in (
        Condition,
        Medication,
        MedicationAdministration,
        MedicationRequest,
        MedicationStatement,
        Observation,
        Patient,
        Procedure,
        ServiceRequest,
    )
}
USED_RESOURCE_TYPES = frozenset(MODELS)


def _describe(resource: dict[str, Any]) -> str:
    """'Type/id' for messages; anything that is not a plain id is not echoed (it could hold PHI)."""
    rid = resource.get("id")
    rid = rid if isinstance(rid, str) and len(rid) <= 64 else "(no valid id)"
    rtype = resource.get("resourceType")
    return f"{rtype if isinstance(rtype, str) else 'Resource'}/{rid}"


def first_error(exc: ValidationError) -> str:
    """'field.path: message' for the first problem, without echoing the (possibly PHI) input value."""
    err = exc.errors(include_url=False, include_input=False)[0]
    path = ".".join(str(part) for part in err.get("loc", ()) if part != "__root__")
    return f"{path or '(resource)'}: {err.get('msg', 'invalid')}"


def validate_resources(resources: Iterable[dict[str, Any]]) -> None:
    """R4B-validate resources the rules may use (see fhir.relevance for which).

    An invalid one is a 400 naming it: advice built on a malformed result must not be given, and
    silently skipping it could hide the one B12 result that matters.
    """
    for resource in resources:
        try:
            MODELS[resource["resourceType"]].model_validate(resource)
        except ValidationError as exc:
            raise InvalidFhirResource(_describe(resource), first_error(exc)) from None


def _reference_id(reference: Any) -> str | None:
    if not isinstance(reference, dict):
        return None
    ref = reference.get("reference")
    if not isinstance(ref, str) or "Patient/" not in ref:
        return None
    return ref.rsplit("Patient/", 1)[1].split("/", 1)[0]


def check_same_patient(resources: Iterable[dict[str, Any]], patient_id: str) -> None:
    """Refuse data about another patient: advice built on the wrong chart is worse than none."""
    for resource in resources:
        if resource.get("resourceType") == "Patient":
            if resource.get("id") not in (None, patient_id):
                raise InvalidFhirResource(_describe(resource), "is not the patient in context.patientId")
            continue
        for field in ("subject", "patient"):
            ref_id = _reference_id(resource.get(field))
            if ref_id is not None and ref_id != patient_id:
                raise InvalidFhirResource(
                    f"{_describe(resource)}.{field}", "refers to a patient other than context.patientId"
                )
