"""Hand-built CDS Hooks requests and FHIR resources for tests that go through the service call."""

from __future__ import annotations

import uuid
from typing import Any

SEARCH_KEYS = ("labs", "conditions", "medicationRequests", "medicationStatements", "procedures", "serviceRequests")
OMIT = object()  # a prefetch key passed as OMIT is left out of the request
PHI_PROBE_ID = "Jane-Doe-1960-05-01"  # a service id a client could send: never a metric label


def empty_searchset() -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "searchset", "total": 0}


def searchset(*resources: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [
            {"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": r, "search": {"mode": "match"}} for r in resources
        ],
    }


def patient_view_request(patient_id: str = "p1", **prefetch_overrides: Any) -> dict[str, Any]:
    """A valid patient-view request with every prefetch key present (empty unless overridden)."""
    prefetch: dict[str, Any] = {"patient": {"resourceType": "Patient", "id": patient_id, "gender": "female",
                                            "birthDate": "1960-05-01"}}
    prefetch.update({key: empty_searchset() for key in SEARCH_KEYS})
    prefetch.update(prefetch_overrides)
    return {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/example", "patientId": patient_id},
        "prefetch": {k: v for k, v in prefetch.items() if v is not OMIT},
    }


def b12_observation(value: float, unit: str | None = "pg/mL", *, patient_id: str = "p1", oid: str = "b12-1",
                    date: str = "2026-09-15T09:00:00Z", code: str = "2132-9") -> dict[str, Any]:
    quantity: dict[str, Any] = {"value": value}
    if unit is not None:
        quantity.update({"unit": unit, "system": "http://unitsofmeasure.org", "code": unit})
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                  "code": "laboratory"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectiveDateTime": date,
        "valueQuantity": quantity,
    }


def deficient_b12(**kw: Any) -> dict[str, Any]:
    """A total B12 of 90 pmol/L ten days before the evaluation time: deficient by any unit's band."""
    return b12_observation(90, "pmol/L", code="14685-2", date="2026-10-22T09:00:00Z", **kw)
