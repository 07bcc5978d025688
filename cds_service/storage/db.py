"""Database engine and schema (SQLAlchemy): SQLite by default, PostgreSQL when configured.

The schema is created and evolved by alembic migrations (storage/migrations), run at start-up.
SQLite runs in WAL mode with a busy timeout so several gunicorn workers can write at once without
"database is locked" errors.

No clinical values are stored: issued cards keep the patient id as sent by the EHR, the card family,
hook, indicator and a hash of the evidence; feedback keeps outcomes and coded reasons only.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    create_engine,
    event,
    text,
)
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.pool import ConnectionPoolEntry

metadata = MetaData()

feedback_table = Table(
    "feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("service_id", String(64), nullable=False),
    Column("card_uuid", String(128), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("suggestion_uuid", String(128), nullable=False, default=""),  # "" for overrides
    Column("override_system", String(255)),
    Column("override_code", String(128)),
    Column("has_user_comment", Boolean, nullable=False, default=False),
    Column("outcome_timestamp", DateTime(timezone=True), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint(
        "service_id", "card_uuid", "outcome", "suggestion_uuid", "outcome_timestamp", name="uq_feedback_event"
    ),
    Index("ix_feedback_card_uuid", "card_uuid"),
)

issued_cards_table = Table(
    "issued_cards",
    metadata,
    Column("card_uuid", String(64), primary_key=True),
    Column("identity", String(64), nullable=False),  # family + patient + evidence hash (sha256 hex)
    Column("evidence_hash", String(64), nullable=False),
    Column("family", String(64), nullable=False),
    Column("service_id", String(64), nullable=False),
    Column("hook", String(32), nullable=False),
    Column("indicator", String(16), nullable=False),
    Column("patient_id", String(64), nullable=False),
    Column("disposition", String(16), nullable=False),  # shown | suppressed | shadow
    Column("reason", String(64)),  # why suppressed, e.g. "overridden-2026-11-01"
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Index("ix_issued_cards_identity", "identity"),
    Index("ix_issued_cards_issued_at", "issued_at"),
)


identity_overrides_table = Table(
    "identity_overrides",
    metadata,
    Column("identity", String(64), primary_key=True),
    Column("indicator", String(16), primary_key=True),
    Column("last_overridden_at", DateTime(timezone=True), nullable=False),
)


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, pool_pre_ping=True, future=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    from .migrate import upgrade_to_head

    upgrade_to_head(engine)
    return engine


def database_reachable(engine: Engine) -> bool:
    """For /readyz: a real round trip, not just a configured URL."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:  # noqa: BLE001 - any driver error means "not ready"; the probe reports it
        return False
