"""The framework floor: the least a Flask + gunicorn CDS service can do per request.

It reads the body exactly as the service does (cds_service.api.http_json.read_json_body: content-type
check, MAX_CONTENT_LENGTH cap, one orjson.loads) and answers an empty card list with json_response.
It is served by the service's own `cds_service.cli.serve` (the factory swapped for this one), so the
gunicorn settings (sync workers, worker count, keep-alive, max_requests, timeouts) are the service's
by construction, not a copy that can drift.

    .venv/bin/python -m bench.floor_app --host 127.0.0.1 --port 8090 --workers 3
"""

from __future__ import annotations

import argparse
from types import SimpleNamespace
from typing import Any

from flask import Flask, Response

MAX_BODY_BYTES = 5 * 1024 * 1024  # the service's default CDS_MAX_BODY_BYTES


def create_floor_app(config: Any = None) -> Flask:
    from cds_service.api.http_json import json_response, read_json_body

    app = Flask("bench_floor")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    # cli.serve reads start-up settings (e.g. the metrics port) from the app state; give it the real
    # Settings (from the same CDS_* environment) and nothing else, so the gunicorn setup is identical.
    from cds_service.config import load_settings

    app.extensions["b12_cds"] = SimpleNamespace(settings=load_settings(config))

    @app.post("/cds-services/<service_id>")
    def call_service(service_id: str) -> Response:
        body = read_json_body()
        if not isinstance(body, dict):
            return json_response({"error": "not an object"}, 400)
        return json_response({"cards": []})

    @app.get("/cds-services")
    def discovery() -> Response:
        return json_response({"services": []})

    return app


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.floor_app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, required=True)
    args = parser.parse_args()
    if args.host != "127.0.0.1":
        raise SystemExit("the benchmark floor binds 127.0.0.1 only")

    import cds_service
    from cds_service import cli

    cds_service.create_app = create_floor_app  # cli.serve does `from . import create_app` at call time
    cli.serve(args.host, args.port, args.workers)


if __name__ == "__main__":
    main()
