"""Client JWT authentication (CDS Hooks §JWT) with real ES384 / RS384 keys and real signed tokens.

A tiny Flask app stands in for the service (create_app is edited concurrently elsewhere); the JWKS
endpoints are served by a real HTTP server on 127.0.0.1 that counts hits, so "never fetched" is a
fact, not a mock expectation.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask, jsonify
from sqlalchemy import create_engine, func, select

from cds_service.security import (
    AuthenticationFailed,
    SecurityConfigError,
    auth_enabled,
    install_jwt_auth,
    load_auth_config,
    verify_client_jwt,
)
from cds_service.security.jwks import MAX_JWKS_BYTES, JwksFetchError, KeyStore, fetch_jwks_document
from cds_service.security.middleware import EXTENSION_KEY
from cds_service.security.replay import ReplayGuard, seen_jti_table
from tests.support.tokens import Route, Signer, claims, es384_signer, jwks, jwks_server, raw_token, rs384_signer

ISS = "https://ehr.example.org"
OTHER_ISS = "https://other-ehr.example.org"
BASE = "https://cds.example.org"
DISCOVERY = f"{BASE}/cds-services"
SERVICE = f"{BASE}/cds-services/x"
UNAUTHORIZED = {
    "resourceType": "OperationOutcome",
    "issue": [{"severity": "error", "code": "login", "diagnostics": "authentication failed"}],
}


# --------------------------------------------------------------------------- fixtures and helpers


@pytest.fixture(scope="module")
def es() -> Signer:
    return es384_signer("es-1")


@pytest.fixture(scope="module")
def rs() -> Signer:
    return rs384_signer("rs-1")


@pytest.fixture(autouse=True)
def _logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="cds_service")


def auth_env(*issuers: dict[str, Any], **extra: str) -> dict[str, str]:
    return {"CDS_AUTH_REQUIRED": "true", "CDS_TRUSTED_ISSUERS": json.dumps(list(issuers)), **extra}


def make_app(env: dict[str, str], db_path: Path, public_base_url: str = BASE) -> Flask:
    app = Flask(__name__)

    @app.get("/cds-services")
    def discovery() -> Any:
        return jsonify({"services": [{"id": "x"}]})

    @app.post("/cds-services/x")
    def service() -> Any:
        return jsonify({"cards": []})

    @app.get("/healthz")
    def healthz() -> Any:
        return jsonify({"status": "ok"})

    @app.get("/readyz")
    def readyz() -> Any:
        return jsonify({"status": "ready"})

    install_jwt_auth(app, env, create_engine(f"sqlite:///{db_path}"), public_base_url)
    return app


@pytest.fixture
def app(tmp_path: Path, es: Signer, rs: Signer) -> Flask:
    return make_app(auth_env({"iss": ISS, "jwks": jwks(es, rs)}), tmp_path / "auth.db")


@pytest.fixture
def client(app: Flask) -> Any:
    return app.test_client()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def failure_reasons(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.fields["error_code"] for r in caplog.records if r.getMessage() == "client authentication failed"]


def assert_refused(response: Any, caplog: pytest.LogCaptureFixture, reason: str) -> None:
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.get_json() == UNAUTHORIZED
    assert reason not in response.get_data(as_text=True)  # the answer never says why
    assert failure_reasons(caplog)[-1:] == [reason]  # ... but the log does


def assert_token_not_logged(caplog: pytest.LogCaptureFixture, token: str) -> None:
    signature = token.rsplit(".", 1)[-1]
    for record in caplog.records:
        text = record.getMessage() + repr(getattr(record, "fields", None))
        assert token not in text and (not signature or signature not in text)


# --------------------------------------------------------------------------- valid tokens


def test_valid_es384_on_discovery_and_service(client: Any, es: Signer, caplog: pytest.LogCaptureFixture) -> None:
    token = es.token(claims(DISCOVERY, ISS))
    response = client.get("/cds-services", headers=bearer(token))
    assert response.status_code == 200
    assert response.get_json() == {"services": [{"id": "x"}]}
    response = client.post("/cds-services/x", json={}, headers=bearer(es.token(claims(SERVICE, ISS))))
    assert response.status_code == 200
    assert_token_not_logged(caplog, token)


def test_valid_rs384(client: Any, rs: Signer) -> None:
    assert client.get("/cds-services", headers=bearer(rs.token(claims(DISCOVERY, ISS)))).status_code == 200


def test_aud_as_array_containing_the_url(client: Any, es: Signer) -> None:
    token = es.token(claims([f"{BASE}/elsewhere", DISCOVERY], ISS))
    assert client.get("/cds-services", headers=bearer(token)).status_code == 200


def test_typ_is_optional_and_case_insensitive(client: Any, es: Signer) -> None:
    assert client.get("/cds-services", headers=bearer(es.token(claims(DISCOVERY, ISS), typ=None))).status_code == 200
    assert client.get("/cds-services", headers=bearer(es.token(claims(DISCOVERY, ISS), typ="jwt"))).status_code == 200


def test_bearer_scheme_is_case_insensitive(client: Any, es: Signer) -> None:
    headers = {"Authorization": f"bearer {es.token(claims(DISCOVERY, ISS))}"}
    assert client.get("/cds-services", headers=headers).status_code == 200


def test_auth_enabled_and_claims_available(app: Flask, es: Signer) -> None:
    assert auth_enabled(app)
    seen: dict[str, Any] = {}

    @app.get("/cds-services/whoami")
    def whoami() -> Any:
        from flask import g

        seen["claims"] = g.client_claims
        return jsonify({})

    token = es.token(claims(f"{BASE}/cds-services/whoami", ISS, tenant="org-9"))
    assert app.test_client().get("/cds-services/whoami", headers=bearer(token)).status_code == 200
    assert seen["claims"].iss == ISS and seen["claims"].tenant == "org-9" and seen["claims"].alg == "ES384"


# --------------------------------------------------------------------------- algorithm attacks


def _hs384_with_public_key(rs: Signer, payload: dict[str, Any]) -> str:
    pem = rs.private_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                    serialization.PublicFormat.SubjectPublicKeyInfo)
    return raw_token({"alg": "HS384", "typ": "JWT", "kid": rs.kid}, payload, hmac_secret=pem)


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda es, rs, p: jwt.encode(p, "s" * 64, algorithm="HS384",
                                                   headers={"kid": es.kid}), id="HS384-secret"),
        pytest.param(lambda es, rs, p: _hs384_with_public_key(rs, p), id="HS384-keyed-with-RSA-public-key"),
        pytest.param(lambda es, rs, p: rs.token(p, alg="PS384"), id="PS384"),
        pytest.param(lambda es, rs, p: Signer(es.kid, "ES256", ec.generate_private_key(ec.SECP256R1())).token(p),
                     id="ES256"),
        pytest.param(lambda es, rs, p: raw_token({"alg": "none", "typ": "JWT", "kid": es.kid}, p), id="none"),
        pytest.param(lambda es, rs, p: raw_token({"alg": "NONE", "typ": "JWT", "kid": es.kid}, p, signature=b"x"),
                     id="NONE-with-signature"),
        pytest.param(lambda es, rs, p: raw_token({"typ": "JWT", "kid": es.kid}, p, signature=b"x"), id="no-alg"),
    ],
)
def test_disallowed_algorithms(make: Any, client: Any, es: Signer, rs: Signer,
                               caplog: pytest.LogCaptureFixture) -> None:
    token = make(es, rs, claims(DISCOVERY, ISS))
    assert_refused(client.get("/cds-services", headers=bearer(token)), caplog, "alg-not-allowed")


def test_rs384_header_on_an_ec_kid_is_refused(client: Any, es: Signer, rs: Signer,
                                              caplog: pytest.LogCaptureFixture) -> None:
    token = rs.token(claims(DISCOVERY, ISS), kid=es.kid)
    assert_refused(client.get("/cds-services", headers=bearer(token)), caplog, "key-alg-mismatch")


def test_signature_from_another_key_with_a_known_kid(client: Any, es: Signer,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    impostor = es384_signer(es.kid)
    token = impostor.token(claims(DISCOVERY, ISS))
    assert_refused(client.get("/cds-services", headers=bearer(token)), caplog, "bad-signature")


def test_tampered_payload(client: Any, es: Signer, caplog: pytest.LogCaptureFixture) -> None:
    header, _, signature = es.token(claims(DISCOVERY, ISS)).split(".")
    forged_payload = raw_token({}, claims(DISCOVERY, ISS, tenant="evil")).split(".")[1]
    token = f"{header}.{forged_payload}.{signature}"
    assert_refused(client.get("/cds-services", headers=bearer(token)), caplog, "bad-signature")


@pytest.mark.parametrize(("header", "reason"), [
    ({"kid": None}, "missing-kid"),
    ({"typ": "at+jwt"}, "typ-not-jwt"),
    ({"crit": ["exp"]}, "header-not-supported"),
])
def test_header_rules(header: dict[str, Any], reason: str, client: Any, es: Signer,
                      caplog: pytest.LogCaptureFixture) -> None:
    token = es.token(claims(DISCOVERY, ISS), **header)
    assert_refused(client.get("/cds-services", headers=bearer(token)), caplog, reason)


# --------------------------------------------------------------------------- claims


@pytest.mark.parametrize(("overrides", "reason"), [
    ({"exp": int(time.time()) - 120, "iat": int(time.time()) - 400}, "expired"),
    ({"nbf": int(time.time()) + 600}, "not-yet-valid"),
    ({"iat": int(time.time()) + 600, "exp": int(time.time()) + 900}, "iat-in-future"),
    ({"aud": SERVICE}, "aud-mismatch"),
    ({"aud": "https://cds.example.org/cds-services/"}, "aud-mismatch"),
    ({"aud": [SERVICE, "https://attacker.example"]}, "aud-mismatch"),
    ({"aud": None}, "missing-aud"),
    ({"iss": "https://unknown.example.org"}, "unknown-iss"),
    ({"iss": None}, "unknown-iss"),
    ({"exp": None}, "missing-exp"),
    ({"exp": "tomorrow"}, "invalid-exp"),
    ({"iat": None}, "missing-iat"),
    ({"jti": None}, "missing-jti"),
    ({"jti": "j" * 300}, "invalid-jti"),
])
def test_claim_rules(overrides: dict[str, Any], reason: str, client: Any, es: Signer,
                     caplog: pytest.LogCaptureFixture) -> None:
    token = es.token(claims(DISCOVERY, ISS, **overrides))
    assert_refused(client.get("/cds-services", headers=bearer(token)), caplog, reason)


def test_unknown_kid(client: Any, es: Signer, caplog: pytest.LogCaptureFixture) -> None:
    token = es384_signer("never-registered").token(claims(DISCOVERY, ISS))
    assert_refused(client.get("/cds-services", headers=bearer(token)), caplog, "unknown-kid")


def test_leeway_boundaries_with_injected_now(tmp_path: Path, es: Signer) -> None:
    config = load_auth_config(auth_env({"iss": ISS, "jwks": jwks(es)}, CDS_JWT_LEEWAY_S="60"))
    keys, replay = KeyStore(config), ReplayGuard(create_engine(f"sqlite:///{tmp_path / 'r.db'}"))
    now = 2_000_000_000.0

    def check(**overrides: Any) -> None:
        payload = claims(DISCOVERY, ISS, iat=int(now) - 10, exp=int(now) + 300)
        payload.update(overrides)
        verify_client_jwt(f"Bearer {es.token(payload)}", DISCOVERY, config, keys, replay, now=now)

    check(exp=int(now) - 59)  # expired 59 s ago: inside the leeway
    check(nbf=int(now) + 59, iat=int(now) + 59)
    for overrides, reason in (({"exp": int(now) - 60}, "expired"), ({"nbf": int(now) + 61}, "not-yet-valid"),
                              ({"iat": int(now) + 61}, "iat-in-future")):
        with pytest.raises(AuthenticationFailed) as info:
            check(**overrides)
        assert info.value.reason == reason


def test_tenant_allowlist(tmp_path: Path, es: Signer, caplog: pytest.LogCaptureFixture) -> None:
    client = make_app(auth_env({"iss": ISS, "jwks": jwks(es), "tenants": ["org-1"]}), tmp_path / "a.db").test_client()
    ok = es.token(claims(DISCOVERY, ISS, tenant="org-1"))
    assert client.get("/cds-services", headers=bearer(ok)).status_code == 200
    for tenant in ("org-2", None):
        token = es.token(claims(DISCOVERY, ISS, tenant=tenant))
        assert_refused(client.get("/cds-services", headers=bearer(token)), caplog, "tenant-not-allowed")


def test_without_public_base_url_the_request_url_is_the_audience(tmp_path: Path, es: Signer,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    client = make_app(auth_env({"iss": ISS, "jwks": jwks(es)}), tmp_path / "a.db", public_base_url="").test_client()
    local = es.token(claims("http://localhost/cds-services", ISS))
    assert client.get("/cds-services", headers=bearer(local)).status_code == 200
    assert_refused(client.get("/cds-services", headers=bearer(es.token(claims(DISCOVERY, ISS)))), caplog,
                   "aud-mismatch")


# --------------------------------------------------------------------------- Authorization header


@pytest.mark.parametrize(("headers", "reason"), [
    ({}, "missing-header"),
    ({"Authorization": "Bearer"}, "malformed-header"),
    ({"Authorization": "Bearer "}, "malformed-header"),
    ({"Authorization": "Basic dXNlcjpwYXNz"}, "not-bearer"),
    ({"Authorization": "Bearer a.b"}, "malformed-token"),
    ({"Authorization": "Bearer a.b.c d"}, "malformed-header"),
    ({"Authorization": "Bearer !!.??.**"}, "malformed-token"),
    ({"Authorization": "Bearer e30.e30.c2ln"}, "alg-not-allowed"),
    ({"Authorization": "Bearer bm90anNvbg.e30.c2ln"}, "malformed-token"),
])
def test_malformed_authorization(headers: dict[str, str], reason: str, client: Any,
                                 caplog: pytest.LogCaptureFixture) -> None:
    assert_refused(client.get("/cds-services", headers=headers), caplog, reason)
    assert_refused(client.post("/cds-services/x", json={}, headers=headers), caplog, reason)


def test_unknown_paths_are_refused_before_routing(client: Any, caplog: pytest.LogCaptureFixture) -> None:
    assert_refused(client.get("/no-such-thing"), caplog, "missing-header")


def test_probes_and_preflight_need_no_token(client: Any) -> None:
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    preflight = client.options("/cds-services/x", headers={
        "Origin": "https://ehr.example.org",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "Authorization, Content-Type",
    })
    assert preflight.status_code == 200
    assert client.options("/cds-services").status_code == 200


# --------------------------------------------------------------------------- replay


def test_replayed_jti_is_refused_across_two_app_instances(tmp_path: Path, es: Signer,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    env = auth_env({"iss": ISS, "jwks": jwks(es)})
    db = tmp_path / "shared.db"
    first, second = make_app(env, db).test_client(), make_app(env, db).test_client()
    token = es.token(claims(DISCOVERY, ISS))
    assert first.get("/cds-services", headers=bearer(token)).status_code == 200
    assert_refused(second.get("/cds-services", headers=bearer(token)), caplog, "replay")
    assert_refused(first.get("/cds-services", headers=bearer(token)), caplog, "replay")
    # same jti from another issuer is a different token: not a replay
    other = es384_signer("other-1")
    env2 = auth_env({"iss": ISS, "jwks": jwks(es)}, {"iss": OTHER_ISS, "jwks": jwks(other)})
    third = make_app(env2, db).test_client()
    jti = jwt.decode(token, options={"verify_signature": False})["jti"]
    assert third.get("/cds-services", headers=bearer(other.token(claims(DISCOVERY, OTHER_ISS, jti=jti)))).status_code \
        == 200


def test_invalid_tokens_do_not_burn_their_jti(client: Any, es: Signer) -> None:
    payload = claims(DISCOVERY, ISS)
    assert client.get("/cds-services", headers=bearer(es.token({**payload, "aud": SERVICE}))).status_code == 401
    assert client.get("/cds-services", headers=bearer(es.token(payload))).status_code == 200


def test_expired_jti_rows_are_purged(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'r.db'}")
    guard = ReplayGuard(engine, purge_interval_s=60)
    assert guard.first_use(ISS, "a", expires_at=1_000, now=900)
    assert not guard.first_use(ISS, "a", expires_at=1_000, now=950)
    assert guard.first_use(ISS, "b", expires_at=5_000, now=2_000)  # purge runs: row "a" is gone
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(seen_jti_table)).scalar_one() == 1


def test_unreachable_replay_store_answers_503(app: Flask, es: Signer, monkeypatch: pytest.MonkeyPatch) -> None:
    from cds_service.security.errors import ReplayStoreUnavailable

    def down(*_args: Any, **_kwargs: Any) -> bool:
        raise ReplayStoreUnavailable()

    monkeypatch.setattr(app.extensions[EXTENSION_KEY].replay, "first_use", down)
    response = app.test_client().get("/cds-services", headers=bearer(es.token(claims(DISCOVERY, ISS))))
    assert response.status_code == 503
    assert "jti" not in response.get_data(as_text=True)


# --------------------------------------------------------------------------- jku / remote JWKS


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_jku_not_on_the_allowlist_is_never_fetched(tmp_path: Path, es: Signer,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    attacker = es384_signer("attacker-1")
    with jwks_server() as server:
        allowed = server.serve_json("/jwks.json", jwks(es))
        evil = server.serve_json("/evil.json", jwks(attacker))
        env = auth_env({"iss": ISS, "jwks": jwks(es), "jku_allowlist": [allowed]},
                       {"iss": OTHER_ISS, "jwks": jwks(es)})
        client = make_app(env, tmp_path / "a.db").test_client()
        for token in (
            attacker.token(claims(DISCOVERY, ISS), jku=evil),  # attacker-hosted keys
            attacker.token(claims(DISCOVERY, OTHER_ISS), jku=allowed),  # another issuer's allowlist does not count
        ):
            assert_refused(client.get("/cds-services", headers=bearer(token)), caplog, "jku-not-allowed")
        assert server.total_hits == 0


def test_a_non_allowlisted_jku_is_ignored_and_the_configured_key_verifies(tmp_path: Path, es: Signer,
                                                                          caplog: pytest.LogCaptureFixture) -> None:
    """The README promise: such a jku is never fetched; a kid among the issuer's keys still verifies."""
    attacker = es384_signer("attacker-1")
    with jwks_server() as server:
        allowed = server.serve_json("/jwks.json", jwks(es))
        evil = server.serve_json("/evil.json", jwks(attacker))
        env = auth_env({"iss": ISS, "jwks": jwks(es), "jku_allowlist": [allowed]},
                       {"iss": OTHER_ISS, "jwks": jwks(es)})
        client = make_app(env, tmp_path / "a.db").test_client()
        tokens = (
            es.token(claims(DISCOVERY, ISS), jku=evil),  # a kid we know, a jku we do not
            es.token(claims(DISCOVERY, ISS), jku=allowed + "?x=1"),  # exact match only: ignored
            es.token(claims(DISCOVERY, OTHER_ISS), jku=allowed),  # another issuer's allowlist: ignored
        )
        caplog.clear()
        for token in tokens:
            assert client.get("/cds-services", headers=bearer(token)).status_code == 200
            assert_token_not_logged(caplog, token)
        assert server.total_hits == 0
        ignored = [r for r in caplog.records if (getattr(r, "fields", None) or {}).get("error_code") == "jku-ignored"]
        assert len(ignored) == len(tokens)


