"""Errors the service reports to clients, each with a fixed HTTP status and an OperationOutcome.

Every non-2xx answer carries a FHIR OperationOutcome (CDS Hooks 3.0 "Returning OperationOutcome",
conventions.md error table) so an integrator can act on it; diagnostics never echo patient data,
tokens or stack traces.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class ServiceError(Exception):
    """Base class: an error that maps to a defined HTTP status."""

    message: str
    status: int = 500
    code: str = "exception"  # FHIR issue-type
    expression: tuple[str, ...] = ()

    def __str__(self) -> str:
        return self.message

    def outcome(self) -> dict[str, Any]:
        return operation_outcome(self.message, code=self.code, expression=self.expression)


def operation_outcome(
    diagnostics: str, *, code: str = "processing", severity: str = "error", expression: tuple[str, ...] = ()
) -> dict[str, Any]:
    issue: dict[str, Any] = {"severity": severity, "code": code, "diagnostics": diagnostics}
    if expression:
        issue["expression"] = list(expression)
    return {"resourceType": "OperationOutcome", "issue": [issue]}


class BadRequest(ServiceError):
    def __init__(self, message: str, expression: tuple[str, ...] = ()) -> None:
        super().__init__(message, 400, "invalid", expression)


class UnknownService(ServiceError):
    def __init__(self, service_id: str) -> None:
        super().__init__(f"no CDS service with id '{service_id}'; see GET /cds-services", 404, "not-found")


class UnsupportedMediaType(ServiceError):
    def __init__(self, got: str) -> None:
        super().__init__(
            f"Content-Type must be application/json (got '{got or 'none'}')", 415, "not-supported"
        )



class PreconditionFailed(ServiceError):
    """Required data is absent from prefetch and cannot be fetched (CDS Hooks: 412)."""

    def __init__(self, message: str, missing: tuple[str, ...]) -> None:
        super().__init__(message, 412, "processing", tuple(f"prefetch.{k}" for k in missing))


class InvalidFhirResource(ServiceError):
    """A FHIR resource the rules need failed R4 validation."""

    def __init__(self, where: str, detail: str) -> None:
        super().__init__(f"invalid FHIR resource at {where}: {detail}", 400, "structure", (where,))
