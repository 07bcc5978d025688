"""Structured JSON logs that carry ids, hooks, timings and outcomes, never patient data or tokens.

Log calls pass facts as `extra={"fields": {...}}`; only the whitelisted keys below are written, so a
careless call cannot leak a name or a token into the log stream.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

SAFE_FIELDS = frozenset(
    {
        "request_id",
        "service_id",
        "hook",
        "hook_instance",
        "status",
        "method",
        "path",
        "duration_ms",
        "timings_ms",
        "cards",
        "topics",
        "indicators",
        "unavailable_inputs",
        "error_code",
        "feedback_items",
        "feedback_new",
        "services",
        "env",
        "where",
        # read pass (fhir.reader): resource types, field paths and counts, never values or references
        "resource_type",
        "field",
        "ignored_fields",
        "unreadable",
        "skipped",
        "tolerated",
        "withheld",
    }
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "event": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            payload.update({k: v for k, v in fields.items() if k in SAFE_FIELDS})
        if record.exc_info and record.exc_info[0] is not None:
            payload["exception"] = record.exc_info[0].__name__  # type only: messages may hold data
        return orjson.dumps(payload, default=str).decode()


def configure_logging(level: str) -> None:
    root = logging.getLogger("cds_service")
    if not any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
    root.setLevel(level.upper())
    root.propagate = True
