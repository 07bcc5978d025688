"""FHIR R4 resources a card suggests: draft lab orders, draft prescriptions, urgent referrals.

Codes and wording come from the knowledge orderables only. An orderable whose code is unverified
(status U) or missing is sent as text only (the neurology referral: its SNOMED code is unverified),
because a U code never ships as active (clinical-reference status tags). Every resource is a
complete, valid R4 resource (checked against the fhir.resources R4B models in the tests) with no
empty values.
"""

from __future__ import annotations

from typing import Any

_CODED_STATUSES = frozenset({"V", "S"})


def codeable_concept(orderable: Any) -> dict[str, Any]:
    text = orderable.text or orderable.display
    concept: dict[str, Any] = {"text": text}
    if orderable.system and orderable.code and orderable.status in _CODED_STATUSES:
        coding = {"system": orderable.system, "code": orderable.code}
        if orderable.display:
            coding["display"] = orderable.display
        concept = {"coding": [coding], "text": text}
    return concept


def subject(patient_id: str) -> dict[str, str]:
    return {"reference": f"Patient/{patient_id}"}


def lab_order(orderable: Any, patient_id: str) -> dict[str, Any]:
    return {
        "resourceType": "ServiceRequest",
        "status": "draft",
        "intent": "order",
        "code": codeable_concept(orderable),
        "subject": subject(patient_id),
    }


def referral(orderable: Any, patient_id: str, priority: str) -> dict[str, Any]:
    return {
        "resourceType": "ServiceRequest",
        "status": "draft",
        "intent": "order",
        "priority": priority,
        "code": codeable_concept(orderable),
        "subject": subject(patient_id),
    }


def prescription(orderable: Any, patient_id: str) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "status": "draft",
        "intent": "order",
        "medicationCodeableConcept": codeable_concept(orderable),
        "subject": subject(patient_id),
    }
    if orderable.dosage_text:
        resource["dosageInstruction"] = [{"text": orderable.dosage_text}]
    return resource


def resource_for(orderable: Any, patient_id: str, referral_priority: str) -> dict[str, Any]:
    if orderable.kind == "medication":
        return prescription(orderable, patient_id)
    if orderable.kind == "referral":
        return referral(orderable, patient_id, referral_priority)
    return lab_order(orderable, patient_id)
