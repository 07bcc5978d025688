"""A FHIR Bundle (one patient's data) -> the CDS Hooks request a conforming EHR would send.

The same logic as `fixtures/build_requests.py` (which the clinical fixtures are generated with; a
test checks both give identical requests for every scenario), but driven by the service definitions
the app actually loaded (CDS_HOOKS_DIR) and raising 400s instead of ValueErrors, because here the
Bundle is pasted by a person. The prefetch is what running each prefetch template against a FHIR
server holding the Bundle would return: `patient` is the Patient (or null), each search key is a
searchset Bundle (`total`, `search.mode = match`), filtered by the template's `patient`, `code` and
`status` parameters and sorted by `_sort=-date`; no hits is an empty searchset, never a missing key.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl

from ..errors import BadRequest
from ..fhir.fetch import render_template
from ..fhir.prefetch import FetchUnavailable
from ..protocol.services import ServiceDefinition

FHIR_BASE = "https://fhir.b12-neuro-cds.example.org/R4"  # fixtures/fhir_builders.py FHIR_BASE
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://b12-neuro-cds.example.org/fixtures")
USER_ID = "Practitioner/example"
ORDER_HOOKS = ("order-select", "order-sign")
ORDER_TYPES = frozenset({"MedicationRequest", "ServiceRequest", "NutritionOrder", "DeviceRequest",
                         "VisionPrescription", "CommunicationRequest"})


def bundle_resources(bundle: Any) -> list[dict[str, Any]]:
    """The resources of a pasted Bundle, each with an id; references to the Patient made relative.

    Like a FHIR server loading a transaction: a resource without `id` but with a `urn:uuid:` fullUrl
    gets that uuid as id, and references to the Patient's fullUrl become `Patient/{id}`.
    """
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise BadRequest("expected a FHIR Bundle (resourceType 'Bundle') holding one patient's resources",
                         ("bundle",))
    entries = bundle.get("entry")
    if not isinstance(entries, list) or not entries:
        raise BadRequest("the Bundle has no entries", ("bundle.entry",))
    resources: list[dict[str, Any]] = []
    full_urls: dict[int, str] = {}
    for index, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            raise BadRequest(f"Bundle.entry[{index}] has no resource", (f"bundle.entry[{index}]",))
        resource = copy.deepcopy(resource)
        full_url = entry.get("fullUrl") if isinstance(entry.get("fullUrl"), str) else ""
        if not isinstance(resource.get("id"), str) or not resource["id"]:
            if not full_url.startswith("urn:uuid:"):
                raise BadRequest(f"Bundle.entry[{index}].resource has no id (and no urn:uuid fullUrl)",
                                 (f"bundle.entry[{index}].resource.id",))
            resource["id"] = full_url.removeprefix("urn:uuid:")
        full_urls[len(resources)] = full_url
        resources.append(resource)
    patients = [i for i, r in enumerate(resources) if r["resourceType"] == "Patient"]
    if len(patients) != 1:
        raise BadRequest(f"the Bundle must hold exactly one Patient (found {len(patients)})", ("bundle.entry",))
    patient = resources[patients[0]]
    aliases = {a for a in (full_urls[patients[0]], f"{FHIR_BASE}/Patient/{patient['id']}") if a}
    for resource in resources:
        for field in ("subject", "patient"):
            ref = resource.get(field)
            if isinstance(ref, dict) and ref.get("reference") in aliases:
                ref["reference"] = f"Patient/{patient['id']}"
    return resources


def split_draft_orders(resources: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(chart, draft orders): order resources with status 'draft' are what is being ordered now."""
    chart: list[dict[str, Any]] = []
    drafts: list[dict[str, Any]] = []
    for resource in resources:
        is_draft = resource["resourceType"] in ORDER_TYPES and resource.get("status") == "draft"
        (drafts if is_draft else chart).append(resource)
    return chart, drafts


def patient_id_of(resources: Sequence[Mapping[str, Any]]) -> str:
    patients = [r for r in resources if r.get("resourceType") == "Patient"]
    if len(patients) != 1:
        raise BadRequest(f"the data must hold exactly one Patient (found {len(patients)})", ("bundle.entry",))
    return str(patients[0]["id"])


