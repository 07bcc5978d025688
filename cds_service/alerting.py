"""Alert fatigue: suppression of recently overridden cards, and silent (shadow) roll-out.

Pure decisions over data the storage layer provides. Policy (clinical-safety choices, configurable):
- an overridden card is not shown again for N days (per family) unless its evidence changed (new
  identity) or its indicator rose above the highest indicator that was overridden;
- `urgent-neuro-review` defaults to 0 days: an urgent red flag is never suppressed by default;
- a critical card is never suppressed by the override of a lower indicator (follows from the rule).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from .clinical.findings import Finding
from .config import parse_suppression_days
from .startup import StartupError

DEFAULT_SUPPRESSION_DAYS: dict[str, int] = {
    "mma-testing": 30,
    "b12-testing": 30,  # a first B12 once asked for and declined: not again for a month
    "b12-untreated": 14,
    "folate-without-b12": 7,
    "nitrous-oxide-risk": 1,
    "urgent-neuro-review": 0,
}


class PolicyError(StartupError):
    """CDS_SUPPRESSION_DAYS names an unknown card family (its format is checked with the settings)."""


@dataclass(frozen=True)
class SuppressionPolicy:
    days_by_family: Mapping[str, int]

    @classmethod
    def parse(cls, text: str, families: Sequence[str]) -> SuppressionPolicy:
        """'family=days,family=days' (CDS_SUPPRESSION_DAYS) over the defaults."""
        return cls.over_defaults(parse_suppression_days("CDS_SUPPRESSION_DAYS", text), families)

    @classmethod
    def over_defaults(cls, overrides: Mapping[str, int], families: Sequence[str]) -> SuppressionPolicy:
        """The defaults with a site's days per family (Settings.suppression_days); unknown families
        are refused, since a typo would otherwise silently keep the default."""
        for family in overrides:
            if family not in families:
                raise PolicyError(f"CDS_SUPPRESSION_DAYS: unknown card family '{family}'")
        return cls({**DEFAULT_SUPPRESSION_DAYS, **overrides})

    def window(self, family: str) -> timedelta:
        return timedelta(days=self.days_by_family.get(family, 0))

    @property
    def longest(self) -> timedelta:
        return timedelta(days=max(self.days_by_family.values(), default=0))


@dataclass(frozen=True)
class PriorOverride:
    """The strongest override of one card identity within the look-back."""

    max_rank: int
    last_at: datetime


@dataclass(frozen=True)
class IdentifiedFinding:
    finding: Finding
    identity: str
    evidence_hash: str


@dataclass(frozen=True)
class Decision:
    item: IdentifiedFinding
    disposition: str  # shown | suppressed | shadow
    reason: str | None = None


def decide(
    items: Sequence[IdentifiedFinding],
    overrides: Mapping[str, PriorOverride],
    policy: SuppressionPolicy,
    now: datetime,
    *,
    shadow: bool = False,
) -> list[Decision]:
    decisions = []
    for item in items:
        prior = overrides.get(item.identity)
        window = policy.window(item.finding.family)
        if (
            prior is not None
            and window > timedelta(0)
            and now - prior.last_at <= window
            and item.finding.indicator.rank <= prior.max_rank
        ):
            decisions.append(Decision(item, "suppressed", f"overridden {prior.last_at.date().isoformat()}"))
        elif shadow:
            decisions.append(Decision(item, "shadow", "shadow mode"))
        else:
            decisions.append(Decision(item, "shown"))
    return decisions