def test_pinned_key_wins_over_an_allowlisted_jku(tmp_path: Path, es: Signer) -> None:
    """The sandbox case offline: its jku points at the internet, its key is pinned out-of-band."""
    with jwks_server() as server:
        allowed = server.serve_json("/jwks.json", jwks(es))
        client = make_app(auth_env({"iss": ISS, "jwks": jwks(es), "jku_allowlist": [allowed]}),
                          tmp_path / "a.db").test_client()
        token = es.token(claims(DISCOVERY, ISS), jku=allowed)
        assert client.get("/cds-services", headers=bearer(token)).status_code == 200
        assert server.total_hits == 0


def test_allowlisted_jku_fetched_cached_and_refreshed_with_throttle(tmp_path: Path, es: Signer, rs: Signer,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    with jwks_server() as server:
        url = server.serve_json("/.well-known/jwks.json", jwks(es))
        app = make_app(auth_env({"iss": ISS, "jku_allowlist": [url]}), tmp_path / "a.db")
        clock = FakeClock()
        app.extensions[EXTENSION_KEY].keys.clock = clock
        client = app.test_client()

        def call(signer: Signer) -> Any:
            return client.get("/cds-services", headers=bearer(signer.token(claims(DISCOVERY, ISS), jku=url)))

        assert call(es).status_code == 200 and server.total_hits == 1  # fetched on first use
        assert call(es).status_code == 200 and server.total_hits == 1  # cached

        server.serve_json("/.well-known/jwks.json", jwks(es, rs))  # the client rotates in a new key
        assert_refused(call(rs), caplog, "unknown-kid")  # 1 s after the last download: throttled
        assert server.total_hits == 1
        clock.now += 61
        assert call(rs).status_code == 200 and server.total_hits == 2  # one refresh, new key found

        stranger = es384_signer("not-published")
        for _ in range(5):  # a flood of unknown kids costs at most one download per window
            assert_refused(call(stranger), caplog, "unknown-kid")
        assert server.total_hits == 2
        clock.now += 61
        assert_refused(call(stranger), caplog, "unknown-kid")
        assert_refused(call(stranger), caplog, "unknown-kid")
        assert server.total_hits == 3
        assert call(es).status_code == 200 and server.total_hits == 3


def test_configured_jwks_url_and_failed_refresh_keeps_cached_keys(tmp_path: Path, es: Signer) -> None:
    with jwks_server() as server:
        url = server.serve_json("/keys", jwks(es))
        app = make_app(auth_env({"iss": ISS, "jwks_url": url}), tmp_path / "a.db")
        clock = FakeClock()
        app.extensions[EXTENSION_KEY].keys.clock = clock
        client = app.test_client()
        assert client.get("/cds-services", headers=bearer(es.token(claims(DISCOVERY, ISS)))).status_code == 200
        server.routes["/keys"] = Route(500, b"oops")
        clock.now += 61
        newcomer = es384_signer("new")
        assert client.get("/cds-services", headers=bearer(newcomer.token(claims(DISCOVERY, ISS)))).status_code == 401
        assert server.total_hits == 2
        assert client.get("/cds-services", headers=bearer(es.token(claims(DISCOVERY, ISS)))).status_code == 200


def test_fetch_refuses_redirects_errors_and_oversized_documents(es: Signer) -> None:
    with jwks_server() as server:
        good = server.serve_json("/jwks.json", jwks(es))
        assert json.loads(fetch_jwks_document(good)) == jwks(es)
        server.routes["/moved"] = Route(302, b"", {"Location": good})
        server.routes["/big"] = Route(200, b" " * (MAX_JWKS_BYTES + 1))
        server.routes["/down"] = Route(503, b"{}")
        for path in ("/moved", "/big", "/down"):
            with pytest.raises(JwksFetchError):
                fetch_jwks_document(server.url(path))
        assert server.hits["/jwks.json"] == 1  # the redirect was not followed
    with pytest.raises(JwksFetchError):
        fetch_jwks_document(server.url("/jwks.json"))  # server gone: network error, not an exception leak


def test_remote_jwks_skips_unusable_keys(tmp_path: Path, es: Signer) -> None:
    weird = [{"kty": "oct", "kid": "h", "k": "c2VjcmV0"}, {"kty": "EC", "crv": "P-256", "kid": "p256", "x": "",
             "y": ""}, {"kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB"}, "junk", {"kid": 3}]
    with jwks_server() as server:
        url = server.serve_json("/jwks.json", {"keys": [*weird, es.jwk()]})
        client = make_app(auth_env({"iss": ISS, "jwks_url": url}), tmp_path / "a.db").test_client()
        assert client.get("/cds-services", headers=bearer(es.token(claims(DISCOVERY, ISS)))).status_code == 200


# --------------------------------------------------------------------------- auth off, configuration


def test_auth_off_lets_requests_through_with_a_loud_warning(tmp_path: Path,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    app = make_app({}, tmp_path / "a.db")
    assert not auth_enabled(app)
    assert app.test_client().get("/cds-services").status_code == 200
    assert app.test_client().post("/cds-services/x", json={}).status_code == 200
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "OFF (development)" in r.getMessage()]
    assert len(warnings) == 1


def test_issuers_from_files(tmp_path: Path, es: Signer, rs: Signer) -> None:
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "ehr.json").write_text(json.dumps(jwks(es, rs)))
    (tmp_path / "issuers.json").write_text(json.dumps([{"iss": ISS, "jwks_file": "keys/ehr.json"}]))
    config = load_auth_config({"CDS_AUTH_REQUIRED": "yes", "CDS_TRUSTED_ISSUERS_FILE": str(tmp_path / "issuers.json")})
    assert config.required and sorted(config.issuers[ISS].static_keys) == ["es-1", "rs-1"]
    assert config.leeway_s == 60 and config.jwks_refresh_min_s == 60


