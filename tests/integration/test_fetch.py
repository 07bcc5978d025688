"""FHIR fetching: allowlist, time budget, breaker, redirects, size cap, paging; against real servers.

The misbehaving servers (slow, failing, redirecting, oversize) are real HTTP servers on 127.0.0.1
started by the tests; paging and auth run against a real FHIR server (sekmet-fhir).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from cds_service.fhir.fetch import CircuitBreaker, FetchSettings, FhirFetcher, ServerAllowlist, render_template
from cds_service.fhir.prefetch import Fetched, FetchUnavailable
from cds_service.protocol.services import PrefetchSpec
from tests.support.sekmet import start_sekmet, stop

CONTEXT = {"patientId": "p1", "userId": "Practitioner/doc-1"}
LABS = PrefetchSpec("labs", "Observation?patient={{context.patientId}}&_count=50", True, "labs")
PATIENT = PrefetchSpec("patient", "Patient/{{context.patientId}}", False, "patient")


class Recorder:
    def __init__(self) -> None:
        self.paths: list[str] = []
        self.auth: list[str | None] = []


def serve(handler: Callable[[BaseHTTPRequestHandler], None]) -> Iterator[tuple[str, Recorder]]:
    recorder = Recorder()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server API
            recorder.paths.append(self.path)
            recorder.auth.append(self.headers.get("Authorization"))
            handler(self)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/fhir", recorder
    finally:
        server.shutdown()
        server.server_close()


def reply(h: BaseHTTPRequestHandler, status: int, body: dict | None = None, headers: dict | None = None) -> None:
    data = json.dumps(body or {}).encode()
    h.send_response(status)
    h.send_header("Content-Type", "application/fhir+json")
    h.send_header("Content-Length", str(len(data)))
    for k, v in (headers or {}).items():
        h.send_header(k, v)
    h.end_headers()
    h.wfile.write(data)


def searchset(*resources: dict, next_url: str | None = None) -> dict:
    bundle: dict = {"resourceType": "Bundle", "type": "searchset",
                    "entry": [{"resource": r, "search": {"mode": "match"}} for r in resources]}
    if next_url:
        bundle["link"] = [{"relation": "next", "url": next_url}]
    return bundle


def fetcher_for(base: str, **settings) -> FhirFetcher:
    return FhirFetcher(FetchSettings(allowlist=(base.rsplit("/fhir", 1)[0],), **settings))


def run(fetcher: FhirFetcher, base: str, *specs: PrefetchSpec, token: str = "tok-secret"):
    bound = fetcher.for_request(base, {"access_token": token}, CONTEXT)
    assert bound is not None
    return bound(list(specs))


@pytest.fixture
def server_factory():
    servers = []

    def make(handler):
        gen = serve(handler)
        servers.append(gen)
        return next(gen)

    yield make
    for gen in servers:
        next(gen, None)


def test_bearer_token_and_fhir_accept_header_are_sent(server_factory):
    base, rec = server_factory(lambda h: reply(h, 200, searchset({"resourceType": "Observation", "id": "o1"})))
    result = run(fetcher_for(base), base, LABS)
    assert isinstance(result["labs"], Fetched) and result["labs"].resources[0]["id"] == "o1"
    assert rec.auth == ["Bearer tok-secret"]
    assert rec.paths == ["/fhir/Observation?patient=p1&_count=50"]


def test_read_that_finds_nothing_is_no_data(server_factory):
    base, _ = server_factory(lambda h: reply(h, 404, {"resourceType": "OperationOutcome"}))
    assert run(fetcher_for(base), base, PATIENT)["patient"] == Fetched([])


def test_non_allowlisted_server_is_never_contacted(server_factory):
    base, rec = server_factory(lambda h: reply(h, 200, searchset()))
    fetcher = FhirFetcher(FetchSettings(allowlist=("https://ehr.example.org",)))
    assert fetcher.for_request(base, {"access_token": "t"}, CONTEXT) is None
    assert rec.paths == []


@pytest.mark.parametrize(
    ("entries", "url", "allowed"),
    [
        (("https://ehr.example.org",), "https://ehr.example.org/fhir", True),
        (("https://ehr.example.org",), "https://ehr.example.org.evil.com/fhir", False),
        (("https://ehr.example.org",), "http://ehr.example.org/fhir", False),
        (("https://ehr.example.org/fhir/",), "https://ehr.example.org/fhir", True),
        (("https://ehr.example.org/fhir",), "https://ehr.example.org/fhirx", False),
        (("https://ehr.example.org/fhir",), "https://ehr.example.org/other", False),
        (("https://ehr.example.org",), "https://user:pw@ehr.example.org/fhir", False),
        (("https://ehr.example.org",), "file:///etc/passwd", False),
    ],
)
def test_allowlist_matching(entries, url, allowed):
    assert ServerAllowlist(entries).allows(url) is allowed


def test_paging_follows_next_links_on_the_same_server(server_factory):
    def handler(h):
        page = 2 if "page=2" in h.path else 1
        nxt = f"http://{h.headers['Host']}/fhir/Observation?page=2" if page == 1 else None
        reply(h, 200, searchset({"resourceType": "Observation", "id": f"o{page}"}, next_url=nxt))

    base, rec = server_factory(handler)
    result = run(fetcher_for(base), base, LABS)["labs"]
    assert [r["id"] for r in result.resources] == ["o1", "o2"] and result.complete
    assert len(rec.paths) == 2


def test_page_cap_marks_the_result_incomplete(server_factory):
    def handler(h):
        reply(h, 200, searchset({"resourceType": "Observation", "id": str(len(h.path))},
                                next_url=f"http://{h.headers['Host']}/fhir/Observation?p={len(h.path)}x"))

    base, rec = server_factory(handler)
    result = run(fetcher_for(base, max_pages=3), base, LABS)["labs"]
    assert not result.complete and len(rec.paths) == 3


def test_next_link_to_another_host_is_not_followed(server_factory):
    base, rec = server_factory(lambda h: reply(
        h, 200, searchset({"resourceType": "Observation", "id": "o1"}, next_url="https://attacker.example/steal")))
    result = run(fetcher_for(base), base, LABS)["labs"]
    assert not result.complete and len(rec.paths) == 1


def test_redirects_are_not_followed(server_factory):
    base, rec = server_factory(lambda h: reply(h, 302, headers={"Location": "https://attacker.example/fhir"}))
    result = run(fetcher_for(base), base, LABS)["labs"]
    assert isinstance(result, FetchUnavailable) and "redirect" in str(result)
    assert len(rec.paths) == 1


def test_oversize_response_is_refused(server_factory):
    big = searchset(*({"resourceType": "Observation", "id": f"o{i}", "note": [{"text": "x" * 500}]} for i in range(50)))
    base, _ = server_factory(lambda h: reply(h, 200, big))
    result = run(fetcher_for(base, max_response_bytes=4096), base, LABS)["labs"]
    assert isinstance(result, FetchUnavailable) and "larger than" in str(result)


def test_wrong_token_is_reported_as_refused(server_factory):
    base, _ = server_factory(lambda h: reply(h, 401, {"resourceType": "OperationOutcome"}))
    result = run(fetcher_for(base), base, LABS)["labs"]
    assert isinstance(result, FetchUnavailable) and "401" in str(result)


def test_budget_holds_against_a_server_that_never_answers(server_factory):
    stop_event = threading.Event()
    base, _ = server_factory(lambda h: stop_event.wait(10))
    fetcher = fetcher_for(base, budget_ms=200, call_timeout_ms=2000)
    started = time.monotonic()
    result = run(fetcher, base, LABS, PATIENT)
    elapsed = time.monotonic() - started
    stop_event.set()
    assert all(isinstance(v, FetchUnavailable) for v in result.values())
    assert elapsed < 1.0, f"budget 200 ms, took {elapsed:.2f} s"


def test_breaker_opens_after_repeated_failures_and_stops_calling(server_factory):
    base, rec = server_factory(lambda h: reply(h, 503, {"resourceType": "OperationOutcome"}))
    fetcher = fetcher_for(base, breaker_failures=3, breaker_cooldown_s=60)
    for _ in range(3):
        run(fetcher, base, LABS)
    calls_before = len(rec.paths)
    result = run(fetcher, base, LABS)["labs"]
    assert "circuit open" in str(result)
    assert len(rec.paths) == calls_before == 3


def test_breaker_half_opens_after_cooldown():
    breaker = CircuitBreaker(failures=2, cooldown_s=0.05)
    breaker.record("h", ok=False)
    breaker.record("h", ok=False)
    assert not breaker.allow("h")
    time.sleep(0.06)
    assert breaker.allow("h")  # one trial call
    assert not breaker.allow("h")  # and only one
    breaker.record("h", ok=True)
    assert breaker.allow("h")


def test_server_down_is_unavailable_quickly():
    base = "http://127.0.0.1:9/fhir"  # discard port: nothing listens
    result = run(fetcher_for(base), base, LABS)["labs"]
    assert isinstance(result, FetchUnavailable) and "unreachable" in str(result)


def test_template_tokens_are_rendered_and_unresolved_ones_refused():
    assert render_template("Practitioner/{{userPractitionerId}}", CONTEXT) == "Practitioner/doc-1"
    assert render_template("Encounter/{{context.encounterId}}", {"encounterId": "e 1"}) == "Encounter/e%201"
    with pytest.raises(FetchUnavailable, match="encounterId"):
        render_template("Encounter/{{context.encounterId}}", CONTEXT)


# --- against a real FHIR server ------------------------------------------------------------------

@pytest.fixture(scope="module")
def sekmet(tmp_path_factory):
    server = start_sekmet(tmp_path_factory.mktemp("sekmet"))
    yield server
    stop(server)


def test_paging_across_several_pages_of_a_real_fhir_server(sekmet):
    observations = [{"resourceType": "Observation", "id": f"page-obs-{i}", "status": "final",
                     "code": {"coding": [{"system": "http://loinc.org", "code": "2132-9"}]},
                     "subject": {"reference": "Patient/paging-1"}, "effectiveDateTime": f"2026-0{1 + i % 9}-01"}
                    for i in range(23)]
    sekmet.load_collection({"resourceType": "Bundle", "type": "collection",
                            "entry": [{"resource": {"resourceType": "Patient", "id": "paging-1"}}]
                            + [{"resource": o} for o in observations]})
    spec = PrefetchSpec("labs", "Observation?patient={{context.patientId}}&_count=5", True, "labs")
    fetcher = FhirFetcher(FetchSettings(allowlist=(sekmet.base_url,), budget_ms=2000, call_timeout_ms=2000))
    bound = fetcher.for_request(sekmet.base_url, {"access_token": sekmet.token}, {"patientId": "paging-1"})
    result = bound([spec])["labs"]
    assert result.complete
    assert sorted(r["id"] for r in result.resources) == sorted(o["id"] for o in observations)


def test_wrong_token_against_a_real_fhir_server(sekmet):
    fetcher = FhirFetcher(FetchSettings(allowlist=(sekmet.base_url,), budget_ms=2000, call_timeout_ms=2000))
    bound = fetcher.for_request(sekmet.base_url, {"access_token": "wrong"}, {"patientId": "paging-1"})
    result = bound([LABS])["labs"]
    assert isinstance(result, FetchUnavailable) and "401" in str(result)
