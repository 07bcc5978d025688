"""Every error leaves as JSON with a FHIR OperationOutcome: ours, Flask's 404/405/413, and bugs."""

from __future__ import annotations

import logging
import traceback
from typing import Any

from flask import Flask, Response, g, jsonify
from werkzeug.exceptions import HTTPException

from ..errors import ServiceError, operation_outcome

log = logging.getLogger("cds_service.api")

_HTTP_CODES = {404: "not-found", 405: "not-supported", 413: "too-long", 415: "not-supported", 400: "invalid"}


def _outcome_response(status: int, body: dict[str, Any]) -> Response:
    response = jsonify(body)
    response.status_code = status
    return response


def _where(exc: BaseException) -> str:
    """'module.py:123 in function' of the innermost frame: enough to find a bug, no data from it."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "unknown"
    frame = frames[-1]
    return f"{frame.filename.rsplit('/', 2)[-2:][-1]}:{frame.lineno} in {frame.name}"


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ServiceError)
    def service_error(exc: ServiceError) -> Response:
        g.error_code = exc.code
        return _outcome_response(exc.status, exc.outcome())

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        message = {
            404: "no such endpoint; the service catalogue is at GET /cds-services",
            405: "method not allowed on this endpoint",
            413: "request body too large (CDS_MAX_BODY_BYTES)",
        }.get(status, exc.description or exc.name)
        response = _outcome_response(status, operation_outcome(message, code=_HTTP_CODES.get(status, "processing")))
        valid_methods = getattr(exc, "valid_methods", None)
        if status == 405 and valid_methods:
            response.headers["Allow"] = ", ".join(valid_methods)
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        # A bug: log the type and where (no message, it may hold data) and answer 500 without details.
        log.error("unhandled error", exc_info=exc,
                  extra={"fields": {"request_id": g.get("request_id"), "where": _where(exc)}})
        return _outcome_response(
            500,
            operation_outcome(
                "internal error; the service logged it with request id " + str(g.get("request_id", "?")),
                code="exception",
            ),
        )
