"""The production profile refuses to start with anything unsafe configured."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from cds_service import create_app
from cds_service.config import ConfigError


@pytest.fixture
def production(tmp_path):
    return {"ENV": "production", "CORS_ORIGINS": "https://ehr.example.org",
            "DATABASE_URL": f"sqlite:///{tmp_path}/p.db"}


def public_jwks() -> dict:
    jwk = json.loads(ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP384R1()).public_key()))
    jwk.update(kid="k1", alg="ES384", use="sig")
    return {"keys": [jwk]}


def test_production_refuses_to_start_without_client_authentication(production):
    with pytest.raises(ConfigError, match="CDS_AUTH_REQUIRED"):
        create_app(production)


def test_production_refuses_cors_wildcard(production):
    with pytest.raises(ConfigError, match="CDS_CORS_ORIGINS"):
        create_app({**production, "CORS_ORIGINS": "*"})


def test_production_starts_with_trusted_issuers_and_protects_discovery(production):
    issuers = json.dumps([{"iss": "https://ehr.example.org", "jwks": public_jwks()}])
    app = create_app({**production, "AUTH_REQUIRED": True, "TRUSTED_ISSUERS": issuers,
                      "PUBLIC_BASE_URL": "https://cds.example.org"})
    client = app.test_client()
    response = client.get("/cds-services")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/healthz").status_code == 200


def test_production_refuses_debug_mode(production):
    with pytest.raises(ConfigError, match="debug"):
        create_app({**production, "DEBUG": True})
