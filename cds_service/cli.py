"""Command line: `b12-cds serve | evaluate FILE | knowledge` (also `python -m cds_service ...`).

`serve` runs gunicorn in-process with the same app factory the tests use, so the Docker entry point,
the README command and CI all start the identical server.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from .errors import ServiceError


def default_workers() -> int:
    """Rules are CPU-bound (tooling-notes 5: sync workers saturate the cores), so one worker per core
    plus one to cover a worker blocked on FHIR I/O; capped so a big host does not exhaust memory."""
    return min((os.cpu_count() or 1) + 1, 9)


def serve(host: str, port: int, workers: int) -> None:
    from gunicorn.app.base import BaseApplication

    from . import create_app

    app = create_app()  # fail fast in the master: a broken service file never forks workers

    class _Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("worker_class", "sync")
            self.cfg.set("timeout", 30)
            self.cfg.set("graceful_timeout", 10)
            self.cfg.set("keepalive", 5)
            self.cfg.set("max_requests", 10000)
            self.cfg.set("max_requests_jitter", 1000)
            self.cfg.set("accesslog", None)  # our own access log carries no query strings or PHI

        def load(self) -> Any:
            return app

    _Server().run()


def _load_json(path: Path) -> Any:
    try:
        return orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise SystemExit(f"{path}: cannot read JSON ({exc})") from None


def evaluate(path: Path, service_id: str | None, as_of: str | None, as_json: bool) -> int:
    from . import create_app
    from .app_state import AppState
    from .engine import Engine
    from .protocol.request import parse_hook_request

    overrides = {"EVALUATION_TIME": as_of} if as_of else {}
    app = create_app(overrides)
    st: AppState = app.extensions["b12_cds"]
    body = _load_json(path)
    engine: Engine = st.engine
    try:
        if isinstance(body, dict) and body.get("resourceType") == "Bundle":
            resources = [e["resource"] for e in body.get("entry", []) if isinstance(e, dict) and "resource" in e]
            patients = [r for r in resources if r.get("resourceType") == "Patient"]
            if len(patients) != 1:
                raise SystemExit(f"{path}: a Bundle must hold exactly one Patient")
            service = st.services[service_id or "b12-patient-view"]
            evaluation = engine.evaluate_resources(
                service, patient_id=patients[0]["id"], hook=service.hook, resources=resources, context={}
            )
        else:
            hook = body.get("hook") if isinstance(body, dict) else None
            candidates = [s for s in st.services.values() if s.hook == hook]
            service = st.services[service_id] if service_id else (candidates[0] if candidates else None)
            if service is None:
                raise SystemExit(f"{path}: no service handles hook '{hook}'")
            evaluation = engine.evaluate(service, parse_hook_request(body, service.hook))
    except ServiceError as exc:
        print(f"error {exc.status}: {exc.message}", file=sys.stderr)
        return 2
    cards = evaluation.response["cards"]
    if as_json:
        print(orjson.dumps(evaluation.response, option=orjson.OPT_INDENT_2).decode())
        return 0
    print(f"{len(cards)} card(s) from {service.id} as of {engine.clock().isoformat()}")
    for card in cards:
        topic = card["source"].get("topic", {}).get("code", "?")
        print(f"\n[{card['indicator'].upper()}] {topic}: {card['summary']}")
        if "detail" in card:
            print(card["detail"])
        for suggestion in card.get("suggestions", []):
            print(f"  -> suggestion: {suggestion['label']}")
    return 0


def knowledge() -> int:
    from .knowledge import knowledge_table, load_knowledge

    print(knowledge_table(load_knowledge()))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="b12-cds", description="B12 neurological safety CDS Hooks service")
    sub = parser.add_subparsers(dest="command", required=True)
    p_serve = sub.add_parser("serve", help="run the service under gunicorn")
    p_serve.add_argument("--host", default=os.environ.get("CDS_HOST", "127.0.0.1"))
    p_serve.add_argument("--port", type=int, default=int(os.environ.get("CDS_PORT", "8080")))
    p_serve.add_argument("--workers", type=int, default=int(os.environ.get("CDS_WORKERS", default_workers())))
    p_eval = sub.add_parser("evaluate", help="print the cards for a CDS Hooks request or FHIR Bundle file")
    p_eval.add_argument("file", type=Path)
    p_eval.add_argument("--service", help="service id (default: the one for the request's hook)")
    p_eval.add_argument("--as-of", help="evaluate as of this instant (ISO 8601), e.g. 2026-11-01T12:00:00Z")
    p_eval.add_argument("--json", action="store_true", help="print the raw CDS Hooks response")
    sub.add_parser("knowledge", help="print the active knowledge (codes, thresholds) with sources")
    args = parser.parse_args(argv)
    if args.command == "serve":
        serve(args.host, args.port, args.workers)
        return 0
    if args.command == "evaluate":
        return evaluate(args.file, args.service, args.as_of, args.json)
    return knowledge()


if __name__ == "__main__":
    sys.exit(main())
