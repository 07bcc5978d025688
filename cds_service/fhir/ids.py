"""How a resource is named in messages, logs and cards: 'Type/id', never anything else from it."""

from __future__ import annotations

import re
from typing import Any

_FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")

# The resource types that carry a medication (its product in medication[x]): one definition for the
# read pass, the relevance look-up, the Medication-reference fetch and the unreadable-input table.
MEDICATION_RESOURCE_TYPES: frozenset[str] = frozenset(
    {"MedicationRequest", "MedicationStatement", "MedicationAdministration"}
)


def describe_ref(resource: dict[str, Any]) -> str:
    """'Type/id' for messages; an id that is not a plain FHIR id is not echoed (it could hold PHI)."""
    rid = resource.get("id")
    valid = isinstance(rid, str) and _FHIR_ID.fullmatch(rid)
    rtype = resource.get("resourceType")
    return f"{rtype if isinstance(rtype, str) else 'Resource'}/{rid if valid else '(no valid id)'}"
