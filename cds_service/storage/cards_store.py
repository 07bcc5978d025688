"""Issued cards and their feedback: what suppression reads and the report counts."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, case, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ..alerting import PriorOverride
from ..clinical.findings import Indicator
from .db import feedback_table, identity_overrides_table, issued_cards_table


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


def note_overrides(
    conn: Connection, service_id: str, card_uuids: Sequence[str], overridden_at: Sequence[datetime]
) -> None:
    """Fold overridden feedback into identity_overrides (latest time per identity and indicator).

    Only cards this service issued count: feedback posted to another service's endpoint must not
    suppress this one's cards.
    """
    if not card_uuids:
        return
    c = issued_cards_table.c
    latest: dict[str, datetime] = {}
    for uuid_, when in zip(card_uuids, overridden_at, strict=True):
        latest[uuid_] = max(when, latest.get(uuid_, when))
    rows = conn.execute(
        select(c.card_uuid, c.identity, c.indicator).where(c.card_uuid.in_(list(latest)), c.service_id == service_id)
    ).all()
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    for card_uuid, identity, indicator in rows:
        stmt = insert(identity_overrides_table).values(
            identity=identity, indicator=indicator, last_overridden_at=latest[card_uuid]
        )
        current = identity_overrides_table.c.last_overridden_at
        conn.execute(stmt.on_conflict_do_update(
            index_elements=["identity", "indicator"],
            set_={"last_overridden_at": case((stmt.excluded.last_overridden_at > current,
                                              stmt.excluded.last_overridden_at), else_=current)},
        ))


def overrides_since(engine: Engine, identities: Iterable[str], since: datetime) -> dict[str, PriorOverride]:
    """For each identity: the highest indicator overridden since `since`, and when last overridden."""
    identities = list(set(identities))
    if not identities:
        return {}
    o = identity_overrides_table.c
    stmt = select(o.identity, o.indicator, o.last_overridden_at).where(
        o.identity.in_(identities), o.last_overridden_at >= since
    )
    result: dict[str, PriorOverride] = {}
    with engine.connect() as conn:
        for identity, indicator, last_at in conn.execute(stmt):
            if last_at.tzinfo is None:  # SQLite returns naive datetimes; we store UTC
                last_at = last_at.replace(tzinfo=UTC)
            rank = Indicator(indicator).rank if indicator in Indicator._value2member_map_ else 0
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
        conn.execute(delete(identity_overrides_table).where(identity_overrides_table.c.last_overridden_at < cutoff))
    return {"issued_cards": cards or 0, "feedback": feedback or 0}
