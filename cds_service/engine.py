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
from .clinical.normalize import record_from_read
from .clinical.record import PatientRecord, UnreadableResource
from .clinical.rules import B12_STATE_PRECEDENCE, degraded_families, evaluate_families
from .clinical.unreadable import withheld_families
from .errors import InvalidFhirResource, PreconditionFailed
from .fhir.medication_refs import (
    available_medication_ids,
    fetch_medications,
    missing_medication_ids,
    referenced_medication_id,
)
from .fhir.prefetch import Fetcher, gather_inputs
from .fhir.reader import ReadResult, read_resources
from .knowledge import Knowledge
from .protocol.request import HookRequest
from .protocol.response import validate_response
from .protocol.services import ServiceDefinition

Clock = Callable[[], datetime]
# Response extension naming the resources left out because they could not be read (also on cards).
UNREADABLE_EXTENSION = "org.b12-neuro-cds.unreadable-resources"


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ReadSummary:
    """Counts of the read pass, for metrics and logs (no values, no references)."""

    read: int = 0  # resources of a used type read into their typed form
    unreadable: int = 0  # set aside and named on the cards
    skipped: int = 0  # their codes map to nothing the rules read: never built into a form
    tolerated: tuple[tuple[str, str], ...] = ()  # (resource type, field) defects ignored
    withheld: tuple[str, ...] = ()  # families held back by an unreadable key input

    @classmethod
    def of(cls, read: ReadResult, withheld: tuple[str, ...]) -> ReadSummary:
        return cls(len(read.resources) + len(read.drafts), len(read.failures), read.skipped,
                   tuple(read.tolerated), withheld)


@dataclass(frozen=True)
class Evaluation:
    response: dict[str, Any]
    record: PatientRecord
    assessment: Assessment
    findings: list[Finding]  # after arbitration: what the cards were built from
    timings_ms: dict[str, float]
    suppressed: list[str] = field(default_factory=list)  # families of suppressed cards
    read: ReadSummary = field(default_factory=ReadSummary)


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
    drafts: list[dict[str, Any]], context: dict[str, Any], resources: list[dict[str, Any]],
    unreadable: tuple[UnreadableResource, ...] = (),
) -> list[str]:
    """Draft orders under review (the selections, or all for order-sign) that cannot be checked.

    Either the product is named by a Medication that could not be had, or the draft itself could not
    be read (its read fields are unusable).
    """
    selections = set(context.get("selections") or ())
    have = available_medication_ids(resources)
    broken = {u.ref for u in unreadable if u.is_draft}
    out = []
    for draft in drafts:
        ref = f"{draft.get('resourceType')}/{draft.get('id')}"
        mid = referenced_medication_id(draft)
        if (not selections or ref in selections) and (ref in broken or (mid is not None and mid not in have)):
            out.append(ref)
    return out


def unreadable_extension(unreadable: tuple[UnreadableResource, ...]) -> dict[str, Any]:
    """The response-level list of resources left out (reference, type, field path; never a value)."""
    return {UNREADABLE_EXTENSION: [
        {"reference": u.ref, "resourceType": u.resource_type,
         "keyInput": u.key_input, "field": u.field, "reason": u.reason}
        for u in unreadable
    ]}


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
        validate_responses: bool = True,
    ) -> None:
        self.kb = kb
        self.clock = clock
        self.max_prefetch_entries = max_prefetch_entries
        self.gate = gate  # None: no suppression and nothing recorded (e.g. the evaluate CLI)
        # The card builder is the only producer of responses: checking each one against the CDS Hooks
        # schema is for tests and debug runs (create_app decides), not for every production call.
        self.validate_responses = validate_responses

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
        unchecked = unreadable_subject_drafts(drafts, request.context, [*gathered.resources, *medications],
                                              evaluation.record.unreadable_resources)
        if unchecked and not evaluation.findings:
            # The order being signed names its product only by a Medication we could neither receive nor
            # read: an empty answer would read as "this order is safe", so say it could not be checked.
            raise PreconditionFailed(
                f"draft order(s) {', '.join(unchecked)} could not be checked: the order could not be read, or it "
                "names its product by a Medication reference that was not sent and could not be read from "
                "fhirServer; send a valid order with its Medication (contained, or medicationCodeableConcept)",
                ("draftOrders",),
            )
        if drafts and evaluation.read.withheld and not evaluation.findings:
            # A family that would have judged the order was held back because an input it reads could not
            # be read (a B12 result, a B12 product): as on the missing-data path, an empty answer to an
            # order hook would read as "this order is safe", so say the order could not be checked.
            named = ", ".join(u.describe() for u in evaluation.record.unreadable_resources)
            raise PreconditionFailed(
                f"the draft order(s) could not be checked: {named} could not be read and the check depends on it; "
                "correct the resource (b12-cds check names every problem) and send it again",
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
        drafts = draft_order_resources(context)
        t1 = time.perf_counter()
        # the one read pass: each resource of a used type checked to be about this patient (400 if not,
        # whatever else is wrong with it), then read into its typed form; unreadable ones set aside
        read = read_resources(resources, self.kb, drafts, patient_id=patient_id)
        now = self.clock()
        record = record_from_read(
            read,
            self.kb,
            patient_id=patient_id,
            as_of=now,
            selections=context.get("selections", ()),
            unavailable_inputs=unavailable,
        )
        wanted = families or service.families
        withheld = withheld_families(record, wanted)
        t2 = time.perf_counter()
        assessment = assess(record, self.kb, hook)  # once per request: every family reads it
        raw = evaluate_families(assessment, self.kb, tuple(f for f in wanted if f not in withheld))
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
        response: dict[str, Any] = {"cards": cards}
        if record.unreadable_resources:
            response["extension"] = unreadable_extension(record.unreadable_resources)
        if self.validate_responses:
            validate_response(response)
        t3 = time.perf_counter()
        if self.gate and decisions:
            uuids = {c["extension"][IDENTITY_EXTENSION]["identity"]: c["uuid"] for c in cards}
            self.gate.record(service_id=service.id, hook=hook, patient_id=patient_id, decisions=decisions,
                             card_uuids=uuids, now=now)
        timings = {
            "select_ms": (t1 - t0) * 1000,  # draft orders out of context
            "read_normalize_ms": (t2 - t1) * 1000,
            "rules_ms": (t3 - t2) * 1000,
            "store_ms": (time.perf_counter() - t3) * 1000,
        }
        suppressed = [d.item.finding.family for d in decisions or () if d.disposition == "suppressed"]
        return Evaluation(response, record, assessment, findings, timings, suppressed,
                          ReadSummary.of(read, withheld))