def build_request(resources: Sequence[Mapping[str, Any]], service: ServiceDefinition, *,
                  draft_orders: Sequence[Mapping[str, Any]] = (), selections: Sequence[str] | None = None,
                  user_id: str = USER_ID, hook_instance: str | None = None) -> dict[str, Any]:
    """A CDS Hooks request for `service` about the resources' patient, prefetch filled from them.

    For order hooks `draft_orders` become `context.draftOrders` (Bundle, type collection);
    order-select also gets `selections` (default: every draft order). `hook_instance` defaults to
    the fixtures' deterministic uuid5 of patient id + hook.
    """
    hook = service.hook
    patient_id = patient_id_of(resources)
    context: dict[str, Any] = {"userId": user_id, "patientId": patient_id}
    if hook in ORDER_HOOKS:
        if not draft_orders:
            raise BadRequest(f"{hook} needs at least one draft order (an order resource with status 'draft')",
                             ("draftOrders",))
        for index, order in enumerate(draft_orders):
            if not isinstance(order, Mapping) or not isinstance(order.get("resourceType"), str) or not order.get("id"):
                raise BadRequest(f"draftOrders[{index}] must be a FHIR resource with an id", (f"draftOrders[{index}]",))
        context["draftOrders"] = {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"fullUrl": full_url(r), "resource": dict(r)} for r in draft_orders],
        }
        if hook == "order-select":
            context["selections"] = list(selections) if selections is not None else [
                f"{r['resourceType']}/{r['id']}" for r in draft_orders]
    elif draft_orders:
        raise BadRequest(f"{hook} takes no draft orders", ("draftOrders",))

    prefetch: dict[str, Any] = {}
    for spec in service.prefetch:
        try:
            rendered = render_template(spec.template, context)
        except FetchUnavailable:
            continue  # an EHR skips templates it cannot fill (CDS Hooks: the key is then absent)
        prefetch[spec.key] = run_template(rendered, resources, patient_id,
                                          bundle_id=str(uuid.uuid5(NAMESPACE, f"{patient_id}.{hook}.{spec.key}")))
    return {
        "hook": hook,
        "hookInstance": hook_instance or str(uuid.uuid5(NAMESPACE, f"{patient_id}.{hook}")),
        "context": context,
        "prefetch": prefetch,
    }


def full_url(resource: Mapping[str, Any]) -> str:
    return f"{FHIR_BASE}/{resource['resourceType']}/{resource['id']}"


def run_template(query: str, resources: Sequence[Mapping[str, Any]], patient_id: str, *,
                 bundle_id: str) -> dict[str, Any] | None:
    """Evaluate one rendered prefetch template (a read or a restricted search) over the resources."""
    if "?" not in query:  # instance read, e.g. Patient/123
        resource_type, rid = query.split("/", 1)
        hits = [r for r in resources if r["resourceType"] == resource_type and r["id"] == rid]
        return dict(hits[0]) if hits else None

    resource_type, params = query.split("?", 1)
    hits = [r for r in resources if r["resourceType"] == resource_type]
    count: int | None = None
    sort: str | None = None
    for name, value in parse_qsl(params, keep_blank_values=True):
        if name == "patient":
            hits = [r for r in hits if _subject_reference(r) == f"Patient/{value}"]
        elif name == "code":
            tokens = [t.split("|", 1) if "|" in t else [None, t] for t in value.split(",")]
            hits = [r for r in hits if any(code == c and system in (None, s)
                                           for s, c in codings(r.get("code")) for system, code in tokens)]
        elif name == "status":
            hits = [r for r in hits if r.get("status") in value.split(",")]
        elif name == "_count":
            count = int(value)
        elif name == "_sort":
            sort = value
        else:
            raise BadRequest(f"the preview cannot simulate the prefetch parameter '{name}'; "
                             "paste a complete CDS Hooks request instead")
    if sort == "-date":
        hits.sort(key=lambda r: r.get("effectiveDateTime") or r.get("issued") or "", reverse=True)
    elif sort is not None:
        raise BadRequest(f"the preview cannot simulate _sort={sort}; paste a complete CDS Hooks request instead")
    if count is not None and len(hits) > count:
        raise BadRequest(f"{resource_type}: {len(hits)} matches exceed _count={count}; paging is not simulated")
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "id": bundle_id,
        "type": "searchset",
        "total": len(hits),
        "link": [{"relation": "self", "url": f"{FHIR_BASE}/{query}"}],
    }
    if hits:
        bundle["entry"] = [{"fullUrl": full_url(r), "resource": dict(r), "search": {"mode": "match"}}
                           for r in hits]
    return bundle


def codings(concept: Mapping[str, Any] | None) -> set[tuple[str, str]]:
    if not isinstance(concept, Mapping):
        return set()
    return {(c.get("system", ""), c.get("code", "")) for c in concept.get("coding", []) if isinstance(c, Mapping)}


def _subject_reference(resource: Mapping[str, Any]) -> Any:
    subject = resource.get("subject")
    return subject.get("reference") if isinstance(subject, Mapping) else None
