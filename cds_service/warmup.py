"""Warm the evaluation path once in the gunicorn master, before workers fork.

A worker's first request otherwise pays ~120 ms: marshmallow compiles its URL regex on first use
and fhir_core imports model classes lazily on the first validation (docs/performance.md). Doing one
synthetic evaluation before fork lets every worker inherit the compiled and imported state, and
after each max_requests restart too. Nothing is recorded: the engine used here has no card gate.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .engine import Engine
from .knowledge import Knowledge
from .protocol.services import ServiceDefinition

_PATIENT = "warmup-patient"
_SUBJECT = {"reference": f"Patient/{_PATIENT}"}


def _sample(as_of: datetime) -> list[dict[str, Any]]:
    day = as_of.date().isoformat()
    return [
        {"resourceType": "Patient", "id": _PATIENT, "gender": "female", "birthDate": "1950-01-01"},
        {"resourceType": "Observation", "id": "warmup-b12", "status": "final", "subject": _SUBJECT,
         "code": {"coding": [{"system": "http://loinc.org", "code": "2132-9"}]}, "effectiveDateTime": day,
         "valueQuantity": {"value": 250, "unit": "pg/mL", "system": "http://unitsofmeasure.org", "code": "pg/mL"}},
        {"resourceType": "Condition", "id": "warmup-paraesthesia", "subject": _SUBJECT, "onsetDateTime": day,
         "code": {"coding": [{"system": "http://snomed.info/sct", "code": "91019004"}]}},
        {"resourceType": "MedicationRequest", "id": "warmup-folate", "status": "active", "intent": "order",
         "subject": _SUBJECT, "authoredOn": day,
         "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                                                   "code": "4511"}]}},
    ]


def warm_up(kb: Knowledge, engine: Engine, services: dict[str, ServiceDefinition]) -> int:
    """Evaluate the sample on every service; return the number of cards built (for the start-up log)."""
    quiet = Engine(kb, engine.clock)
    cards = 0
    for service in services.values():
        context = {"draftOrders": {"resourceType": "Bundle", "entry": []}} if service.hook != "patient-view" else {}
        evaluation = quiet.evaluate_resources(service, patient_id=_PATIENT, hook=service.hook,
                                              resources=_sample(engine.clock()), context=context)
        cards += len(evaluation.response["cards"])
    return cards
