"""Rule families: one module per card topic, each `evaluate(record, kb) -> list[Finding]`.

Rules are pure functions of a PatientRecord and the knowledge (thresholds, citations, orderables);
they never import Flask or requests, and never hold a number or a code of their own. The registry is
keyed by the card topic codes other parts rely on (conventions.md); never rename a key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from ..findings import Finding
from ..record import PatientRecord
from . import b12_untreated, folate_without_b12, mma_testing, nitrous_oxide_risk, urgent_neuro_review
from .common import KnowledgeView

Rule = Callable[[PatientRecord, KnowledgeView], list[Finding]]

FAMILIES: dict[str, Rule] = {
    mma_testing.FAMILY: mma_testing.evaluate,
    folate_without_b12.FAMILY: folate_without_b12.evaluate,
    urgent_neuro_review.FAMILY: urgent_neuro_review.evaluate,
    b12_untreated.FAMILY: b12_untreated.evaluate,
    nitrous_oxide_risk.FAMILY: nitrous_oxide_risk.evaluate,
}


class UnknownFamily(KeyError):
    """A service definition names a rule family that does not exist (a configuration bug)."""


def evaluate_families(record: PatientRecord, kb: KnowledgeView, families: Iterable[str]) -> list[Finding]:
    """Run the named families in order; an unknown name is a configuration error, not 'no cards'."""
    names = list(dict.fromkeys(families))
    unknown = [name for name in names if name not in FAMILIES]
    if unknown:
        raise UnknownFamily(f"unknown rule families: {', '.join(unknown)}; known: {', '.join(FAMILIES)}")
    findings: list[Finding] = []
    for name in names:
        findings.extend(FAMILIES[name](record, kb))
    return findings


__all__ = ["FAMILIES", "Rule", "UnknownFamily", "evaluate_families"]
