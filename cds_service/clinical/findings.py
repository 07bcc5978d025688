"""Finding: what a rule concluded, with the evidence behind it.

A Finding is the boundary between clinical logic and the CDS Hooks wire format: rules produce
Findings (pure data), `cards/` turns them into cards. Everything a clinician or a safety officer
needs to check a card independently travels here: the triggering data, the thresholds applied with
their status tags, and the guideline citations.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

SUMMARY_MAX = 139  # CDS Hooks: the card summary is a "<140-character" sentence


class Indicator(StrEnum):
    """CDS Hooks card indicator, ordered by urgency."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return {"info": 0, "warning": 1, "critical": 2}[self.value]


EvidenceKind = Literal["lab", "medication", "condition", "order", "absence", "patient"]


@dataclass(frozen=True)
class EvidenceItem:
    """One piece of patient data behind a finding, as received and as interpreted."""

    kind: EvidenceKind
    label: str  # "Serum vitamin B12"
    as_received: str  # "150 pg/mL", "Folic acid 5 mg tablet", "none in the last 12 months"
    converted: str | None = None  # "110.7 pmol/L"
    date: str | None = None  # ISO date
    code: str | None = None  # "LOINC 2132-9"
    reference: str | None = None  # "Observation/123"
    note: str | None = None  # "matched by name, not by code", "could not be interpreted: unit missing"


@dataclass(frozen=True)
class ThresholdApplied:
    """A threshold the rule compared against, with where it comes from."""

    name: str  # "B12 indeterminate band"
    value: str  # "133-258 pmol/L"
    status: str  # V / S / U / design
    citation: str  # citation id in knowledge


ActionKind = Literal["order-lab", "order-medication", "referral", "advice"]


@dataclass(frozen=True)
class ProposedAction:
    """Something the clinician could do, by orderable key in knowledge (orderables)."""

    kind: ActionKind
    key: str  # e.g. "mma", "homocysteine", "hydroxocobalamin-im-neuro", "neurology-urgent"


@dataclass(frozen=True)
class Finding:
    family: str  # card topic code: mma-testing, folate-without-b12, urgent-neuro-review, b12-untreated
    trigger: str  # rule trigger id, e.g. "R1-A"
    indicator: Indicator
    summary: str  # < 140 characters, readable in two seconds
    rationale: tuple[str, ...]  # sentences for the card detail
    evidence: tuple[EvidenceItem, ...]
    thresholds: tuple[ThresholdApplied, ...] = ()
    citations: tuple[str, ...] = ()
    actions: tuple[ProposedAction, ...] = ()
    caveats: tuple[str, ...] = ()
    subject_refs: tuple[str, ...] = ()  # draft orders the finding is about (order hooks)
