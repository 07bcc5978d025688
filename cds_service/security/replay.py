"""`jti` replay protection, stored in the service database.

A per-process memory would let a captured token be replayed against another gunicorn worker or
another instance behind the load balancer, so the "seen" set lives in the shared database: SQLite
(WAL, one file shared by all workers on a host) or PostgreSQL (shared by all instances).

The table has its OWN MetaData so this module neither edits nor depends on the app's schema module.
The primary key (iss, jti) is the unique constraint that makes the check atomic: the first INSERT
wins and any later one conflicts, which is a replay, even under concurrent requests. Rows are kept
until the token could no longer be accepted (exp + leeway) and purged opportunistically.
"""

from __future__ import annotations

import math
import threading
from typing import Any, Protocol

from sqlalchemy import BigInteger, Column, Engine, Index, MetaData, PrimaryKeyConstraint, String, Table, delete, insert
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from .errors import ReplayStoreUnavailable

MAX_JTI_LENGTH = 255

replay_metadata = MetaData()

seen_jti_table = Table(
    "seen_jti",
    replay_metadata,
    Column("iss", String(255), nullable=False),
    Column("jti", String(MAX_JTI_LENGTH), nullable=False),
    Column("expires_at", BigInteger, nullable=False),  # epoch seconds: portable, no SQLite tz surprises
    PrimaryKeyConstraint("iss", "jti", name="pk_seen_jti"),
    Index("ix_seen_jti_expires_at", "expires_at"),
)


class JtiStore(Protocol):
    """What token verification needs of a replay guard (ReplayGuard; the diagnose command's dry run)."""

    def first_use(self, iss: str, jti: str, expires_at: float, now: float) -> bool: ...


class ReplayGuard:
    """Remembers (iss, jti) pairs until they expire; `first_use` is False for a replay."""

    def __init__(self, engine: Engine, *, purge_interval_s: float = 60.0) -> None:
        self.engine = engine
        self.purge_interval_s = purge_interval_s
        self._last_purge = -math.inf
        self._lock = threading.Lock()
        replay_metadata.create_all(engine)

    def _insert(self) -> tuple[Any, bool]:
        """A dialect INSERT ... ON CONFLICT DO NOTHING when available (no exception as control flow)."""
        dialect = self.engine.dialect.name
        if dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            stmt = sqlite_insert(seen_jti_table).on_conflict_do_nothing(index_elements=["iss", "jti"])
            return stmt.returning(seen_jti_table.c.jti), True
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            pg_stmt = pg_insert(seen_jti_table).on_conflict_do_nothing(index_elements=["iss", "jti"])
            return pg_stmt.returning(seen_jti_table.c.jti), True
        return insert(seen_jti_table), False

    def first_use(self, iss: str, jti: str, expires_at: float, now: float) -> bool:
        """Record (iss, jti); True if it was new, False if already seen. Raises ReplayStoreUnavailable."""
        with self._lock:
            purge = now - self._last_purge >= self.purge_interval_s
            if purge:
                self._last_purge = now
        statement, on_conflict = self._insert()
        values = {"iss": iss, "jti": jti, "expires_at": int(math.ceil(expires_at))}
        try:
            with self.engine.begin() as conn:
                if purge:
                    conn.execute(delete(seen_jti_table).where(seen_jti_table.c.expires_at < int(now)))
                if on_conflict:
                    # RETURNING, not rowcount: psycopg reports rowcount 0 for ON CONFLICT inserts, which
                    # would turn every first use into a "replay" on PostgreSQL.
                    return len(conn.execute(statement, values).fetchall()) == 1
                try:
                    with conn.begin_nested():
                        conn.execute(statement, values)
                    return True
                except IntegrityError:
                    return False
        except SQLAlchemyError:
            raise ReplayStoreUnavailable() from None
