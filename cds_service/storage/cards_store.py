"""Issued cards and their feedback: what suppression reads and the report counts."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, and_, delete, func, select

from ..alerting import PriorOverride
from .db import feedback_table, issued_cards_table

RANKS = {"info": 0, "warning": 1, "critical": 2}


@dataclass(frozen=True)
class IssuedCard:
    card_uuid: str
    identity: str
    evidence_hash: str
    family: str
    service_id: str
    hook: str
    indicator: str
    patient_id: str
    disposition: str
    reason: str | None
    issued_at: datetime


def record_issued(engine: Engine, cards: Sequence[IssuedCard]) -> None:
    if not cards:
        return
    with engine.begin() as conn:
        conn.execute(issued_cards_table.insert(), [c.__dict__ for c in cards])


def overrides_since(engine: Engine, identities: Iterable[str], since: datetime) -> dict[str, PriorOverride]:
    """For each identity: the highest indicator among its overridden cards, and when last overridden."""
    identities = list(set(identities))
    if not identities:
        return {}
    c, f = issued_cards_table.c, feedback_table.c
    stmt = (
        select(c.identity, c.indicator, func.max(f.outcome_timestamp))
        .join(feedback_table, f.card_uuid == c.card_uuid)
        .where(and_(c.identity.in_(identities), f.outcome == "overridden", f.outcome_timestamp >= since))
        .group_by(c.identity, c.indicator)
    )
    result: dict[str, PriorOverride] = {}
    with engine.connect() as conn:
        for identity, indicator, last_at in conn.execute(stmt):
            if last_at.tzinfo is None:  # SQLite returns naive datetimes; we store UTC
                last_at = last_at.replace(tzinfo=UTC)
            rank = RANKS.get(indicator, 0)
            prior = result.get(identity)
            result[identity] = PriorOverride(
                max(rank, prior.max_rank) if prior else rank, max(last_at, prior.last_at) if prior else last_at
            )
    return result


def purge_before(engine: Engine, cutoff: datetime) -> dict[str, int]:
    """Retention: delete cards issued and feedback received before the cutoff."""
    with engine.begin() as conn:
        cards = conn.execute(delete(issued_cards_table).where(issued_cards_table.c.issued_at < cutoff)).rowcount
        feedback = conn.execute(delete(feedback_table).where(feedback_table.c.received_at < cutoff)).rowcount
    return {"issued_cards": cards or 0, "feedback": feedback or 0}
