"""Client authentication for the CDS service: CDS Hooks JWT verification (spec §Trusting CDS Clients).

Public API:
- install_jwt_auth(app, auth, db_engine, public_base_url) / auth_enabled(app)   (middleware)
- verify_client_jwt(...) -> Claims                                             (verify)
- load_auth_config(env) -> AuthConfig (config.Settings.auth)                   (settings)
- AuthenticationFailed, SecurityConfigError                                    (errors)
"""

from __future__ import annotations

from .errors import AuthenticationFailed, ReplayStoreUnavailable, SecurityConfigError
from .middleware import auth_enabled, install_jwt_auth
from .settings import AuthConfig, TrustedIssuer, load_auth_config
from .verify import Claims, verify_client_jwt

__all__ = [
    "AuthConfig",
    "AuthenticationFailed",
    "Claims",
    "ReplayStoreUnavailable",
    "SecurityConfigError",
    "TrustedIssuer",
    "auth_enabled",
    "install_jwt_auth",
    "load_auth_config",
    "verify_client_jwt",
]
