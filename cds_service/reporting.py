"""`b12-cds report`: how each card family performs, per hook, for the clinical safety officer.

Counts per (family, hook): cards shown, suppressed and shadowed; cards accepted and overridden
(distinct cards, so repeated feedback for one card counts once), overrides by coded reason; and
feedback that matches no issued card (purged, or sent for another service instance).
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine, distinct, func, select

from .storage.db import feedback_table, issued_cards_table


@dataclass
class FamilyRow:
    family: str
    hook: str
    shown: int = 0
    suppressed: int = 0
    shadow: int = 0
    accepted: int = 0
    overridden: int = 0
    override_reasons: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Report:
    since: datetime | None
    rows: list[FamilyRow]
    unlinked_feedback: int


def build_report(engine: Engine, since: datetime | None = None) -> Report:
    c, f = issued_cards_table.c, feedback_table.c
    rows: dict[tuple[str, str], FamilyRow] = {}

    def row(family: str, hook: str) -> FamilyRow:
        return rows.setdefault((family, hook), FamilyRow(family, hook))

    issued = select(c.family, c.hook, c.disposition, func.count()).group_by(c.family, c.hook, c.disposition)
    outcomes = (
        select(c.family, c.hook, f.outcome, f.override_code, func.count(distinct(f.card_uuid)))
        .join(issued_cards_table, f.card_uuid == c.card_uuid)
        .group_by(c.family, c.hook, f.outcome, f.override_code)
    )
    unlinked = (
        select(func.count(distinct(f.card_uuid)))
        .select_from(feedback_table.outerjoin(issued_cards_table, f.card_uuid == c.card_uuid))
        .where(c.card_uuid.is_(None))
    )
    if since is not None:
        issued = issued.where(c.issued_at >= since)
        outcomes = outcomes.where(f.outcome_timestamp >= since)
        unlinked = unlinked.where(f.outcome_timestamp >= since)
    with engine.connect() as conn:
        for family, hook, disposition, count in conn.execute(issued):
            setattr(row(family, hook), disposition, count)
        reasons: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
        for family, hook, outcome, code, count in conn.execute(outcomes):
            target = row(family, hook)
            if outcome == "accepted":
                target.accepted += count
            else:
                target.overridden += count
                key = code or "(no reason)"
                reasons[(family, hook)][key] = reasons[(family, hook)].get(key, 0) + count
        for key, by_reason in reasons.items():
            rows[key].override_reasons = dict(sorted(by_reason.items()))
        unlinked_count = int(conn.execute(unlinked).scalar_one())
    return Report(since, sorted(rows.values(), key=lambda r: (r.family, r.hook)), unlinked_count)


COLUMNS = ("family", "hook", "shown", "suppressed", "shadow", "accepted", "overridden", "override_reasons")


def _cells(r: FamilyRow) -> list[str]:
    reasons = "; ".join(f"{k}={v}" for k, v in r.override_reasons.items())
    return [r.family, r.hook, str(r.shown), str(r.suppressed), str(r.shadow), str(r.accepted), str(r.overridden),
            reasons]


def report_csv(report: Report) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(_cells(r) for r in report.rows)
    return out.getvalue()


def report_table(report: Report) -> str:
    table = [list(COLUMNS), *(_cells(r) for r in report.rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    scope = f"since {report.since.isoformat()}" if report.since else "all time"
    lines.insert(0, f"Card performance ({scope})")
    lines.append(f"feedback for unknown cards: {report.unlinked_feedback}")
    return "\n".join(lines)
