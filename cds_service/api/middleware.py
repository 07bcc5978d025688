"""Per-request plumbing: request ids, CORS for browser-based EHRs, access logs without PHI."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable

from flask import Flask, Response, g, request

from .. import metrics

log = logging.getLogger("cds_service.access")

CORS_ALLOW_HEADERS = "Authorization, Content-Type"
CORS_ALLOW_METHODS = "GET, POST, OPTIONS"


def install_middleware(app: Flask, cors_origins: Iterable[str]) -> None:
    allowed = set(cors_origins)
    allow_any = "*" in allowed

    @app.before_request
    def start() -> None:
        g.request_id = uuid.uuid4().hex
        g.started = time.perf_counter()

    @app.after_request
    def finish(response: Response) -> Response:
        origin = request.headers.get("Origin")
        if allow_any:
            response.headers["Access-Control-Allow-Origin"] = "*"
        elif origin and origin in allowed:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Vary"] = "Origin"
        response.headers["Access-Control-Allow-Headers"] = CORS_ALLOW_HEADERS
        response.headers["Access-Control-Allow-Methods"] = CORS_ALLOW_METHODS
        response.headers["Access-Control-Max-Age"] = "600"
        response.headers["X-Request-Id"] = g.get("request_id", "")
        duration_s = time.perf_counter() - g.get("started", time.perf_counter())
        metrics.observe_http(request.endpoint, (request.view_args or {}).get("service_id"), response.status_code,
                             duration_s)
        log.info(
            "request",
            extra={
                "fields": {
                    "request_id": g.get("request_id"),
                    "method": request.method,
                    "path": request.path,  # ids in the path are service ids, not patient data
                    "status": response.status_code,
                    "service_id": g.get("service_id"),
                    "hook": g.get("hook"),
                    "hook_instance": g.get("hook_instance"),
                    "error_code": g.get("error_code"),
                    "duration_ms": round(duration_s * 1000, 3),
                }
            },
        )
        return response
