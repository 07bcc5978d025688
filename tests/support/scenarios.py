"""Helpers for the clinical scenario tests: load fixtures, post requests, compare card multisets."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from fixtures.build_requests import build_request, service_id_for
from tests.support.project import FIXTURES

TOPIC_SYSTEM = "https://b12-neuro-cds.example.org/CodeSystem/card-topic"


def load_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def load_scenarios() -> list[dict[str, Any]]:
    return load_json(FIXTURES / "scenarios.json")


def load_patient(slug: str) -> dict[str, Any]:
    return load_json(FIXTURES / "patients" / f"{slug}.json")


def scenario_id(scenario: Mapping[str, Any]) -> str:
    return f"{scenario['patient']}.{scenario['hook']}"


def request_for(scenario: Mapping[str, Any]) -> dict[str, Any]:
    return build_request(
        load_patient(scenario["patient"]),
        scenario["hook"],
        draft_orders=scenario.get("draftOrders", ()),
        selections=scenario.get("selections"),
    )


def service_url(hook: str) -> str:
    return f"/cds-services/{service_id_for(hook)}"


def card_key(card: Mapping[str, Any]) -> tuple[str, str]:
    topic = (card.get("source") or {}).get("topic") or {}
    return (topic.get("code", "<no topic>"), card.get("indicator", "<no indicator>"))


def card_multiset(cards: Sequence[Mapping[str, Any]]) -> Counter[tuple[str, str]]:
    return Counter(card_key(c) for c in cards)


def expected_multiset(expect: Sequence[Mapping[str, Any]]) -> Counter[tuple[str, str]]:
    return Counter((e["topic"], e["indicator"]) for e in expect)


def squash(text: str) -> str:
    """The text as a reader sees it, lower case, without whitespace.

    Markdown backslash escapes are removed ('pg\\/mL' renders as 'pg/mL'), and '< 100 pg/mL' reads
    the same as '<100 pg/mL'.
    """
    return re.sub(r"\s+", "", re.sub(r"\\(.)", r"\1", text)).lower()


def mentions(detail: str | None, needle: str) -> bool:
    return squash(needle) in squash(detail or "")


def describe_cards(cards: Sequence[Mapping[str, Any]]) -> str:
    lines = [f"  {card_key(c)}: {c.get('summary', '')}" for c in cards]
    return "\n".join(lines) if lines else "  (no cards)"


def iter_resources(node: Any, where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every FHIR resource inside a JSON structure (Bundles and their entries included)."""
    if isinstance(node, dict):
        if isinstance(node.get("resourceType"), str):
            yield where, node
        for key, value in node.items():
            yield from iter_resources(value, f"{where}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from iter_resources(value, f"{where}[{i}]")
