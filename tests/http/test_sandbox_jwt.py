"""The CDS Hooks reference sandbox's real client JWT verifies with the issuer config the README shows.

The token in tests/data/cds-hooks-sandbox/ was captured from the sandbox itself (ES384, its kid, a
`jku` header pointing at the internet); see that folder's README for where it and the public key
come from. The README's "register the sandbox" JSON block is read from README.md, so the
documentation and this test cannot drift apart. The token's `jku` is not on any allowlist: it must
be ignored (never fetched, logged), and the inline key must verify the token.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import jwt
import pytest

from cds_service import create_app
from cds_service.security.diagnose import diagnose_token
from tests.support.project import PROJECT, TESTS
from tests.support.scenarios import load_scenarios, request_for

DATA = TESTS / "data" / "cds-hooks-sandbox"
TOKEN = (DATA / "order-select.jwt").read_text(encoding="utf-8").strip()
CLAIMS = jwt.decode(TOKEN, options={"verify_signature": False})
HEADER = jwt.get_unverified_header(TOKEN)
BASE = "http://127.0.0.1:8181"  # where the sandbox called the service when the token was captured


def readme_issuers() -> Any:
    text = (PROJECT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- sandbox-issuers:[^>]*-->\s*```json\n(.*?)```", text, re.S)
    assert match, "README.md lost its 'register the sandbox' issuers block"
    return json.loads(match.group(1))


def test_the_captured_token_is_the_sandbox_token_the_notes_describe():
    assert HEADER == {"alg": "ES384", "typ": "JWT", "kid": "44823f3d-0b01-4a6c-a80e-b9d3e8a7226f",
                      "jku": "https://sandbox.cds-hooks.org/.well-known/jwks.json"}
    assert CLAIMS["iss"] == "https://sandbox.cds-hooks.org"
    assert CLAIMS["aud"] == f"{BASE}/cds-services/b12-order-select"
    assert CLAIMS["exp"] - CLAIMS["iat"] == 300 and CLAIMS["jti"]
    readme_jwk = readme_issuers()[0]["jwks"]["keys"][0]
    assert readme_jwk == json.loads((DATA / "jwks.json").read_text(encoding="utf-8"))["keys"][0]


@pytest.fixture
def sandbox_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    issuers = tmp_path / "sandbox-issuers.json"
    issuers.write_text(json.dumps(readme_issuers()), encoding="utf-8")  # exactly the README's file
    app = create_app({"TESTING": True, "EVALUATION_TIME": "2026-11-01T12:00:00Z",
                      "DATABASE_URL": f"sqlite:///{tmp_path}/cds.db", "AUTH_REQUIRED": "true",
                      "TRUSTED_ISSUERS_FILE": str(issuers), "PUBLIC_BASE_URL": BASE})
    fetched: list[str] = []

    def no_network(url: str, *args: Any, **kwargs: Any) -> Any:
        fetched.append(url)
        raise AssertionError(f"the service tried to download {url}")

    monkeypatch.setattr("cds_service.security.jwks.requests.get", no_network)
    # The captured token was valid for five minutes after its iat: verify as of then.
    monkeypatch.setattr("cds_service.security.verify.time.time", lambda: CLAIMS["iat"] + 30)
    return app, fetched


def order_select_request() -> dict[str, Any]:
    scenario = next(s for s in load_scenarios() if s["hook"] == "order-select")
    return request_for(scenario)


def test_the_sandbox_jwt_verifies_with_the_readme_configuration(sandbox_app, caplog: pytest.LogCaptureFixture):
    app, fetched = sandbox_app
    client = app.test_client()
    response = client.post("/cds-services/b12-order-select", json=order_select_request(),
                           headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert "cards" in response.get_json()
    assert fetched == []  # the jku was never fetched ...
    codes = [(getattr(r, "fields", None) or {}).get("error_code") for r in caplog.records]
    assert "jku-ignored" in codes  # ... and the log says it was ignored
    for record in caplog.records:
        assert TOKEN.rsplit(".", 1)[1] not in record.getMessage() + repr(getattr(record, "fields", None))


def test_the_sandbox_jwt_is_still_refused_where_it_should_be(sandbox_app):
    app, _ = sandbox_app
    client = app.test_client()
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    # another endpoint: aud is the exact URL called
    assert client.post("/cds-services/b12-order-sign", json=order_select_request(), headers=bearer).status_code == 401
    assert client.post("/cds-services/b12-order-select", json=order_select_request(), headers=bearer).status_code == 200
    # the same jti again: a replay
    replay = client.post("/cds-services/b12-order-select", json=order_select_request(), headers=bearer)
    assert replay.status_code == 401 and replay.get_json()["issue"][0]["diagnostics"] == "authentication failed"
    # one flipped signature character
    tampered = TOKEN[:-2] + ("A" if TOKEN[-2] != "A" else "B") + TOKEN[-1]
    assert client.get("/cds-services", headers={"Authorization": f"Bearer {tampered}"}).status_code == 401


def test_explain_token_accepts_the_sandbox_jwt_and_names_the_aud_problem(tmp_path: Path):
    issuers = tmp_path / "sandbox-issuers.json"
    issuers.write_text(json.dumps(readme_issuers()), encoding="utf-8")
    env = {"CDS_AUTH_REQUIRED": "true", "CDS_TRUSTED_ISSUERS_FILE": str(issuers)}
    at = CLAIMS["iat"] + 30
    good = diagnose_token(TOKEN, env, aud=CLAIMS["aud"], at=at, fetch=False)
    assert good.accepted, good.lines
    assert any("ignored, never fetched" in line for line in good.lines)
    wrong = diagnose_token(TOKEN, env, aud="https://cds.example.org/cds-services/b12-order-select", at=at,
                           fetch=False)
    assert not wrong.accepted and wrong.reason == "aud-mismatch"
    assert any("CDS_PUBLIC_BASE_URL" in line for line in wrong.lines)
    late = diagnose_token(TOKEN, env, aud=CLAIMS["aud"], at=time.time() + 86_400 * 365, fetch=False)
    assert late.reason == "expired"
    assert all(TOKEN not in line for line in (*good.lines, *wrong.lines, *late.lines))


def test_explain_token_without_the_key_says_to_register_it(tmp_path: Path):
    env = {"CDS_AUTH_REQUIRED": "true", "CDS_TRUSTED_ISSUERS": json.dumps(
        [{"iss": "https://sandbox.cds-hooks.org", "jwks_url": "https://keys.example.org/jwks.json"}])}
    result = diagnose_token(TOKEN, env, aud=CLAIMS["aud"], at=CLAIMS["iat"] + 30, fetch=False)
    assert result.reason == "jku-not-allowed"
    assert any("register the issuer's public key inline" in line for line in result.lines)
    unknown = diagnose_token(TOKEN, {"CDS_AUTH_REQUIRED": "true", "CDS_TRUSTED_ISSUERS": json.dumps(
        [{"iss": "https://ehr.example.org", "jwks_url": "https://keys.example.org/jwks.json"}])}, fetch=False)
    assert unknown.reason == "unknown-iss"


def test_the_explain_token_command_prints_the_verdict_and_exits_by_it(tmp_path: Path, monkeypatch, capsys):
    from datetime import UTC, datetime

    from cds_service.cli import main

    issuers = tmp_path / "sandbox-issuers.json"
    issuers.write_text(json.dumps(readme_issuers()), encoding="utf-8")
    monkeypatch.setenv("CDS_AUTH_REQUIRED", "true")
    monkeypatch.setenv("CDS_TRUSTED_ISSUERS_FILE", str(issuers))
    at = datetime.fromtimestamp(CLAIMS["iat"] + 30, UTC).isoformat()
    token_file = DATA / "order-select.jwt"
    assert main(["explain-token", str(token_file), "--aud", CLAIMS["aud"], "--at", at, "--no-fetch"]) == 0
    assert "ACCEPTED" in capsys.readouterr().out
    assert main(["explain-token", str(token_file), "--aud", f"{BASE}/cds-services", "--at", at, "--no-fetch"]) == 1
    out = capsys.readouterr().out
    assert "REFUSED (aud-mismatch)" in out and TOKEN not in out
