"""The evaluation pipeline: request -> FHIR data -> PatientRecord -> assessment -> findings -> arbitration
-> cards.

Shared by the HTTP layer and the `evaluate` CLI command so both give identical answers. Holds no
Flask and no clinical logic of its own: it only wires the layers in the order conventions.md fixes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from .card_gate import CardGate, IdentifiedFinding, identify
from .cards.builder import build_card
from .cards.identity import IDENTITY_EXTENSION, identity_extension
from .clinical.arbitration import arbitrate
from .clinical.assessment import Assessment, assess
from .clinical.findings import Finding
from .clinical.normalize import build_patient_record
from .clinical.record import PatientRecord
from .clinical.rules import B12_STATE_PRECEDENCE, degraded_families, evaluate_families
from .errors import InvalidFhirResource, PreconditionFailed
from .fhir.medication_refs import (
    available_medication_ids,
    fetch_medications,
    missing_medication_ids,
    referenced_medication_id,
)
from .fhir.prefetch import Fetcher, gather_inputs
from .fhir.relevance import relevant_resources
from .fhir.validation import check_same_patient, validate_resources
from .knowledge import Knowledge
from .protocol.request import HookRequest
from .protocol.response import validate_response
from .protocol.services import ServiceDefinition

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Evaluation:
    response: dict[str, Any]
    record: PatientRecord
    assessment: Assessment
    findings: list[Finding]  # after arbitration: what the cards were built from
    timings_ms: dict[str, float]
    suppressed: list[str] = field(default_factory=list)  # families of suppressed cards


def draft_order_resources(context: dict[str, Any]) -> list[dict[str, Any]]:
    """Entries of context.draftOrders, read leniently: real clients omit Bundle.type (docs#517)."""
    bundle = context.get("draftOrders")
    if bundle is None:
        return []
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise InvalidFhirResource("context.draftOrders", "must be a FHIR Bundle")
    entries = bundle.get("entry", [])
    if not isinstance(entries, list):
        raise InvalidFhirResource("context.draftOrders.entry", "must be an array")
    resources = []
    for index, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            raise InvalidFhirResource(f"context.draftOrders.entry[{index}]", "entry has no resource")
        resources.append(resource)
    selections = context.get("selections") or ()
    drafted = {f"{r['resourceType']}/{r.get('id')}" for r in resources}
    unknown = [s for s in selections if s not in drafted]
    if unknown:
        # advice about "the selected orders" is meaningless if they are not in draftOrders
        raise InvalidFhirResource("context.selections", f"{', '.join(unknown)} not found in context.draftOrders")
    return resources


def unreadable_subject_drafts(
    drafts: list[dict[str, Any]], context: dict[str, Any], resources: list[dict[str, Any]]
) -> list[str]:
    """Draft orders under review (the selections, or all for order-sign) whose product cannot be read."""
    selections = set(context.get("selections") or ())
    have = available_medication_ids(resources)
    out = []
    for draft in drafts:
        ref = f"{draft.get('resourceType')}/{draft.get('id')}"
        mid = referenced_medication_id(draft)
        if (not selections or ref in selections) and mid is not None and mid not in have:
            out.append(ref)
    return out


def rearbitrate_after_suppression(
    raw: list[Finding], items: list[IdentifiedFinding], shown: list[IdentifiedFinding]
) -> list[IdentifiedFinding]:
    """Drug cards shown without the B12-state card they deferred to get their own B12 orders back.

    Arbitration moves B12 orders from a drug card to the B12-state card (4.6 D1). If suppression then
    hides that B12-state card (overridden recently), the drug card would point to a card that is not
    there: it is arbitrated again without the hidden card. Identities do not change (arbitration
    never changes a drug card's evidence).
    """
    state = set(B12_STATE_PRECEDENCE)
    hidden = {i.finding.family for i in items if i not in shown}
    if not hidden & state or any(i.finding.family in state for i in shown):
        return shown
    # the hidden card carried every B12-state finding folded into it: none of them is shown now
    again = {f.family: f for f in arbitrate([f for f in raw if f.family not in state | hidden])}
    return [replace(i, finding=again.get(i.finding.family, i.finding)) for i in shown]


class Engine:
    """Evaluates service requests with the knowledge loaded once at start-up."""

    def __init__(
        self,
        kb: Knowledge,
        clock: Clock = system_clock,
        max_prefetch_entries: int = 20_000,
        gate: CardGate | None = None,
    ) -> None:
        self.kb = kb
        self.clock = clock
        self.max_prefetch_entries = max_prefetch_entries
        self.gate = gate  # None: no suppression and nothing recorded (e.g. the evaluate CLI)

    def evaluate(
        self, service: ServiceDefinition, request: HookRequest, fetcher: Fetcher | None = None,
        base_url: str | None = None,
    ) -> Evaluation:
        """Evaluate a validated CDS Hooks request: gather (prefetch, else fetch), then rules.

        If required data could not be had, only the families that answer when degraded (data in the
        rule registry: urgent-neuro-review) run on what is there; their cards (which name the
        unavailable inputs) are returned, and with no such finding the answer is 412.
        """
        t0 = time.perf_counter()
        gathered = gather_inputs(service.prefetch, request.prefetch, fetcher, self.max_prefetch_entries)
        degraded = gathered.missing_required is not None
        partial_families = degraded_families(service.families)
        if degraded and not partial_families:
            gathered.require_complete()
        drafts = draft_order_resources(request.context)
        medications = fetch_medications(missing_medication_ids([*gathered.resources, *drafts]), fetcher)
        gather_ms = (time.perf_counter() - t0) * 1000
        evaluation = self.evaluate_resources(
            service,
            patient_id=request.patient_id,
            hook=request.hook,
            resources=[*gathered.resources, *medications],
            context=request.context,
            unavailable=gathered.unavailable,
            families=partial_families if degraded else None,
            base_url=base_url,
        )
        if degraded and not evaluation.findings:
            # Nothing urgent from the partial data: the EHR must learn the data was unobtainable (412),
            # not read an empty card list as "no concern".
            gathered.require_complete()
        unchecked = unreadable_subject_drafts(drafts, request.context, [*gathered.resources, *medications])
        if unchecked and not evaluation.findings:
            # The order being signed names its product only by a Medication we could neither receive nor
            # read: an empty answer would read as "this order is safe", so say it could not be checked.
            raise PreconditionFailed(
                f"draft order(s) {', '.join(unchecked)} name their product by a Medication reference that was "
                "not sent and could not be read from fhirServer; send the Medication (contained, or "
                "medicationCodeableConcept) so the order can be checked",
                ("draftOrders",),
            )
        evaluation.timings_ms["gather_ms"] = gather_ms
        return evaluation

    def evaluate_resources(
        self,
        service: ServiceDefinition,
        *,
        patient_id: str,
        hook: str,
        resources: list[dict[str, Any]],
        context: dict[str, Any],
        unavailable: tuple[str, ...] = (),
        families: tuple[str, ...] | None = None,
        base_url: str | None = None,
    ) -> Evaluation:
        """Evaluate FHIR resources already gathered (also used by the `evaluate` CLI on Bundles).

        `base_url` is the service's public base URL, for the cards' links to /explain (cards/builder.py).
        """
        t0 = time.perf_counter()
        relevant = relevant_resources(resources, self.kb)  # a few dict lookups each, nothing validated yet
        drafts = draft_order_resources(context)
        check_same_patient(relevant, patient_id)
        check_same_patient(drafts, patient_id)
        t1 = time.perf_counter()
        validate_resources(relevant)
        now = self.clock()
        record = build_patient_record(
            relevant,
            self.kb,
            patient_id=patient_id,
            as_of=now,
            draft_orders=drafts,
            selections=context.get("selections", ()),
            unavailable_inputs=unavailable,
        )
        t2 = time.perf_counter()
        assessment = assess(record, self.kb, hook)  # once per request: every family reads it
        raw = evaluate_families(assessment, self.kb, families or service.families)
        findings = arbitrate(raw)
        items = sorted(identify(findings, patient_id), key=lambda i: -i.finding.indicator.rank)
        decisions = self.gate.decide(service.id, items, now) if self.gate else None
        shown = [d.item for d in decisions if d.disposition == "shown"] if decisions is not None else items
        shown = rearbitrate_after_suppression(raw, items, shown)
        cards = []
        for item in shown:
            card = build_card(item.finding, self.kb, hook=hook, patient_id=patient_id, base_url=base_url)
            card["extension"] = identity_extension(item.identity, item.evidence_hash, item.finding)
            cards.append(card)
        response = {"cards": cards}
        validate_response(response)
        t3 = time.perf_counter()
        if self.gate and decisions:
            uuids = {c["extension"][IDENTITY_EXTENSION]["identity"]: c["uuid"] for c in cards}
            self.gate.record(service_id=service.id, hook=hook, patient_id=patient_id, decisions=decisions,
                             card_uuids=uuids, now=now)
        timings = {
            "select_ms": (t1 - t0) * 1000,
            "validate_normalize_ms": (t2 - t1) * 1000,
            "rules_ms": (t3 - t2) * 1000,
            "store_ms": (time.perf_counter() - t3) * 1000,
        }
        suppressed = [d.item.finding.family for d in decisions or () if d.disposition == "suppressed"]
        return Evaluation(response, record, assessment, findings, timings, suppressed)
