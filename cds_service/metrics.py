"""Prometheus metrics at GET /metrics: traffic, latency, cards, FHIR fetches, suppressed cards.

Labels carry only bounded, non-identifying values: service id, hook, card topic, indicator and a
status. Every label value is checked against what the service knows (its service ids, hooks, rule
families, the three indicators) and anything else is reported as "unknown"/"other", so no
client-supplied string (a patient id in a URL, a free-text topic) can become a label.

Under gunicorn each worker is a separate process: `b12-cds serve` points PROMETHEUS_MULTIPROC_DIR
at a fresh directory *before* this module is imported (prometheus_client picks its value store at
import time), every worker writes its samples there, and a scrape of any worker aggregates all of
them. Without that variable (tests, `create_app()` in one process) the default registry is used.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, current_app, has_app_context
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as _multiprocess

from .clinical.rules import FAMILIES
from .fhir.forms import USED_RESOURCE_TYPES
from .fhir.screen import SCREENED_FIELDS

if TYPE_CHECKING:
    from .app_state import AppState
    from .protocol.services import ServiceDefinition

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
INDICATORS = frozenset({"info", "warning", "critical"})
UNKNOWN = "unknown"
OTHER = "other"

# Service calls must answer well under a second (CDS Hooks clients time out at ~1-5 s).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.4, 0.6, 1.0, 2.5, 5.0)
# One FHIR HTTP call is bounded by CDS_FETCH_CALL_TIMEOUT_MS (default 300 ms, ceiling 2 s).
FETCH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.4, 0.6, 1.0, 2.0)

REQUESTS = Counter(
    "b12_cds_requests", "CDS service calls answered, by service id, hook and HTTP status",
    ["service", "hook", "status"],
)
LATENCY = Histogram(
    "b12_cds_request_duration_seconds", "Time to answer a CDS service call (whole request), by service id and hook",
    ["service", "hook"], buckets=LATENCY_BUCKETS,
)
FEEDBACK = Counter(
    "b12_cds_feedback_requests", "Feedback requests answered, by service id and HTTP status", ["service", "status"],
)
CARDS = Counter("b12_cds_cards", "Cards returned to clients, by topic and indicator", ["topic", "indicator"])
SUPPRESSED = Counter(
    "b12_cds_cards_suppressed", "Cards not returned because suppression applied, by topic", ["topic"],
)
FHIR_FETCH = Histogram(
    "b12_cds_fhir_fetch_duration_seconds",
    "Duration of one HTTP call to an EHR FHIR server, by HTTP status (or timeout/unreachable)",
    ["status"], buckets=FETCH_BUCKETS,
)
FHIR_FAILURES = Counter(
    "b12_cds_fhir_fetch_failures",
    "FHIR fetches that gave no usable data: timeout, unreachable, circuit-open, budget-exhausted or http-<code>",
    ["status"],
)

READ_RESOURCES = Counter(
    "b12_cds_fhir_resources_read",
    "Resources of a used type in the read pass, by outcome: read (into its typed form), unreadable (left "
    "out and named on the cards), skipped (its codes map to nothing the rules read; never read further)",
    ["outcome"],
)
FIELD_DEFECTS = Counter(
    "b12_cds_fhir_field_defects",
    "Defects in fields the rules do not need, ignored (the resource is still read), by resource type and R4 "
    "element name",
    ["resource_type", "field"],
)
WITHHELD = Counter(
    "b12_cds_families_withheld",
    "Rule families held back because an input whose absence they would report could not be read, by topic",
    ["topic"],
)
_RESOURCE_TYPES = USED_RESOURCE_TYPES

_FETCH_FAILURE_STATUSES = frozenset({"timeout", "unreachable", "circuit-open", "budget-exhausted", "invalid-response"})

bp = Blueprint("metrics", __name__)


def multiprocess_enabled() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV) or os.environ.get(MULTIPROC_ENV.lower()))


def scrape() -> bytes:
    """The exposition text: aggregated over every worker's files in multiprocess mode."""
    if multiprocess_enabled():
        registry = CollectorRegistry()
        _multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


