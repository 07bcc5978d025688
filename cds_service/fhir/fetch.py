"""Fetching what prefetch lacks from the EHR's FHIR server: safely, concurrently, within a budget.

Safety first, because a CDS service holding a bearer token must never become a tool that calls
arbitrary URLs: only allowlisted http(s) servers are contacted, redirects and `next` links may not
leave the server's origin, responses over a size cap are refused, and the token is never logged.
Speed second: the keys run concurrently on one pooled `requests.Session`, every call is bounded by
what is left of the request's time budget, and a per-server circuit breaker makes a dead server cost
almost nothing instead of a timeout per request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import orjson
import requests
from requests.adapters import HTTPAdapter

from .. import metrics
from ..config import FetchSettings  # defined once, with the other settings
from ..protocol.services import TOKEN_PATTERN, PrefetchSpec
from .prefetch import Fetched, Fetcher, FetchUnavailable

log = logging.getLogger("cds_service.fhir")

HARD_BUDGET_CEILING_MS = 2000


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def redact(url: str) -> str:
    """A URL safe to log: origin and path only (queries may carry patient identifiers)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # a malformed port
        port = ""
    return f"{parts.scheme}://{host}{port}{parts.path}"  # no user:password, no query


class ServerAllowlist:
    """Exact origins (`https://ehr.example.org`) or path prefixes (`https://ehr.example.org/fhir/`)."""

    def __init__(self, entries: Sequence[str]) -> None:
        self._origins: set[str] = set()
        self._prefixes: list[str] = []
        for entry in entries:
            entry = entry.strip()
            if not entry:
                continue
            parts = urlsplit(entry)
            if parts.scheme not in {"http", "https"} or not parts.netloc:
                raise ValueError(f"allowlist entry '{entry}' must be an http(s) origin or URL prefix")
            if parts.path in {"", "/"}:
                self._origins.add(origin_of(entry))
            else:
                self._prefixes.append(entry if entry.endswith("/") else entry + "/")

    def allows(self, url: str) -> bool:
        parts = urlsplit(url)
        if parts.scheme not in {"http", "https"} or not parts.netloc or parts.username or parts.password:
            return False
        if origin_of(url) in self._origins:
            return True
        normalized = url if url.endswith("/") else url + "/"
        return any(normalized.startswith(prefix) for prefix in self._prefixes)


class CircuitBreaker:
    """Per-server breaker: after N consecutive failures, refuse calls for a cool-down, then try one."""

    def __init__(self, failures: int, cooldown_s: float) -> None:
        self.failures = failures
        self.cooldown_s = cooldown_s
        self._lock = threading.Lock()
        self._state: dict[str, tuple[int, float]] = {}  # origin -> (consecutive failures, open until)

    def allow(self, origin: str) -> bool:
        with self._lock:
            count, open_until = self._state.get(origin, (0, 0.0))
            if count < self.failures:
                return True
            now = time.monotonic()
            if now >= open_until:
                # half-open: let one call through; a failure re-opens for a full cool-down
                self._state[origin] = (count, now + self.cooldown_s)
                return True
            return False

    def record(self, origin: str, ok: bool) -> None:
        with self._lock:
            if ok:
                self._state.pop(origin, None)
                return
            count, _ = self._state.get(origin, (0, 0.0))
            count += 1
            open_until = time.monotonic() + self.cooldown_s if count >= self.failures else 0.0
            self._state[origin] = (count, open_until)


def render_template(template: str, context: dict[str, Any]) -> str:
    """Substitute CDS Hooks 2.0 prefetch tokens; unresolved tokens make the key unfetchable."""
    user = str(context.get("userId", ""))
    user_type, _, user_id = user.partition("/")
    user_tokens = {f"user{user_type}Id": user_id} if user_id else {}

    def substitute(match: Any) -> str:
        token = match.group(1)
        if token.startswith("context."):
            value = context.get(token.removeprefix("context."))
        else:
            value = user_tokens.get(token)
        if value is None or isinstance(value, (dict, list)):
            raise FetchUnavailable(f"template token '{token}' has no value in this request")
        return quote(str(value), safe="/")

    return TOKEN_PATTERN.sub(substitute, template)


