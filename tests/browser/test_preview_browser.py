"""The /preview page: its JSON API (in-process) and the page itself in Chromium against the real server.

Browser tests drive Debian's Chromium (/usr/bin/chromium) with Playwright against `b12-cds serve`
started as a subprocess (the real gunicorn entry point). Without Chromium they are skipped with the
reason shown, except under CI=true, where a missing browser fails the run (scripts/bootstrap.sh test
installs it). `B12_UPDATE_SCREENSHOTS=1` writes /preview screenshots to docs/screenshots/preview/<family>.png
(docs/screenshots/<family>.png are taken in the CDS Hooks reference sandbox, a real client).
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cds_service import create_app
from cds_service.config import load_settings
from fixtures.build_requests import load_patient, load_scenarios, request_for_scenario
from tests.support.project import PROJECT
from tests.support.server import post_json, start_server, stop_server

SCREENSHOTS = PROJECT / "docs" / "screenshots"
# One fixture per card family, each answered by exactly one card of that family.
FAMILY_SCENARIOS = {
    "mma-testing": ("r1-indeterminate-neuropathy.patient-view", "warning"),
    "folate-without-b12": ("r2-folate-no-b12.patient-view", "warning"),
    "urgent-neuro-review": ("r3-scd-risk-factor.patient-view", "critical"),
    "b12-untreated": ("edge-lower-179-pgml.patient-view", "warning"),
    "nitrous-oxide-risk": ("edge-lower-179-pgml.order-select", "warning"),
    "b12-testing": ("d8-metformin-polyneuropathy-no-b12.patient-view", "warning"),
}


def scenario(sid: str) -> dict[str, Any]:
    (match,) = [s for s in load_scenarios() if f"{s['patient']}.{s['hook']}" == sid]
    return match


# --- the JSON API, in-process ------------------------------------------------------------------------

def test_preview_is_on_in_development_and_off_in_production_unless_enabled() -> None:
    assert load_settings({}, environ={}).preview_on is True
    assert load_settings({"PREVIEW_ENABLED": "false"}, environ={}).preview_on is False
    production = {"ENV": "production", "CORS_ORIGINS": "https://ehr.example.org", "AUTH_REQUIRED": "true",
                  "TRUSTED_ISSUERS": '[{"iss": "https://ehr.example.org", "jwks_url": "https://ehr.example.org/jwks"}]'}
    assert load_settings(production, environ={}).preview_on is False
    assert load_settings({**production, "PREVIEW_ENABLED": "true"}, environ={}).preview_on is True
    with pytest.raises(ValueError, match="CDS_PREVIEW_ENABLED"):
        load_settings({"PREVIEW_ENABLED": "perhaps"}, environ={})


def test_preview_routes_absent_when_disabled(app_config: dict[str, Any]) -> None:
    client = create_app({**app_config, "PREVIEW_ENABLED": "false"}).test_client()
    assert client.get("/preview").status_code == 404
    assert client.get("/preview/api/scenarios").status_code == 404


def test_page_and_assets_are_served_with_a_strict_policy(client) -> None:
    page = client.get("/preview")
    assert page.status_code == 200 and page.mimetype == "text/html"
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy and "script-src 'self'" in policy
    html = page.get_data(as_text=True)
    assert "http://" not in html and "https://" not in html  # no CDN, no external resource
    for asset in ("preview.js", "markdown.js", "preview.css"):
        response = client.get(f"/preview/static/{asset}")
        assert response.status_code == 200, asset
        text = response.get_data(as_text=True)
        assert "fetch('http" not in text and "src=\"http" not in text and "@import" not in text


def test_fixture_requests_equal_the_fixture_builder_for_every_scenario(client) -> None:
    listing = client.get("/preview/api/scenarios").get_json()
    assert listing["fixturesAvailable"] is True
    assert len(listing["scenarios"]) == len(load_scenarios())
    for s in load_scenarios():
        sid = f"{s['patient']}.{s['hook']}"
        body = client.get(f"/preview/api/scenarios/{sid}").get_json()
        assert body["request"] == request_for_scenario(s), sid
        assert body["serviceId"] == f"b12-{s['hook']}"
    assert client.get("/preview/api/scenarios/..%2Fsecrets.patient-view").status_code == 404


def test_evaluate_builds_the_request_and_answers_like_the_service(client) -> None:
    s = scenario("r1-indeterminate-neuropathy.order-select")
    bundle = load_patient(s["patient"])
    bundle["entry"] += [{"resource": order} for order in s["draftOrders"]]  # drafts travel in the Bundle
    built = client.post("/preview/api/evaluate", json={"bundle": bundle, "hook": "order-select"}).get_json()
    expected_request = request_for_scenario(s)
    assert built["serviceId"] == "b12-order-select"
    assert built["request"]["context"] == expected_request["context"]
    assert built["request"]["prefetch"] == expected_request["prefetch"]
    direct = client.post("/cds-services/b12-order-select", json=built["request"]).get_json()
    assert built["status"] == 200
    topics = sorted(c["source"]["topic"]["code"] for c in built["response"]["cards"])
    assert topics == sorted(c["source"]["topic"]["code"] for c in direct["cards"])
    assert topics == ["folate-without-b12", "urgent-neuro-review"]


def test_evaluate_accepts_transaction_style_bundles(client) -> None:
    bundle = load_patient("r2-folate-no-b12")
    patient = next(e for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    patient_id = patient["resource"]["id"]
    urn = "urn:uuid:6a1f0a52-62e4-4a8e-9f34-1f2b6f0c9a11"
    patient["fullUrl"] = urn
    for entry in bundle["entry"]:
        for field in ("subject", "patient"):
            ref = entry["resource"].get(field)
            if isinstance(ref, dict) and ref.get("reference") == f"Patient/{patient_id}":
                ref["reference"] = urn
    body = client.post("/preview/api/evaluate", json={"bundle": bundle, "hook": "patient-view"}).get_json()
    assert body["status"] == 200
    assert [c["source"]["topic"]["code"] for c in body["response"]["cards"]] == ["folate-without-b12"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"bundle": {"resourceType": "Patient", "id": "x"}, "hook": "patient-view"}, "expected a FHIR Bundle"),
        ({"bundle": {"resourceType": "Bundle", "entry": []}, "hook": "patient-view"}, "no entries"),
        ({"bundle": {"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Patient", "id": "a"}},
                                                         {"resource": {"resourceType": "Patient", "id": "b"}}]},
          "hook": "patient-view"}, "exactly one Patient"),
        ({"bundle": {"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Patient", "id": "a"}}]},
          "hook": "order-sign"}, "needs at least one draft order"),
        ({"bundle": {"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Patient", "id": "a"}}]},
          "hook": "encounter-start"}, "no service handles hook"),
    ],
)
def test_evaluate_refuses_malformed_input_with_an_operation_outcome(client, body: dict, message: str) -> None:
    response = client.post("/preview/api/evaluate", json=body)
    assert response.status_code == 400
    outcome = response.get_json()
    assert outcome["resourceType"] == "OperationOutcome" and message in outcome["issue"][0]["diagnostics"]


def test_evaluate_reports_the_services_own_errors(client) -> None:
    bundle = load_patient("healthy-normal-b12")
    patient = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    bundle["entry"].append({"resource": {  # a draft order the engine cannot read: it cannot be checked (412)
        "resourceType": "MedicationRequest", "id": "draft-unreadable", "status": "draft", "intent": "order",
        "subject": {"reference": f"Patient/{patient['id']}"}, "authoredOn": "today",
        "medicationCodeableConcept": {"text": "Folic acid 5 mg tablets"}}})
    body = client.post("/preview/api/evaluate", json={"bundle": bundle, "hook": "order-sign"}).get_json()
    assert body["status"] == 412 and body["response"]["resourceType"] == "OperationOutcome"
    assert "MedicationRequest/draft-unreadable" in body["response"]["issue"][0]["diagnostics"]
    assert body["request"]["hook"] == "order-sign"


def test_check_lists_every_r4_problem_with_its_path_and_what_the_service_does(client) -> None:
    bundle = load_patient("r1-indeterminate-neuropathy")
    b12 = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation")
    b12["issued"] = "yesterday"  # tolerated by the service, an R4 error
    b12["note"] = "a string"  # a field no rule reads: the service ignores it
    condition = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Condition")
    condition["clinicalStatus"]["coding"][0]["code"] = "bogus"  # required binding: left out and named
    report = client.post("/preview/api/check", json=bundle).get_json()
    assert report["kind"] == "bundle" and report["leftOut"] == 1
    by_resource = {r["resource"]: r for r in report["results"]}
    ref = f"Observation/{b12['id']}"
    assert {p["path"] for p in by_resource[ref]["problems"]} == {"issued", "note"}
    assert by_resource[ref]["service"] == "read"
    left = by_resource[f"Condition/{condition['id']}"]
    assert left["service"] == "left out: clinicalStatus not in the required value set"
    assert "bogus" not in json.dumps(report)  # paths and messages, never the values


# --- the page in Chromium against the real server --------------------------------------------------

@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    process, base = start_server(tmp_path_factory.mktemp("preview-server"))
    try:
        yield base
    finally:
        stop_server(process)


@pytest.fixture
def page(browser: Any, live_server: str) -> Iterator[Any]:
    """A fresh page on /preview; afterwards, every request it made must have gone to the service."""
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    requested: list[str] = []
    errors: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("dialog", lambda dialog: (errors.append(f"dialog: {dialog.message}"), dialog.dismiss()))
    page.goto(f"{live_server}/preview")
    page.wait_for_selector("#scenario:not([disabled])")
    yield page
    context.close()
    foreign = [url for url in requested if not url.startswith(live_server + "/")]
    assert not foreign, f"the page contacted something other than the service: {foreign}"
    assert not errors, f"script errors or dialogs on the page: {errors}"


def without_uuids(value: Any) -> Any:
    """Card and suggestion uuids are fresh on every call."""
    if isinstance(value, dict):
        return {k: without_uuids(v) for k, v in value.items() if k != "uuid"}
    if isinstance(value, list):
        return [without_uuids(v) for v in value]
    return value


def evaluate_fixture(page: Any, sid: str) -> None:
    page.select_option("#scenario", sid)
    page.click("#run-fixture")
    from playwright.sync_api import expect

    expect(page.locator("#results")).to_have_attribute("aria-busy", "false")


@pytest.mark.parametrize("family", sorted(FAMILY_SCENARIOS))
def test_each_card_family_is_rendered_like_an_ehr_card(page: Any, live_server: str, family: str,
                                                       tmp_path: Path) -> None:
    sid, indicator = FAMILY_SCENARIOS[family]
    s = scenario(sid)
    status, expected = post_json(f"{live_server}/cds-services/b12-{s['hook']}", request_for_scenario(s))
    assert status == 200
    (expected_card,) = expected["cards"]
    assert expected_card["source"]["topic"]["code"] == family and expected_card["indicator"] == indicator

    evaluate_fixture(page, sid)
    cards = page.locator("article.cds-card")
    assert cards.count() == 1
    card = cards.first
    assert card.get_attribute("data-topic") == family
    assert f"cds-card--{indicator}" in card.get_attribute("class").split()
    assert card.locator(".cds-card__indicator").inner_text().strip().lower() == indicator
    assert card.locator(".cds-card__summary").inner_text() == expected_card["summary"]
    buttons = card.locator("button.cds-suggestion")
    assert [b.strip() for b in buttons.all_text_contents()] == [s_["label"] for s_ in expected_card["suggestions"]]
    recommended = [b.get_attribute("data-recommended") == "true" for b in buttons.all()]
    assert recommended == [bool(s_.get("isRecommended")) for s_ in expected_card["suggestions"]]
    # the detail is rendered markdown: the evidence table is a real table, no markdown syntax left
    detail = card.locator(".cds-card__detail")
    assert detail.locator("table th").first.inner_text() == "What"
    assert "**" not in detail.inner_text() and "| --- |" not in detail.inner_text()
    assert card.locator(".cds-card__source").inner_text().startswith("Source: " + expected_card["source"]["label"])
    for link in expected_card.get("links", []):
        anchor = card.locator(".cds-card__links a", has_text=link["label"])
        assert anchor.get_attribute("href") == link["url"] and anchor.get_attribute("rel") == "noopener noreferrer"
    target = SCREENSHOTS / "preview" if os.environ.get("B12_UPDATE_SCREENSHOTS") == "1" else tmp_path
    target.mkdir(parents=True, exist_ok=True)
    card.screenshot(path=str(target / f"{family}.png"))  # as the clinician first sees it
    # pressing a suggestion orders nothing; it shows what the EHR would do
    buttons.first.click()
    assert "nothing is ordered" in card.locator(".cds-card__accepted").inner_text()
    # status (aria-live), evidence and the raw exchange
    assert page.locator("#status").inner_text().startswith(f"1 card from POST /cds-services/b12-{s['hook']}")
    evidence = page.locator(f".evidence-item[data-topic='{family}'] table")
    assert evidence.count() == 1
    raw_request = json.loads(page.locator("#raw-request").text_content())
    assert raw_request == request_for_scenario(s)
    assert without_uuids(json.loads(page.locator("#raw-response").text_content())) == without_uuids(expected)



def test_several_cards_and_raw_exchange_for_an_order_hook(page: Any) -> None:
    evaluate_fixture(page, "r1-indeterminate-neuropathy.order-select")
    cards = page.locator("article.cds-card")
    assert sorted(cards.evaluate_all("cs => cs.map(c => c.dataset.topic + ':' + c.dataset.indicator)")) == [
        "folate-without-b12:critical", "urgent-neuro-review:critical"]
    request = json.loads(page.locator("#raw-request").text_content())
    assert request["hook"] == "order-select" and request["context"]["draftOrders"]["entry"]


def test_pasted_bundle_is_turned_into_a_request_for_the_chosen_hook(page: Any) -> None:
    s = scenario("edge-lower-179-pgml.order-select")
    bundle = load_patient(s["patient"])
    bundle["entry"] += [{"resource": order} for order in s["draftOrders"]]
    page.fill("#paste", json.dumps(bundle))
    page.select_option("#hook", "order-select")
    page.click("#run-paste")
    page.wait_for_selector("article.cds-card")
    card = page.locator("article.cds-card")
    assert card.get_attribute("data-topic") == "nitrous-oxide-risk"
    assert "cds-card--warning" in card.get_attribute("class")
    assert "built from the pasted Bundle" in page.locator("#status").inner_text()
    request = json.loads(page.locator("#raw-request").text_content())
    assert request["context"]["selections"] == s["selections"]


def test_pasted_request_is_sent_to_the_service_for_its_hook(page: Any) -> None:
    request = json.loads((PROJECT / "fixtures" / "requests" / "r3-ataxia-new.patient-view.json").read_text())
    page.select_option("#hook", "order-sign")
    page.fill("#paste", json.dumps(request))
    page.click("#run-paste")
    page.wait_for_selector("article.cds-card")
    topics = page.locator("article.cds-card").evaluate_all("cs => cs.map(c => c.dataset.topic)")
    assert sorted(topics) == ["urgent-neuro-review"]  # the MMA card folds into it (4.6 D1)
    assert page.locator("#hook").input_value() == "patient-view"
    assert "POST /cds-services/b12-patient-view" in page.locator("#raw-request-label").inner_text()


def test_service_errors_and_bad_json_are_announced(page: Any) -> None:
    page.fill("#paste", "{not json")
    page.click("#run-paste")
    assert "not valid JSON" in page.locator("#error").inner_text()
    request = {"hook": "patient-view", "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
               "context": {"userId": "Practitioner/example", "patientId": "p1"}}
    page.fill("#paste", json.dumps(request))
    page.click("#run-paste")
    from playwright.sync_api import expect

    expect(page.locator("#error")).to_contain_text("HTTP 412")
    assert page.locator("article.cds-card").count() == 0
    assert "HTTP 412" in page.locator("#status").inner_text()
    assert page.locator("#error").get_attribute("role") == "alert"


def test_check_section_lists_problems_of_the_pasted_json(page: Any) -> None:
    bundle = load_patient("r1-indeterminate-neuropathy")
    observation = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation")
    observation["effectiveDateTime"] = "2026-13-45"
    page.fill("#paste", json.dumps(bundle))
    page.click("#run-check")
    from playwright.sync_api import expect

    expect(page.locator("#check-status")).to_contain_text("1 left out by the service")
    rows = page.locator("#check-results tbody tr").evaluate_all(
        "rs => rs.map(r => [...r.cells].map(c => c.textContent))")
    assert [f"Observation/{observation['id']}", "left out: effectiveDateTime not a valid FHIR value of its type",
            "effectiveDateTime"] == rows[0][1:4]


def test_keyboard_labels_live_region_and_contrast(page: Any) -> None:
    # every form control has a visible label
    unlabelled = page.evaluate("""() => [...document.querySelectorAll('select, textarea, input')]
        .filter(c => !(c.labels && c.labels.length && c.labels[0].textContent.trim())).map(c => c.id)""")
    assert unlabelled == []
    assert page.locator("#status").get_attribute("aria-live") == "polite"
    # keyboard only: skip link, then to the scenario list, choose, Tab to the button, Enter
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "scenario"
    first = page.locator("#scenario").input_value()
    page.keyboard.press("ArrowDown")
    assert page.locator("#scenario").input_value() != first
    page.select_option("#scenario", FAMILY_SCENARIOS["urgent-neuro-review"][0])  # a far-away option, same control
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "run-fixture"
    page.keyboard.press("Enter")
    page.wait_for_selector("article.cds-card--critical")
    page.keyboard.press("Tab")  # suggestion buttons are reachable from the keyboard
    focusable = page.evaluate("""() => [...document.querySelectorAll('article.cds-card button')]
        .every(b => b.tabIndex === 0 && !b.disabled)""")
    assert focusable
    ratios = page.evaluate("""() => {
        const rgb = s => s.match(/\\d+(\\.\\d+)?/g).slice(0, 3).map(Number);
        const lum = c => { const [r, g, b] = rgb(c).map(v => { v /= 255;
            return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
            return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
        const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p);
            return (x + 0.05) / (y + 0.05); };
        const out = {};
        for (const cls of ['critical', 'warning', 'info']) {
            const probe = document.createElement('article');
            probe.className = 'cds-card cds-card--' + cls;
            probe.innerHTML = '<span class="cds-card__indicator">x</span><button class="cds-suggestion">y</button>';
            document.body.appendChild(probe);
            const badge = getComputedStyle(probe.querySelector('.cds-card__indicator'));
            const button = getComputedStyle(probe.querySelector('button'));
            out[cls] = ratio(badge.color, badge.backgroundColor);
            out['button'] = ratio(button.color, button.backgroundColor);
            probe.remove();
        }
        const body = getComputedStyle(document.body);
        out['text'] = ratio(body.color, body.backgroundColor);
        return out; }""")
    assert all(value >= 4.5 for value in ratios.values()), ratios


MARKDOWN_CASES = [
    # (input, must contain, must not contain)
    ("<script>alert(1)</script>", ["&lt;script&gt;"], ["<script"]),
    ("<img src=x onerror=alert(1)>", ["&lt;img"], ["<img"]),
    ("[click](javascript:alert(1))", ["click"], ["href", "javascript:alert"]),
    ("[x](data:text/html,<b>hi</b>)", ["x"], ["href", "<b>"]),
    ('[x](https://example.org/" onmouseover="alert(1))', [], ["onmouseover=\""]),
    ("[NICE](https://www.nice.org.uk/guidance/ng239)",
     ['<a href="https://www.nice.org.uk/guidance/ng239" rel="noopener noreferrer" target="_blank">NICE</a>'], []),
    ("**bold** and *it* and _it2_", ["<strong>bold</strong>", "<em>it</em>", "<em>it2</em>"], []),
    ("snake_case_name stays", ["snake_case_name"], ["<em>"]),
    ("- one\n- **two**", ["<ul><li>one</li><li><strong>two</strong></li></ul>"], []),
    ("1. first\n2. second", ["<ol><li>first</li><li>second</li></ol>"], []),
    ("| A | B |\n| --- | --- |\n| 1 \\| 2 | `<x>` |",
     ['<th scope="col">A</th>', "<td>1 | 2</td>", "<td><code>&lt;x&gt;</code></td>"], []),
    ("B12 \\<= 365 d, 5 \\* 2, -\\> next", ["B12 &lt;= 365 d, 5 * 2, -&gt; next"], ["\\"]),
    ("\\*not italic\\*", ["*not italic*"], ["<em>"]),
    ("\ue0000\ue001 placeholder smuggling", ["placeholder smuggling"], ["\ue000"]),
]


def test_markdown_renderer_escapes_first_and_links_only_http(page: Any) -> None:
    for source, present, absent in MARKDOWN_CASES:
        html = page.evaluate("s => window.B12Markdown.render(s)", source)
        for needle in present:
            assert needle in html, (source, html)
        for needle in absent:
            assert needle not in html, (source, html)
    # what the browser builds from it has no script, handler or non-http link
    page.evaluate("""cases => { const box = document.createElement('div'); box.id = 'md-probe';
        box.innerHTML = cases.map(c => window.B12Markdown.render(c)).join(''); document.body.appendChild(box); }""",
                  [c[0] for c in MARKDOWN_CASES])
    bad = page.evaluate("""() => { const box = document.getElementById('md-probe');
        const out = [...box.querySelectorAll('script, img, iframe, object, embed, style')].map(e => e.tagName);
        for (const e of box.querySelectorAll('*')) for (const a of e.attributes)
            if (a.name.startsWith('on')) out.push(e.tagName + '@' + a.name);
        for (const a of box.querySelectorAll('a')) if (!/^https?:\\/\\//.test(a.getAttribute('href'))) out.push(a.href);
        return out; }""")
    assert bad == []


def test_committed_screenshots_cover_every_family() -> None:
    for family in FAMILY_SCENARIOS:
        path = SCREENSHOTS / f"{family}.png"
        assert path.is_file(), f"{path} missing: take it in the reference sandbox (README, card screenshots)"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_every_fixture_scenario_fits_the_sandbox_card_width_and_its_links_answer(page: Any, live_server: str) -> None:
    """For every fixture scenario, /preview renders each card 560 px wide (the reference sandbox's
    column, where overflow is clipped): nothing inside a card is wider than the card, and every link
    to the service itself (the explanation page) answers 200. Guideline links point outside this
    machine, which has no internet: they are checked to be absolute https URLs only."""
    checked_cards = 0
    own_links: set[str] = set()
    for s in load_scenarios():
        evaluate_fixture(page, f"{s['patient']}.{s['hook']}")
        cards = page.locator("article.cds-card")
        for index in range(cards.count()):
            card = cards.nth(index)
            width = card.evaluate("c => c.getBoundingClientRect().width")
            assert width <= 561, (s["patient"], width)
            overflow = card.evaluate("""c => [c, ...c.querySelectorAll('*')]
                .filter(e => e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).overflowX !== 'visible'
                             || e.getBoundingClientRect().right > c.getBoundingClientRect().right + 1)
                .map(e => e.tagName + ':' + (e.textContent || '').slice(0, 40))""")
            assert overflow == [], (s["patient"], s["hook"], overflow)
            for href in card.locator("a").evaluate_all("as => as.map(a => a.getAttribute('href'))"):
                assert href.startswith(("https://", "http://127.0.0.1", live_server)), href
                if href.startswith(live_server):
                    own_links.add(href)
            checked_cards += 1
    assert checked_cards >= 70
    # the detector sees an overflow when there is one: an unbreakable 300-character token in a card
    probe = page.locator("article.cds-card").first
    probe.evaluate("c => { const s = document.createElement('span'); s.textContent = 'x'.repeat(300); "
                   "c.querySelector('.cds-card__detail').appendChild(s); }")
    assert probe.evaluate("c => c.scrollWidth > c.clientWidth + 1")
    assert own_links, "every card links to its explanation page on the service"
    for href in sorted(own_links):
        with urllib.request.urlopen(href, timeout=10) as response:
            assert response.status == 200, href