@bp.get("/metrics")
def metrics_endpoint() -> Response:
    return Response(scrape(), status=200, headers={"Content-Type": CONTENT_TYPE_LATEST, "Cache-Control": "no-store"})


# --- label hygiene -----------------------------------------------------------------------------------

def _services() -> Mapping[str, ServiceDefinition]:
    state: AppState | None = current_app.extensions.get("b12_cds") if has_app_context() else None
    return state.services if state is not None else {}


def _service_and_hook(service_id: str | None, hook: str | None) -> tuple[str, str]:
    service = _services().get(service_id or "")
    if service is None:
        return UNKNOWN, UNKNOWN
    # A parsed request's hook always equals the service's hook (400 otherwise), so this is bounded.
    return service.id, service.hook


def topic_label(topic: object) -> str:
    return topic if isinstance(topic, str) and topic in FAMILIES else OTHER


def indicator_label(indicator: object) -> str:
    return indicator if isinstance(indicator, str) and indicator in INDICATORS else OTHER


def _status_label(status: int | str) -> str:
    if isinstance(status, int):
        return str(status) if 100 <= status <= 599 else OTHER
    return status if status in _FETCH_FAILURE_STATUSES else OTHER


# --- recording (called from the API, the fetcher and, later, suppression) ---------------------------

def observe_http(endpoint: str | None, service_id: str | None, status: int, seconds: float) -> None:
    """Count a finished request to a service endpoint (call or feedback); other endpoints are ignored.

    `service_id` is the URL's id; it is only used as a label if it names a loaded service.
    """
    if endpoint == "services.call_service":
        service, hook = _service_and_hook(service_id, None)
        REQUESTS.labels(service, hook, _status_label(status)).inc()
        LATENCY.labels(service, hook).observe(max(seconds, 0.0))
    elif endpoint == "services.feedback":
        service, _ = _service_and_hook(service_id, None)
        FEEDBACK.labels(service, _status_label(status)).inc()


def record_cards(cards: list[dict[str, Any]]) -> None:
    for card in cards:
        topic = ((card.get("source") or {}).get("topic") or {}).get("code")
        CARDS.labels(topic_label(topic), indicator_label(card.get("indicator"))).inc()


def record_suppressed(topic: str) -> None:
    """One card of `topic` (a rule family / card topic code) was suppressed instead of returned."""
    SUPPRESSED.labels(topic_label(topic)).inc()


def observe_fhir_fetch(status: int | str, seconds: float) -> None:
    """One HTTP call to a FHIR server: its duration, and a failure unless it returned usable data.

    `status` is the HTTP status, or "timeout"/"unreachable" when no answer came. 404/410 are not
    failures (a read of an absent resource is an answer: "none").
    """
    label = _status_label(status)
    FHIR_FETCH.labels(label).observe(max(seconds, 0.0))
    if isinstance(status, int):
        if status != 200 and status not in (404, 410):
            FHIR_FAILURES.labels(f"http-{label}" if label != OTHER else OTHER).inc()
    else:
        FHIR_FAILURES.labels(label).inc()


def record_fhir_failure(status: str) -> None:
    """A fetch refused before any HTTP call: circuit-open or budget-exhausted."""
    FHIR_FAILURES.labels(_status_label(status)).inc()


def record_read(summary: object) -> None:
    """Count one request's read pass (an engine.ReadSummary): outcomes, tolerated defects, held families."""
    read = getattr(summary, "read", 0)
    if read:
        READ_RESOURCES.labels("read").inc(read)
    for outcome, count in (("unreadable", getattr(summary, "unreadable", 0)),
                           ("skipped", getattr(summary, "skipped", 0))):
        if count:
            READ_RESOURCES.labels(outcome).inc(count)
    for resource_type, field in getattr(summary, "tolerated", ()):
        FIELD_DEFECTS.labels(resource_type if resource_type in _RESOURCE_TYPES else OTHER,
                             field if field in SCREENED_FIELDS else OTHER).inc()
    for family in getattr(summary, "withheld", ()):
        WITHHELD.labels(topic_label(family)).inc()
