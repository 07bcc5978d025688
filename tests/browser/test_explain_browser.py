"""The rule explanation pages in Chromium against the real server (`b12-cds serve`), with JWT on.

A card's "How this rule works" link opens /explain/<family> in a plain browser tab: the page must
render (every threshold row visible, no horizontal overflow at the sandbox's card width and on a
desktop), load only its own stylesheet, and answer without a client JWT even when verification is on.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from cds_service.knowledge import load_knowledge
from tests.support.server import start_server, stop_server

FAMILIES = ("mma-testing", "folate-without-b12", "urgent-neuro-review", "b12-untreated", "nitrous-oxide-risk",
            "b12-testing")


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    key = ec.generate_private_key(ec.SECP384R1())
    jwk = {**json.loads(ECAlgorithm.to_jwk(key.public_key())), "kid": "k1", "alg": "ES384", "use": "sig"}
    tmp: Path = tmp_path_factory.mktemp("explain-server")
    env = {"CDS_AUTH_REQUIRED": "true",
           "CDS_TRUSTED_ISSUERS": json.dumps([{"iss": "https://ehr.example.org", "jwks": {"keys": [jwk]}}])}
    process, base = start_server(tmp, env)
    try:
        yield base
    finally:
        stop_server(process)


@pytest.mark.parametrize("width", [560, 1100])
def test_every_explanation_page_renders_in_chromium_without_a_token(browser: Any, auth_server: str, width: int):
    kb = load_knowledge()
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    requested: list[str] = []
    errors: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    try:
        for family in FAMILIES:
            response = page.goto(f"{auth_server}/explain/{family}")
            assert response is not None and response.status == 200, family
            assert page.locator("h1").inner_text() == kb.families[family].title
            rows = page.locator("#thresholds tbody tr")
            assert rows.count() == len(kb.families[family].thresholds)
            for index in range(rows.count()):
                assert rows.nth(index).is_visible()
            styled = page.evaluate("getComputedStyle(document.querySelector('main')).maxWidth")
            assert styled != "none", "the stylesheet did not load"
            overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
            assert overflow <= 0, f"{family} overflows horizontally by {overflow}px at {width}px"
            for href in page.eval_on_selector_all("#guidelines a", "els => els.map(e => e.href)"):
                assert href.startswith("https://"), href
        assert page.goto(f"{auth_server}/cds-services").status == 401  # verification is on
    finally:
        context.close()
    foreign = [url for url in requested if not url.startswith(auth_server + "/")]
    assert not foreign, f"the page loaded something from elsewhere: {foreign}"
    assert not [e for e in errors if "401" not in e], errors
