"""Only resources whose codes the knowledge knows are read into their typed form and normalised."""

from __future__ import annotations

import pytest

from cds_service.fhir.relevance import is_relevant
from cds_service.knowledge import load_knowledge
from tests.support.fhir import b12_observation

KB = load_knowledge()


def med(concept=None, **extra) -> dict:
    resource = {"resourceType": "MedicationRequest", "id": "m1", "status": "active", "intent": "order", **extra}
    if concept is not None:
        resource["medicationCodeableConcept"] = concept
    return resource


RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


@pytest.mark.parametrize(
    ("resource", "relevant"),
    [
        (b12_observation(150), True),
        (b12_observation(5.4, "mmol/L", code="2345-7"), False),  # glucose: no rule reads it
        ({"resourceType": "Observation", "code": {"coding": "not-a-list"}}, False),
        ({"resourceType": "Observation", "code": [1, 2]}, False),
        ({"resourceType": "Condition", "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm",
                                                            "code": "G32.0"}]}}, True),
        ({"resourceType": "Condition", "code": {"coding": [{"system": "http://snomed.info/sct",
                                                            "code": "38341003"}]}}, False),  # hypertension
        (med({"coding": [{"system": RXNORM, "code": "4511"}]}), True),  # folic acid
        (med({"coding": [{"system": RXNORM, "code": "17767"}]}), False),  # amlodipine
        (med({"text": "Folic acid 5 mg tablets"}), True),  # name match (flagged later)
        (med(medicationReference={"reference": "Medication/x"}), True),
        (med(), False),
        ({"resourceType": "Patient", "id": "p1"}, True),
        ({"resourceType": "Encounter", "id": "e1"}, False),
    ],
)
def test_relevance(resource, relevant):
    assert is_relevant(resource, KB) is relevant
