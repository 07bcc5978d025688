"""Persisting CDS Hooks feedback idempotently.

EHRs may send the same feedback several times (spec section Feedback); one row per
(service, card, outcome, suggestion, timestamp) makes the store idempotent, so counts stay true.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ..protocol.feedback import FeedbackItem
from .cards_store import note_overrides
from .db import feedback_table


def _rows(service_id: str, items: Iterable[FeedbackItem], now: datetime) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for item in items:
        base = {
            "service_id": service_id,
            "card_uuid": item.card,
            "outcome": item.outcome,
            "override_system": item.override_system,
            "override_code": item.override_code,
            "has_user_comment": item.has_user_comment,
            "outcome_timestamp": item.outcome_timestamp.astimezone(UTC),
            "received_at": now,
        }
        for suggestion in item.accepted_suggestions or ("",):
            rows.append({**base, "suggestion_uuid": suggestion})
    return rows


def store_feedback(engine: Engine, service_id: str, items: list[FeedbackItem]) -> int:
    """Store feedback; return how many rows were new (duplicates are tolerated and not counted)."""
    rows = _rows(service_id, items, datetime.now(UTC))
    if not rows:
        return 0
    insert = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert
    stmt = (
        insert(feedback_table)
        .on_conflict_do_nothing(
            index_elements=["service_id", "card_uuid", "outcome", "suggestion_uuid", "outcome_timestamp"]
        )
        .returning(feedback_table.c.id)
    )
    new = 0
    with engine.begin() as conn:
        # Row by row with RETURNING: rowcount is not reliable across drivers (psycopg reports 0 here), and
        # the count of new rows is what makes duplicate deliveries visible.
        for row in rows:
            new += len(conn.execute(stmt, row).fetchall())
        overridden = [item for item in items if item.outcome == "overridden"]
        # An override cannot be later than its arrival: a future outcomeTimestamp (clock error or abuse)
        # would otherwise suppress a card for ever.
        received = rows[0]["received_at"] if rows else datetime.now(UTC)
        note_overrides(conn, service_id, [i.card for i in overridden],
                       [min(i.outcome_timestamp.astimezone(UTC), received) for i in overridden])
    return new


def count_feedback(engine: Engine, service_id: str | None = None) -> int:
    stmt = select(func.count()).select_from(feedback_table)
    if service_id is not None:
        stmt = stmt.where(feedback_table.c.service_id == service_id)
    with engine.connect() as conn:
        return int(conn.execute(stmt).scalar_one())
