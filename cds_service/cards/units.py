"""Units in card text as people write them (mL/min/1.73 m², µmol/L), never raw UCUM codes.

Rules and the normaliser quote units as UCUM codes because that is what the knowledge and the labs
use (`mL/min/{1.73_m2}`); a clinician reading a card should see the unit as it is written on a lab
report. The display names are a column of the knowledge unit table (units.json "display"), applied
here to every text a card shows, just before the card is rendered. Values as the lab sent them (the
evidence's "as received" and the summary) keep the lab's spelling ("0.43 umol/L"); only UCUM braces
go, since no lab report prints them.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..clinical.findings import EvidenceItem, Finding, ThresholdApplied


def _rewrite(display: Any, text: str | None) -> str | None:
    return display.rewrite(text) if text else text


def _item(display: Any, item: EvidenceItem) -> EvidenceItem:
    return replace(
        item,
        label=display.rewrite(item.label),
        as_received=display.rewrite(item.as_received, braces_only=True),  # as the lab sent it, minus braces
        converted=_rewrite(display, item.converted),
        note=_rewrite(display, item.note),
    )


def _threshold(display: Any, t: ThresholdApplied) -> ThresholdApplied:
    return replace(t, name=display.rewrite(t.name), value=display.rewrite(t.value))


def with_display_units(finding: Finding, kb: Any) -> Finding:
    """The finding with every unit code in its texts written as people write it.

    `kb.unit_display` comes from the knowledge loader; a knowledge stand-in without it (unit tests of
    the card layout) leaves the texts as they are.
    """
    display = getattr(kb, "unit_display", None)
    if display is None:
        return finding
    return replace(
        finding,
        summary=display.rewrite(finding.summary, braces_only=True),  # the key value as the lab sent it
        rationale=tuple(display.rewrite(r) for r in finding.rationale),
        evidence=tuple(_item(display, e) for e in finding.evidence),
        thresholds=tuple(_threshold(display, t) for t in finding.thresholds),
        caveats=tuple(display.rewrite(c) for c in finding.caveats),
    )
