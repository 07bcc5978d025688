"""Per-issuer key store: pinned keys, plus JWK Sets downloaded from configured URLs only.

Why it looks like this (CDS Hooks §JWT, best practices, RFC 8725):
- A token's `jku` header is attacker-controlled. We only ever download from the issuer's configured
  `jwks_url` or from a `jku` that is on THAT issuer's `jku_allowlist`; any other `jku` is ignored
  (never fetched, and logged as ignored), so the service cannot be steered into fetching arbitrary
  URLs (SSRF) or trusting keys an attacker hosts. The token is then verified with the issuer's
  configured keys only: a `kid` among them verifies (the CDS Hooks sandbox sends a `jku` that is
  unreachable offline while its key is registered inline); any other `kid` is refused
  ("jku-not-allowed": the only place that might have held the key was not allowed).
- Clients rotate keys, so an unknown `kid` triggers a re-download, but at most once per URL per
  CDS_JWKS_REFRESH_MIN_S: a flood of tokens with random kids cannot turn us into a request amplifier.
  Failed downloads count as attempts too, and keep the previously cached keys.
- Downloads are bounded: 2 s overall, no redirects (a redirect could leave the allowlisted URL),
  at most 256 KB of (decoded) body.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable

import requests

from .errors import AuthenticationFailed
from .keys import VerificationKey, parse_jwk_set
from .settings import AuthConfig, TrustedIssuer

log = logging.getLogger("cds_service.security")

FETCH_TIMEOUT_S = 2.0
MAX_JWKS_BYTES = 256 * 1024

Fetcher = Callable[[str], bytes]


class JwksFetchError(Exception):
    """A JWK Set download failed; the message is a short code for the log."""


def fetch_jwks_document(url: str, *, timeout_s: float = FETCH_TIMEOUT_S, max_bytes: int = MAX_JWKS_BYTES) -> bytes:
    """GET a JWK Set: status 200 only, no redirects, size cap, overall deadline."""
    deadline = time.monotonic() + timeout_s
    try:
        with requests.get(
            url,
            timeout=timeout_s,
            allow_redirects=False,
            stream=True,
            headers={"Accept": "application/jwk-set+json, application/json"},
        ) as response:
            if response.status_code != 200:
                raise JwksFetchError(f"http-{response.status_code}")
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise JwksFetchError("too-large")
            chunks: list[bytes] = []
            total = 0
            for chunk in response.iter_content(chunk_size=16384):
                total += len(chunk)
                if total > max_bytes:
                    raise JwksFetchError("too-large")
                if time.monotonic() > deadline:
                    raise JwksFetchError("timeout")
                chunks.append(chunk)
            return b"".join(chunks)
    except requests.RequestException as exc:
        raise JwksFetchError(f"network-{type(exc).__name__}") from None


class KeyStore:
    """Finds the verification key for (issuer, kid, jku). Thread-safe; one per app process."""

    def __init__(
        self,
        config: AuthConfig,
        *,
        fetch: Fetcher = fetch_jwks_document,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.refresh_min_s = config.jwks_refresh_min_s
        self.fetch = fetch
        self.clock = clock
        self._remote: dict[str, dict[str, VerificationKey]] = {}  # url -> kid -> key
        self._last_attempt: dict[str, float] = {}
        self._lock = threading.Lock()
        self._url_locks: dict[str, threading.Lock] = {}

    def key_for(self, issuer: TrustedIssuer, kid: str, jku: str | None) -> VerificationKey:
        """Raise AuthenticationFailed("jku-not-allowed" | "unknown-kid") when no trusted key fits."""
        jku_ignored = jku is not None and jku not in issuer.jku_allowlist
        if jku_ignored:
            jku = None  # decided before any network activity: never fetched
            log.info("client JWT jku is not on the issuer's jku_allowlist: ignored, never fetched; "
                     "verifying with the issuer's configured keys", extra={"fields": {"error_code": "jku-ignored"}})
        key = issuer.static_keys.get(kid)
        if key is not None:
            return key
        sources = [url for url in dict.fromkeys((jku, issuer.jwks_url)) if url]
        for url in sources:
            key = self._cached(url, kid)
            if key is not None:
                return key
        for url in sources:
            key = self._refresh_for(url, kid)
            if key is not None:
                return key
        raise AuthenticationFailed("jku-not-allowed" if jku_ignored else "unknown-kid")

    def _cached(self, url: str, kid: str) -> VerificationKey | None:
        with self._lock:
            return self._remote.get(url, {}).get(kid)

    def _refresh_for(self, url: str, kid: str) -> VerificationKey | None:
        """Download `url` unless throttled; concurrent callers wait for one download, then re-check."""
        with self._lock:
            url_lock = self._url_locks.setdefault(url, threading.Lock())
        with url_lock:
            key = self._cached(url, kid)  # another thread may have refreshed while we waited
            if key is not None:
                return key
            now = self.clock()
            with self._lock:
                last = self._last_attempt.get(url)
                if last is not None and now - last < self.refresh_min_s:
                    return None
                self._last_attempt[url] = now
            try:
                keys = parse_jwk_set(json.loads(self.fetch(url)), where=url, strict=False)
            except (JwksFetchError, ValueError, RecursionError) as exc:
                code = str(exc) if isinstance(exc, JwksFetchError) else "invalid-json"
                log.warning("JWKS download failed; keeping cached keys",
                            extra={"fields": {"error_code": f"jwks-{code}"}})
                return None
            with self._lock:
                self._remote[url] = keys
            log.info("JWKS downloaded")
            return keys.get(kid)