def _private_jwk(es: Signer) -> dict[str, Any]:
    return json.loads(jwt.algorithms.ECAlgorithm.to_jwk(es.private_key)) | {"kid": "p"}


@pytest.mark.parametrize(("env", "message"), [
    ({"CDS_AUTH_REQUIRED": "maybe"}, "CDS_AUTH_REQUIRED: 'maybe' is not a boolean"),
    ({"CDS_AUTH_REQUIRED": "true"}, "no trusted issuer is configured"),
    ({"CDS_JWT_LEEWAY_S": "301"}, "CDS_JWT_LEEWAY_S: 301 must be between 0 and 300"),
    ({"CDS_JWKS_REFRESH_MIN_S": "soon"}, "CDS_JWKS_REFRESH_MIN_S: 'soon' is not an integer"),
    ({"CDS_TRUSTED_ISSUERS": "[", "CDS_TRUSTED_ISSUERS_FILE": "x"}, "not both"),
    ({"CDS_TRUSTED_ISSUERS": "{"}, "CDS_TRUSTED_ISSUERS: not valid JSON"),
    ({"CDS_TRUSTED_ISSUERS_FILE": "/nonexistent/issuers.json"}, "CDS_TRUSTED_ISSUERS_FILE: cannot read"),
    ({"CDS_TRUSTED_ISSUERS": '{"iss": "x"}'}, "must be a non-empty JSON list"),
    ({"CDS_TRUSTED_ISSUERS": '[{"jwks_url": "https://a"}]'}, "CDS_TRUSTED_ISSUERS[0]: field 'iss'"),
    ({"CDS_TRUSTED_ISSUERS": '[{"iss": "https://a", "jwks_uri": "https://a/j"}]'},
     "CDS_TRUSTED_ISSUERS[0] (iss 'https://a'): unknown field(s) jwks_uri"),
    ({"CDS_TRUSTED_ISSUERS": '[{"iss": "https://a"}]'}, "needs a key source"),
    ({"CDS_TRUSTED_ISSUERS": '[{"iss": "https://a", "jwks_url": "ftp://a/j"}]'}, "field 'jwks_url'"),
    ({"CDS_ENV": "production", "CDS_TRUSTED_ISSUERS": '[{"iss": "https://a", "jwks_url": "http://a/j"}]'},
     "plain http, refused in production"),
    ({"CDS_ENV": "production", "CDS_TRUSTED_ISSUERS":
      '[{"iss": "https://sandbox.cds-hooks.org", "jku_allowlist": ["https://sandbox.cds-hooks.org/j"]}]'},
     "refused in production"),
    ({"CDS_TRUSTED_ISSUERS": '[{"iss": "https://a", "jku_allowlist": "https://a/j"}]'},
     "field 'jku_allowlist': must be a non-empty list"),
    ({"CDS_TRUSTED_ISSUERS": '[{"iss": "https://a", "jwks_url": "https://a/j", "tenants": []}]'}, "field 'tenants'"),
    ({"CDS_TRUSTED_ISSUERS": '[{"iss": "https://a", "jwks": {"keys": [{"kty": "oct", "kid": "h"}]}}]'},
     "keys[0] kid 'h': key type 'oct' is not supported"),
    ({"CDS_TRUSTED_ISSUERS": '[{"iss": "https://a", "jwks": {"keys": [{"kty": "RSA", "n": "AQAB", "e": "AQAB"}]}}]'},
     "keys[0] needs a 'kid'"),
    ({"CDS_TRUSTED_ISSUERS": '[{"iss": "https://a", "jwks": []}]'}, "a JWK Set must be a JSON object"),
])
def test_configuration_errors_name_the_variable_and_field(env: dict[str, str], message: str) -> None:
    with pytest.raises(SecurityConfigError) as info:
        load_auth_config(env)
    assert message in str(info.value)


def test_configuration_refuses_private_and_weak_keys(es: Signer) -> None:
    cases = [
        ({"keys": [_private_jwk(es)]}, "contains private key material"),
        ({"keys": [rs384_signer("small", bits=1024).jwk()]}, "at least 2048 required"),
        ({"keys": [es.jwk() | {"alg": "ES256"}]}, "only ES384 is accepted"),
        ({"keys": [es.jwk(), es.jwk()]}, "appears more than once"),
        ({"keys": [Signer("p256", "ES256", ec.generate_private_key(ec.SECP256R1())).jwk()]}, "curve P-384"),
    ]
    for document, message in cases:
        with pytest.raises(SecurityConfigError) as info:
            load_auth_config({"CDS_TRUSTED_ISSUERS": json.dumps([{"iss": ISS, "jwks": document}])})
        assert message in str(info.value)
        assert '"d"' not in str(info.value)


def test_bad_public_base_url_is_a_startup_error(tmp_path: Path, es: Signer) -> None:
    with pytest.raises(SecurityConfigError, match="CDS_PUBLIC_BASE_URL"):
        make_app(auth_env({"iss": ISS, "jwks": jwks(es)}), tmp_path / "a.db", public_base_url="cds.example.org")
