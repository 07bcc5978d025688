"""Exceptions of the client-authentication layer.

Kept apart from `cds_service.errors` on purpose: an `AuthenticationFailed` must never be turned into
an OperationOutcome that explains *why* a token was refused (CDS Hooks best practice: 401 with no
detail), so it is not a `ServiceError` and carries only a short reason code meant for logs.
"""

from __future__ import annotations

from ..startup import StartupError


class SecurityConfigError(StartupError):
    """The auth configuration is invalid; the message names the variable, issuer and field."""


class AuthenticationFailed(Exception):
    """A request's client JWT was refused.

    `reason` is a short internal code ("expired", "aud-mismatch", ...) for the log line only; the
    HTTP answer is the same bare 401 for every reason, so probing cannot learn which check failed.
    The exception never holds the token or any claim value.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


class ReplayStoreUnavailable(Exception):
    """The jti store (database) could not be reached: we cannot tell a replay from a first use.

    The middleware answers 503 rather than 401: the client did nothing wrong, and failing open
    (accepting without a replay check) is not an option.
    """
