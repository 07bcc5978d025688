"""The read pass: each resource of a used type, once, into its typed form; failures set aside, named.

One pass from the decoded request JSON to the forms the normaliser maps onto facts (`fhir.forms`).
First its codes are looked up (`fhir.relevance`, a few dict lookups): a resource whose codes map to
nothing the rules read is skipped there, never built into a form (most of a real chart). The rest
are read once, strictly. Fault isolation is per resource: one whose read fields are unusable (a
missing required `status`, a date that is not a FHIR dateTime, a status outside its value set) is
left out and returned as a `ReadFailure` carrying what its codes say it could have been; the cards
name it. It is never a reason to refuse the whole request. Failure descriptions hold the field path
and a fixed reason, never the value (it may be PHI).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from ..knowledge import Knowledge
from .forms import DRAFT_FORMS, FORMS, INSTANT_RE, Medication, Resource
from .ids import describe_ref
from .relevance import input_concepts, lookup_memo, medication_index
from .screen import unread_defects
from .validation import check_patient

log = logging.getLogger("cds_service.fhir")

_AT = re.compile(r" - at `\$\.?(?P<path>[^`]*)`$")
_MISSING = re.compile(r"missing required field `(?P<name>[^`]+)`")
_BOUND = re.compile(r"^(?P<name>\w+): code not in the required value set$")
_INSTANT = re.compile(INSTANT_RE)
# the fields each form declares (validated by the typed read); the screen looks only at the others
_READ_FIELDS: dict[type, frozenset[str]] = {
    form: frozenset(form.__struct_fields__) for form in (*FORMS.values(), *DRAFT_FORMS.values())
}


@dataclass(frozen=True)
class ReadFailure:
    """A resource of a used type that could not be read, described without any of its values."""

    ref: str  # "Observation/abc" ("(no valid id)" when the id itself is unusable)
    resource_type: str
    field: str  # path of the first unusable read field, e.g. "status", "valueQuantity.value"
    reason: str  # e.g. "missing", "not a valid FHIR value", "not in the required value set"
    concepts: frozenset[str]  # what its codes map to (lab analytes, classes): what it could have been
    is_draft: bool = False


@dataclass
class ReadResult:
    resources: list[Resource] = field(default_factory=list)  # read, deduplicated by type/id
    drafts: list[Resource] = field(default_factory=list)
    failures: list[ReadFailure] = field(default_factory=list)  # could have mattered: cards name them
    skipped: int = 0  # codes map to nothing the rules read: never built into a form
    # (type, field) defects in fields the service does not need (fhir.screen, and an unusable `issued`):
    # counted and logged, the resource is still read
    tolerated: list[tuple[str, str]] = field(default_factory=list)


def failure_location(exc: msgspec.ValidationError) -> tuple[str, str]:
    """(field path, reason) from a msgspec error, dropping any echoed value (an enum value, say)."""
    message = str(exc)
    at = _AT.search(message)
    path = at.group("path") if at else ""
    head = message[: at.start()] if at else message
    if missing := _MISSING.search(head):
        return (f"{path}.{missing.group('name')}" if path else missing.group("name")), "missing"
    if bound := _BOUND.match(head):
        return (f"{path}.{bound.group('name')}" if path else bound.group("name")), "not in the required value set"
    if head.startswith("Invalid enum value"):
        return path or "(resource)", "not in the required value set"
    if "matching regex" in head:
        return path or "(resource)", "not a valid FHIR value of its type"
    if head.startswith("Expected"):
        return path or "(resource)", head.split(" matching", 1)[0].replace("`", "")
    return path or "(resource)", "not readable"


def read_resources(
    resources: Iterable[dict[str, Any]], kb: Knowledge, draft_orders: Sequence[dict[str, Any]] = (),
    patient_id: str | None = None,
) -> ReadResult:
    """Read every resource of a used type once; set aside (and describe) those that cannot be read.

    With `patient_id`, each resource of a used type (and each draft) is first checked to be about that
    patient, readable or not: data about another patient refuses the request (InvalidFhirResource, 400).
    """
    result = ReadResult()
    raw = list(resources)
    medications = medication_index([*raw, *draft_orders])
    memo = lookup_memo(kb)
    seen: set[tuple[str, str]] = set()
    for resource in raw:
        rtype = resource.get("resourceType")
        form_type = FORMS.get(rtype) if isinstance(rtype, str) else None
        if form_type is None:
            continue  # a type no rule reads (Encounter, Provenance ...): never looked at
        if patient_id is not None:
            check_patient(resource, patient_id)
        rid = resource.get("id")
        if isinstance(rid, str):
            if (rtype, rid) in seen:
                continue  # prefetch and fetched data overlap: the first copy wins
            seen.add((rtype, rid))
        concepts = input_concepts(resource, kb, medications, memo)
        if concepts is None:
            result.skipped += 1
            continue
        form = _read_one(resource, form_type, concepts, result, is_draft=False)
        if form is not None:
            result.resources.append(form)
    for resource in draft_orders:
        if patient_id is not None:
            check_patient(resource, patient_id)
        rtype = resource.get("resourceType")
        form_type = DRAFT_FORMS.get(rtype) if isinstance(rtype, str) else None
        if form_type is None:
            continue
        # a draft under review is read whatever its codes: an order that cannot be read cannot be checked
        form = _read_one(resource, form_type, input_concepts(resource, kb, medications, memo), result,
                         is_draft=True)
        if form is not None:
            result.drafts.append(form)
    return result


def _read_one(
    resource: dict[str, Any], form_type: type[Resource], concepts: frozenset[str] | None, result: ReadResult,
    *, is_draft: bool,
) -> Resource | None:
    try:
        form = msgspec.convert(resource, form_type)
    except msgspec.ValidationError as exc:
        path, reason = failure_location(exc)
        rtype = str(resource["resourceType"])
        log.debug("resource not readable", extra={"fields": {"resource_type": rtype, "field": path}})
        result.failures.append(ReadFailure(describe_ref(resource), rtype, path, reason, concepts or frozenset(),
                                           is_draft))
        return None
    rtype = form.resourceType
    defects = unread_defects(resource, rtype, _READ_FIELDS[form_type])
    issued = getattr(form, "issued", None)
    if issued is not None and not _INSTANT.match(issued):
        defects.append("issued")
        form.issued = None  # type: ignore[attr-defined]
    for name in defects:
        result.tolerated.append((rtype, name))
        log.debug("defect in a field the rules do not need, ignored",
                  extra={"fields": {"resource_type": rtype, "field": name}})
    return form


def contained_medication(form: Any, target: str) -> Medication | None:
    """The contained Medication '#id' of a medication resource, read on demand; None if absent/unusable."""
    for item in form.contained:
        if isinstance(item, dict) and item.get("resourceType") == "Medication" and item.get("id") == target:
            try:
                return msgspec.convert(item, Medication)
            except msgspec.ValidationError:
                return None
    return None
