"""Findings -> CDS Hooks 2.0 cards.

One card per finding, most urgent first (arbitration has already made it one card per problem). The
card follows the card anatomy of conventions.md: a summary, a detail of why and what to do with a
four-column evidence table and what to check (cards/markdown.py), suggestions that create complete
draft FHIR resources, the family's override reasons, and links to the guidelines. The spec's
JSON rule (no null, "", [] or {}) is enforced by pruning every card before it leaves.

Every card links to its family's explanation page (`/explain/<family>`, api/explain.py) and its
`source.url` is always absolute (that page when the family's source has no web address): clients
render a missing url as a link to "#". The base URL comes from the HTTP layer (CDS_PUBLIC_BASE_URL
or the request's own), so no Flask here. Unit codes in the texts are written as people write them
(cards/units.py). Suggestions only create, never delete.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any, overload

from ..clinical.findings import Finding, ProposedAction
from ..clinical.rules.common import sentence_case
from ..knowledge.wording import FamilyWording, Wording
from .markdown import is_web_url, render_detail
from .resources import resource_for
from .units import with_display_units

# For callers with no HTTP request (the evaluate CLI, tests): where `b12-cds serve` listens by default.
LOCAL_BASE_URL = "http://127.0.0.1:8080"


class CardBuildError(ValueError):
    """A finding refers to knowledge the cards cannot resolve (unknown citation or orderable): a bug."""


def explanation_url(base_url: str | None, family: str) -> str:
    """Absolute URL of a family's explanation page under the service's public base URL."""
    return f"{(base_url or LOCAL_BASE_URL).rstrip('/')}/explain/{family}"


def build_cards(
    findings: Sequence[Finding], kb: Any, *, hook: str, patient_id: str, base_url: str | None = None
) -> list[dict[str, Any]]:
    """CDS Hooks cards for these findings, critical first (stable within an indicator)."""
    if not patient_id:
        raise CardBuildError("patient_id is required to build suggested resources")
    wording = kb.wording
    ordered = sorted(findings, key=lambda f: -f.indicator.rank)
    return [build_card(f, kb, hook=hook, patient_id=patient_id, wording=wording, base_url=base_url) for f in ordered]


def build_card(
    finding: Finding, kb: Any, *, hook: str, patient_id: str, wording: Wording | None = None,
    base_url: str | None = None,
) -> dict[str, Any]:
    wording = wording or kb.wording
    finding = with_display_units(finding, kb)
    explain = explanation_url(base_url, finding.family)
    family = wording.family(finding.family)
    citation_ids = _citation_ids(finding, family, kb)
    advice = [_advice(wording, a) for a in finding.actions if a.kind == "advice"]
    source_citation = kb.citations[family.source_citation]
    card: dict[str, Any] = {
        "uuid": str(uuid.uuid4()),
        "summary": finding.summary,  # the rules keep it inside the limit (rules.common.summary)
        "indicator": finding.indicator.value,
        "detail": render_detail(finding, advice),
        "source": {
            "label": family.source_label,
            "url": source_citation.url if is_web_url(source_citation.url) else explain,
            "topic": {"system": wording.topic_system, "code": family.code, "display": family.display},
        },
    }
    suggestions = _suggestions(finding, kb, family, wording, patient_id=patient_id)
    if suggestions:
        card["suggestions"] = suggestions
        card["selectionBehavior"] = _selection_behavior(suggestions)
    card["overrideReasons"] = [c.as_json() for c in family.override_reasons]
    card["links"] = [{"label": wording.link_labels["explanation"], "url": explain, "type": "absolute"},
                     *_links(citation_ids, kb)]
    return prune(card)


def _citation_ids(finding: Finding, family: FamilyWording, kb: Any) -> tuple[str, ...]:
    ids = tuple(dict.fromkeys([*finding.citations, *(t.citation for t in finding.thresholds)]))
    missing = [cid for cid in (*ids, family.source_citation) if cid not in kb.citations]
    if missing:
        raise CardBuildError(f"finding {finding.family}/{finding.trigger} cites unknown citations: {missing}")
    return ids


def _advice(wording: Wording, action: ProposedAction) -> str:
    try:
        return wording.advice[action.key]
    except KeyError:
        raise CardBuildError(f"no advice wording for '{action.key}'") from None


def _orderable(kb: Any, key: str) -> Any:
    try:
        return kb.orderables[key]
    except KeyError:
        raise CardBuildError(f"unknown orderable '{key}'") from None


def _name(orderable: Any) -> str:
    return sentence_case(orderable.text or orderable.display)


def _create(orderable: Any, wording: Wording, patient_id: str) -> dict[str, Any]:
    kind = {"lab": "order-lab", "medication": "order-medication", "referral": "referral"}[orderable.kind]
    description = wording.action_descriptions[kind].format(
        display=orderable.display or orderable.text,
        text=orderable.text or orderable.display,
        dosage=orderable.dosage_text or "dose as per local formulary",
        priority=wording.referral_priority,
    )
    return {
        "type": "create",
        "description": description,
        "resource": resource_for(orderable, patient_id, wording.referral_priority),
    }


def _suggestions(
    finding: Finding, kb: Any, family: FamilyWording, wording: Wording, *, patient_id: str
) -> list[dict[str, Any]]:
    labels = wording.action_labels
    referrals = [a for a in finding.actions if a.kind == "referral"]
    labs = [a for a in finding.actions if a.kind == "order-lab"]
    meds = [a for a in finding.actions if a.kind == "order-medication"]

    out: list[dict[str, Any]] = []
    for action in referrals:
        orderable = _orderable(kb, action.key)
        out.append(
            _suggestion(
                labels["referral"].format(text=_name(orderable)),
                [_create(orderable, wording, patient_id)],
                recommended=True,
            )
        )
    lab_orderables = [_orderable(kb, a.key) for a in labs]
    if family.group_labs and len(lab_orderables) > 1:
        texts = ", ".join(_name(o) for o in lab_orderables)
        out.append(
            _suggestion(
                labels["lab-group"].format(texts=texts),
                [_create(o, wording, patient_id) for o in lab_orderables],
                recommended=True,
            )
        )
    else:
        for index, orderable in enumerate(lab_orderables):
            out.append(
                _suggestion(
                    labels["order-lab"].format(text=_name(orderable)),
                    [_create(orderable, wording, patient_id)],
                    recommended=index == 0,
                )
            )
    if len(meds) > 1:
        # Alternative regimens (IM or oral B12) exclude each other (4.6 D1): the card becomes
        # "pick at most one", so each alternative carries the card's other orders with it, and one
        # more alternative orders those without a prescription.
        shared = [action for suggestion in out for action in suggestion["actions"]]
        shared_texts = ", ".join(
            _name(o) for o in [*(_orderable(kb, a.key) for a in referrals), *lab_orderables]
        )
        alternatives = []
        for action in meds:
            orderable = _orderable(kb, action.key)
            label = labels["order-medication"].format(text=_name(orderable))
            if shared:
                label += labels["with-orders"].format(texts=shared_texts)
            alternatives.append(_suggestion(label, [*shared, _create(orderable, wording, patient_id)],
                                            recommended=False))
        if shared:
            alternatives.append(_suggestion(labels["orders-only"], shared, recommended=False))
        out = alternatives
    else:
        for action in meds:
            orderable = _orderable(kb, action.key)
            out.append(
                _suggestion(
                    labels["order-medication"].format(text=_name(orderable)),
                    [_create(orderable, wording, patient_id)],
                    recommended=not out,
                )
            )
    if _selection_behavior(out) == "at-most-one":
        for index, suggestion in enumerate(out):
            suggestion["isRecommended"] = index == 0
    return out


def _suggestion(label: str, actions: list[dict[str, Any]], *, recommended: bool) -> dict[str, Any]:
    suggestion: dict[str, Any] = {"label": label, "uuid": str(uuid.uuid4()), "actions": actions}
    if recommended:
        suggestion["isRecommended"] = True
    return suggestion


def _selection_behavior(suggestions: list[dict[str, Any]]) -> str:
    """Two or more prescriptions on one card are alternative regimens: pick at most one."""
    prescriptions = [
        s for s in suggestions
        if any(a.get("resource", {}).get("resourceType") == "MedicationRequest" and a.get("type") == "create"
               for a in s["actions"])
    ]
    return "at-most-one" if len(prescriptions) > 1 else "any"


def _links(citation_ids: Iterable[str], kb: Any) -> list[dict[str, str]]:
    links = []
    for cid in dict.fromkeys(citation_ids):
        citation = kb.citations[cid]
        if is_web_url(citation.url):
            links.append({"label": citation.label, "url": citation.url, "type": "absolute"})
    return links


@overload
def prune(value: dict[str, Any]) -> dict[str, Any]: ...
@overload
def prune(value: list[Any]) -> list[Any]: ...


def prune(value: Any) -> Any:
    """Drop None, "", [] and {} recursively (CDS Hooks: omit optional fields that have no value)."""
    if isinstance(value, dict):
        pruned = {k: prune(v) for k, v in value.items()}
        return {k: v for k, v in pruned.items() if not _empty(v)}
    if isinstance(value, list):
        items = [prune(v) for v in value]
        return [v for v in items if not _empty(v)]
    return value


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, (str, list, dict)) and len(value) == 0)
