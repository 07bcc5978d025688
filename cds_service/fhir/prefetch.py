"""Prefetch: tell the four states apart, and decide what must be fetched or refused.

CDS Hooks 2.0 gives each prefetch key one of these meanings, and they must not be confused:
- PRESENT: a resource, or a searchset Bundle with entries: data to use;
- NO_DATA: `null` (a read found nothing) or a Bundle with zero entries: the answer is "nothing";
- ERROR: an OperationOutcome: the EHR tried and failed, so the data is unknown;
- MISSING: the key is absent: the EHR chose not to (or could not) run the template.
Only NO_DATA may be read as absence of the clinical fact; ERROR and MISSING mean "unknown" and the
service must fetch it or say it could not (412 for required data, a caveat on cards otherwise).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ..errors import InvalidFhirResource, PreconditionFailed, ServiceError
from ..protocol.services import PrefetchSpec


class PrefetchState(StrEnum):
    PRESENT = "present"
    NO_DATA = "no-data"
    ERROR = "error"
    MISSING = "missing"


@dataclass(frozen=True)
class PrefetchItem:
    key: str
    state: PrefetchState
    resources: tuple[dict[str, Any], ...] = ()
    incomplete: bool = False  # a Bundle with a `next` link we did not follow


class PrefetchTooLarge(ServiceError):
    def __init__(self, total: int, limit: int) -> None:
        super().__init__(f"prefetch holds {total} resources; the limit is {limit} (CDS_MAX_PREFETCH_ENTRIES)",
                         413, "too-long", ("prefetch",))


class FetchUnavailable(Exception):
    """The data for a prefetch key could not be fetched from the FHIR server; the message says why."""


@dataclass(frozen=True)
class Fetched:
    """What a fetch returned; `complete` is False when a page or entry cap cut it short."""

    resources: list[dict[str, Any]]
    complete: bool = True


# A fetcher runs the templates of the keys prefetch lacks against the EHR's FHIR server, all at once
# (so independent queries can run concurrently), and answers per key with data or the reason it failed.
Fetcher = Callable[[Sequence[PrefetchSpec]], dict[str, "Fetched | FetchUnavailable"]]


def classify_prefetch_value(key: str, value: Any) -> PrefetchItem:
    """Classify one prefetch value; raise InvalidFhirResource on a shape that is none of the four."""
    where = f"prefetch.{key}"
    if value is None:
        return PrefetchItem(key, PrefetchState.NO_DATA)
    if not isinstance(value, dict) or not isinstance(value.get("resourceType"), str):
        raise InvalidFhirResource(where, "must be a FHIR resource, a Bundle, an OperationOutcome or null")
    resource_type = value["resourceType"]
    if resource_type == "OperationOutcome":
        return PrefetchItem(key, PrefetchState.ERROR)
    if resource_type != "Bundle":
        return PrefetchItem(key, PrefetchState.PRESENT, (value,))
    entries = value.get("entry", [])
    if not isinstance(entries, list):
        raise InvalidFhirResource(f"{where}.entry", "must be an array")
    resources = []
    for index, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            raise InvalidFhirResource(f"{where}.entry[{index}]", "entry has no resource with a resourceType")
        if resource["resourceType"] == "OperationOutcome":
            continue  # search warnings (e.g. an ignored parameter) are not clinical data
        resources.append(resource)
    links = value.get("link", [])
    incomplete = isinstance(links, list) and any(
        isinstance(link, dict) and link.get("relation") == "next" for link in links
    )
    state = PrefetchState.PRESENT if resources else PrefetchState.NO_DATA
    return PrefetchItem(key, state, tuple(resources), incomplete)


@dataclass(frozen=True)
class GatheredData:
    resources: list[dict[str, Any]]
    unavailable: tuple[str, ...]  # keys we could not get in full (cards carry a caveat)
    states: dict[str, PrefetchState] = field(default_factory=dict)
    missing_required: PreconditionFailed | None = None  # set when required data could not be had

    def require_complete(self) -> None:
        """Raise the 412 if required data is missing (callers that cannot degrade call this)."""
        if self.missing_required is not None:
            raise self.missing_required


def gather_inputs(
    specs: Iterable[PrefetchSpec],
    prefetch: dict[str, Any] | None,
    fetcher: Fetcher | None,
    max_entries: int = 50_000,
) -> GatheredData:
    """Merge prefetch with fetched data; note (for a 412) required data that can be had neither way.

    `max_entries` caps the resources a request may carry in prefetch (413 above it): the body cap
    alone would still let a client send hundreds of thousands of tiny resources.
    """
    prefetch = prefetch or {}
    total = sum(len(v.get("entry", ())) for v in prefetch.values()
                if isinstance(v, dict) and isinstance(v.get("entry"), list))
    if total > max_entries:
        raise PrefetchTooLarge(total, max_entries)
    resources: list[dict[str, Any]] = []
    states: dict[str, PrefetchState] = {}
    to_fetch: list[tuple[PrefetchSpec, PrefetchItem]] = []
    for spec in specs:
        item = (
            classify_prefetch_value(spec.key, prefetch[spec.key])
            if spec.key in prefetch
            else PrefetchItem(spec.key, PrefetchState.MISSING)
        )
        states[spec.key] = item.state
        if item.state in (PrefetchState.PRESENT, PrefetchState.NO_DATA) and not item.incomplete:
            resources.extend(item.resources)
        else:
            to_fetch.append((spec, item))
    if not to_fetch:
        return GatheredData(resources, (), states)
    if fetcher is None:
        results: dict[str, Fetched | FetchUnavailable] = {
            spec.key: FetchUnavailable("no fhirServer/fhirAuthorization to fetch it from") for spec, _ in to_fetch
        }
    else:
        results = fetcher([spec for spec, _ in to_fetch])
    unavailable: list[str] = []
    failed_required: list[tuple[str, str]] = []
    for spec, item in to_fetch:
        result = results.get(spec.key) or FetchUnavailable("not fetched")
        if isinstance(result, Fetched):
            resources.extend(result.resources)
            if not result.complete:
                unavailable.append(spec.key)  # partial: used, and cards say so
            continue
        if item.incomplete:
            resources.extend(item.resources)  # use the page we have, and say it is partial
            unavailable.append(spec.key)
        elif spec.required:
            failed_required.append((spec.key, f"{item.state.value}: {result}"))
        else:
            unavailable.append(spec.key)
    missing = None
    if failed_required:
        detail = "; ".join(f"'{key}' ({why})" for key, why in failed_required)
        missing = PreconditionFailed(
            f"required prefetch data unavailable: {detail}. Send these prefetch keys, or fhirServer "
            "with fhirAuthorization so the service can query them.",
            tuple(key for key, _ in failed_required),
        )
        unavailable.extend(key for key, _ in failed_required)
    return GatheredData(resources, tuple(unavailable), states, missing)
