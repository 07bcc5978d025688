"""Turning JWK / JWK Set documents into the public keys we verify client JWTs with.

Only what CDS Hooks recommends is usable: EC P-384 keys (ES384) and RSA keys of at least 2048 bits
(RS384). Each key is bound to exactly ONE algorithm here, from trusted configuration, so the token's
own `alg` header can never pick how a key is interpreted (RFC 8725 §2.1, algorithm confusion).

Two modes:
- strict (keys an administrator put in the configuration): anything unusable is a start-up error
  with a message naming the key, because a silently skipped key is a confusing 401 later;
- lenient (documents fetched from a JWKS URL): unusable entries are skipped, so an issuer that
  also publishes, say, encryption keys in the same set keeps working.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ec import SECP384R1, EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from jwt.exceptions import PyJWTError

from .errors import SecurityConfigError

ALLOWED_ALGORITHMS = frozenset({"ES384", "RS384"})
MIN_RSA_BITS = 2048
MAX_KID_LENGTH = 256
# Members that only a private JWK has: a public JWK Set containing them means a private key leaked.
_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")

PublicKey = EllipticCurvePublicKey | RSAPublicKey


@dataclass(frozen=True)
class VerificationKey:
    """A public key and the single JWS algorithm it may verify (ES384 or RS384)."""

    kid: str
    alg: str
    public_key: PublicKey


class _Unusable(Exception):
    """One JWK cannot be used; the message says why (never includes key material)."""


def _parse_key(jwk: Any) -> VerificationKey | None:
    """One JWK -> key; None when it is legitimately not for us (e.g. an encryption key)."""
    if not isinstance(jwk, Mapping):
        raise _Unusable("is not a JSON object")
    if "use" in jwk and jwk["use"] != "sig":
        return None
    key_ops = jwk.get("key_ops")
    if key_ops is not None and (not isinstance(key_ops, list) or "verify" not in key_ops):
        return None
    kid = jwk.get("kid")
    if not isinstance(kid, str) or not kid or len(kid) > MAX_KID_LENGTH:
        raise _Unusable(f"needs a 'kid' (non-empty string of at most {MAX_KID_LENGTH} characters)")
    private = [m for m in _PRIVATE_MEMBERS if m in jwk]
    if private:
        raise _Unusable(f"kid '{kid}' contains private key material ({', '.join(private)}); publish public keys only")
    kty = jwk.get("kty")
    declared = jwk.get("alg")
    text = json.dumps(dict(jwk))
    try:
        if kty == "EC":
            if jwk.get("crv") != "P-384":
                raise _Unusable(f"kid '{kid}': EC keys must use curve P-384 (ES384), got {jwk.get('crv')!r}")
            alg = "ES384"
            ec_key = ECAlgorithm.from_jwk(text)
            if not isinstance(ec_key, EllipticCurvePublicKey) or not isinstance(ec_key.curve, SECP384R1):
                raise _Unusable(f"kid '{kid}' is not an EC P-384 public key")
            key: PublicKey = ec_key
        elif kty == "RSA":
            alg = "RS384"
            rsa_key = RSAAlgorithm.from_jwk(text)
            if not isinstance(rsa_key, RSAPublicKey):
                raise _Unusable(f"kid '{kid}' is not an RSA public key")
            if rsa_key.key_size < MIN_RSA_BITS:
                raise _Unusable(f"kid '{kid}': RSA key has {rsa_key.key_size} bits, at least {MIN_RSA_BITS} "
                                "required")
            key = rsa_key
        else:
            raise _Unusable(f"kid '{kid}': key type {kty!r} is not supported (only EC P-384 and RSA)")
    except (PyJWTError, ValueError, TypeError, KeyError, AttributeError) as exc:
        if isinstance(exc, _Unusable):
            raise
        raise _Unusable(f"kid '{kid}' is not a valid {kty} public JWK") from None
    if declared is not None and declared != alg:
        raise _Unusable(f"kid '{kid}': declares alg {declared!r}; only {alg} is accepted for this key")
    return VerificationKey(kid=kid, alg=alg, public_key=key)


def parse_jwk_set(document: Any, *, where: str, strict: bool) -> dict[str, VerificationKey]:
    """A JWK Set ({"keys": [...]}) -> {kid: key}.

    strict=True raises SecurityConfigError naming `where` and the key; strict=False skips
    unusable entries (and ambiguous duplicate kids) and keeps the rest.
    """
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        if strict:
            raise SecurityConfigError(f"{where}: a JWK Set must be a JSON object with a 'keys' array")
        return {}
    result: dict[str, VerificationKey] = {}
    duplicates: set[str] = set()
    for index, jwk in enumerate(document["keys"]):
        try:
            key = _parse_key(jwk)
        except _Unusable as exc:
            if strict:
                raise SecurityConfigError(f"{where}: keys[{index}] {exc}") from None
            continue
        if key is None:
            continue
        if key.kid in result or key.kid in duplicates:
            if strict:
                raise SecurityConfigError(f"{where}: keys[{index}] kid '{key.kid}' appears more than once")
            duplicates.add(key.kid)  # ambiguous: which one did the client mean? use neither
            result.pop(key.kid, None)
            continue
        result[key.kid] = key
    return result
