"""Rule families: one module per card topic, each `evaluate(assessment, kb) -> list[Finding]`.

Rules are pure functions of the request's Assessment (computed once from the PatientRecord and the
hook, clinical/assessment.py) and the knowledge (thresholds, citations, orderables); they never
import Flask or requests, and never hold a number or a code of their own. The registry is keyed by
the card topic codes other parts rely on (conventions.md); never rename a key.

What each family is, beside its rule, is data here: whether it is a card about the patient's B12
state (and its precedence when several speak, clinical-reference 4.6 D1) and whether it still answers
from partial data when required inputs are unobtainable (the degraded path of the engine).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from ..findings import Finding
from . import b12_testing, b12_untreated, folate_without_b12, mma_testing, nitrous_oxide_risk, urgent_neuro_review
from .common import KnowledgeView

if TYPE_CHECKING:
    from ..assessment import Assessment

Rule = Callable[["Assessment", KnowledgeView], list[Finding]]


@dataclass(frozen=True)
class FamilySpec:
    name: str
    evaluate: Rule
    # "b12-state": a card about the patient's B12 state, at most one per response (4.6 D1);
    # "drug": about a drug being ordered or taken, kept separate from the B12-state card.
    kind: Literal["b12-state", "drug"]
    # Still answers when required data is unobtainable: missing an urgent neurological red flag costs
    # more than a partial answer (the card names the missing inputs).
    answers_when_degraded: bool = False


FAMILY_SPECS: tuple[FamilySpec, ...] = (
    FamilySpec(urgent_neuro_review.FAMILY, urgent_neuro_review.evaluate, "b12-state", answers_when_degraded=True),
    FamilySpec(b12_untreated.FAMILY, b12_untreated.evaluate, "b12-state"),
    FamilySpec(mma_testing.FAMILY, mma_testing.evaluate, "b12-state"),
    FamilySpec(b12_testing.FAMILY, b12_testing.evaluate, "b12-state"),
    FamilySpec(folate_without_b12.FAMILY, folate_without_b12.evaluate, "drug"),
    FamilySpec(nitrous_oxide_risk.FAMILY, nitrous_oxide_risk.evaluate, "drug"),
)
FAMILIES: dict[str, FamilySpec] = {spec.name: spec for spec in FAMILY_SPECS}
# 4.6 D1 precedence, highest first: when several B12-state cards speak, the first one answers.
B12_STATE_PRECEDENCE: tuple[str, ...] = tuple(spec.name for spec in FAMILY_SPECS if spec.kind == "b12-state")


class UnknownFamily(KeyError):
    """A service definition names a rule family that does not exist (a configuration bug)."""


def degraded_families(families: Iterable[str]) -> tuple[str, ...]:
    """The families of a service that still answer when required data is unobtainable."""
    return tuple(name for name in families if name in FAMILIES and FAMILIES[name].answers_when_degraded)


def evaluate_families(assessment: Assessment, kb: KnowledgeView, families: Iterable[str]) -> list[Finding]:
    """Run the named families in order; an unknown name is a configuration error, not 'no cards'."""
    names = list(dict.fromkeys(families))
    unknown = [name for name in names if name not in FAMILIES]
    if unknown:
        raise UnknownFamily(f"unknown rule families: {', '.join(unknown)}; known: {', '.join(FAMILIES)}")
    findings: list[Finding] = []
    for name in names:
        findings.extend(FAMILIES[name].evaluate(assessment, kb))
    return findings


__all__ = [
    "B12_STATE_PRECEDENCE",
    "FAMILIES",
    "FAMILY_SPECS",
    "FamilySpec",
    "Rule",
    "UnknownFamily",
    "degraded_families",
    "evaluate_families",
]