class FhirFetcher:
    """One per app: a pooled session, a thread pool and a breaker shared by all requests."""

    def __init__(self, settings: FetchSettings, session: requests.Session | None = None) -> None:
        self.settings = settings
        self.allowlist = ServerAllowlist(settings.allowlist)
        self.breaker = CircuitBreaker(settings.breaker_failures, settings.breaker_cooldown_s)
        self.session = session or requests.Session()
        adapter = HTTPAdapter(pool_connections=16, pool_maxsize=32, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="fhir-fetch")

    def for_request(
        self, fhir_server: str | None, authorization: dict[str, Any] | None, context: dict[str, Any]
    ) -> Fetcher | None:
        """A fetcher bound to this request's server and token, or None if we may not fetch."""
        if not fhir_server:
            return None
        if not self.allowlist.allows(fhir_server):
            log.warning("fhirServer not on allowlist; not contacted",
                        extra={"fields": {"path": redact(fhir_server)}})
            return None
        token = (authorization or {}).get("access_token")
        deadline = time.monotonic() + min(self.settings.budget_ms, HARD_BUDGET_CEILING_MS) / 1000
        base = fhir_server.rstrip("/") + "/"

        def fetch(specs: Sequence[PrefetchSpec]) -> dict[str, Fetched | FetchUnavailable]:
            futures = {spec.key: self.pool.submit(self._fetch_key, base, token, spec, context, deadline)
                       for spec in specs}
            results: dict[str, Fetched | FetchUnavailable] = {}
            for key, future in futures.items():
                remaining = deadline - time.monotonic()
                try:
                    results[key] = future.result(timeout=max(remaining, 0) + 0.05)
                except FutureTimeout:
                    future.cancel()
                    metrics.record_fhir_failure("budget-exhausted")
                    results[key] = FetchUnavailable("time budget exhausted")
                except FetchUnavailable as exc:
                    results[key] = exc
            return results

        return fetch

    def _fetch_key(
        self, base: str, token: str | None, spec: PrefetchSpec, context: dict[str, Any], deadline: float
    ) -> Fetched:
        url = urljoin(base, render_template(spec.template, context))
        is_read = "?" not in spec.template
        origin = origin_of(base)
        resources: list[dict[str, Any]] = []
        pages = 0
        while url:
            body = self._get(url, origin, token, deadline, missing_ok=is_read)
            if body is None:  # a read that found nothing
                return Fetched([])
            if is_read:
                return Fetched([body])
            if body.get("resourceType") != "Bundle":
                raise FetchUnavailable(f"expected a searchset Bundle, got {body.get('resourceType')}")
            for entry in body.get("entry", []) or []:
                resource = entry.get("resource") if isinstance(entry, dict) else None
                if isinstance(resource, dict) and resource.get("resourceType") != "OperationOutcome":
                    if entry.get("search", {}).get("mode", "match") == "match":
                        resources.append(resource)
            pages += 1
            next_url = next((link.get("url") for link in body.get("link", []) or []
                             if isinstance(link, dict) and link.get("relation") == "next"), None)
            if not next_url:
                return Fetched(resources)
            if pages >= self.settings.max_pages or len(resources) >= self.settings.max_entries:
                return Fetched(resources[: self.settings.max_entries], complete=False)
            next_url = urljoin(url, next_url)
            if origin_of(next_url) != origin or not self.allowlist.allows(next_url):
                log.warning("next link leaves the FHIR server; not followed",
                            extra={"fields": {"path": redact(next_url)}})
                return Fetched(resources, complete=False)
            url = next_url
        return Fetched(resources)

    def _get(self, url: str, origin: str, token: str | None, deadline: float, *, missing_ok: bool) -> Any:
        if not self.breaker.allow(origin):
            metrics.record_fhir_failure("circuit-open")
            raise FetchUnavailable("FHIR server circuit open after repeated failures")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            metrics.record_fhir_failure("budget-exhausted")
            raise FetchUnavailable("time budget exhausted")
        timeout = min(self.settings.call_timeout_ms / 1000, remaining)
        headers = {"Accept": "application/fhir+json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        started = time.perf_counter()
        try:
            response = self.session.get(url, headers=headers, timeout=timeout, allow_redirects=False, stream=True)
        except requests.Timeout:
            self.breaker.record(origin, ok=False)
            metrics.observe_fhir_fetch("timeout", time.perf_counter() - started)
            raise FetchUnavailable("FHIR server did not answer in time") from None
        except requests.RequestException as exc:
            self.breaker.record(origin, ok=False)
            metrics.observe_fhir_fetch("unreachable", time.perf_counter() - started)
            raise FetchUnavailable(f"FHIR server unreachable ({type(exc).__name__})") from None
        try:
            status = response.status_code
            metrics.observe_fhir_fetch(status, time.perf_counter() - started)
            log.info("fhir fetch", extra={"fields": {"path": redact(url), "status": status,
                                                     "duration_ms": round((time.perf_counter() - started) * 1000, 2)}})
            if status >= 500:
                self.breaker.record(origin, ok=False)
                raise FetchUnavailable(f"FHIR server error {status}")
            self.breaker.record(origin, ok=True)
            if 300 <= status < 400:
                raise FetchUnavailable(f"FHIR server answered a redirect ({status}); redirects are not followed")
            if status in (401, 403):
                raise FetchUnavailable(f"FHIR server refused the access token ({status})")
            if status in (404, 410) and missing_ok:
                return None
            if status != 200:
                raise FetchUnavailable(f"FHIR server answered {status}")
            return orjson.loads(self._read_capped(response))
        except orjson.JSONDecodeError:
            metrics.record_fhir_failure("invalid-response")
            raise FetchUnavailable("FHIR server answered invalid JSON") from None
        finally:
            response.close()

    def _read_capped(self, response: requests.Response) -> bytes:
        cap = self.settings.max_response_bytes
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > cap:
            raise FetchUnavailable(f"FHIR response larger than {cap} bytes refused")
        chunks, size = [], 0
        for chunk in response.iter_content(chunk_size=65536):
            size += len(chunk)
            if size > cap:
                raise FetchUnavailable(f"FHIR response larger than {cap} bytes refused")
            chunks.append(chunk)
        return b"".join(chunks)
