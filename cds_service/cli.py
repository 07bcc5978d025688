"""Command line: `b12-cds serve | evaluate FILE | check FILE | knowledge | explain-token ...`.

(Also `python -m cds_service ...`.)

`serve` runs gunicorn in-process with the same app factory the tests use, so the Docker entry point,
the README command and CI all start the identical server.
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import sys
import tempfile
from collections.abc import MutableMapping, Sequence
from datetime import UTC
from pathlib import Path
from typing import Any

import orjson

from .errors import ServiceError
from .startup import StartupError


def default_workers() -> int:
    """Rules are CPU-bound (tooling-notes 5: sync workers saturate the cores), so one worker per core
    plus one to cover a worker blocked on FHIR I/O; capped so a big host does not exhaust memory."""
    return min((os.cpu_count() or 1) + 1, 9)


def prepare_metrics_dir(environ: MutableMapping[str, str] = os.environ) -> tuple[str, bool]:
    """Point PROMETHEUS_MULTIPROC_DIR at an empty directory before prometheus_client is imported.

    Workers write their samples there and any worker's /metrics sums them. A directory given by the
    operator is emptied of old sample files (stale files from a previous run would be added to the
    new run's counters); otherwise a fresh temporary one is made. Returns (path, created_here).
    """
    path = environ.get("PROMETHEUS_MULTIPROC_DIR") or environ.get("prometheus_multiproc_dir")
    if path:
        os.makedirs(path, exist_ok=True)
        for name in os.listdir(path):
            if name.endswith(".db"):
                os.remove(os.path.join(path, name))
        environ["PROMETHEUS_MULTIPROC_DIR"] = path
        return path, False
    path = tempfile.mkdtemp(prefix="b12-cds-metrics-")
    environ["PROMETHEUS_MULTIPROC_DIR"] = path
    return path, True


def serve(host: str, port: int, workers: int) -> None:
    from gunicorn.app.base import BaseApplication

    metrics_dir, created = prepare_metrics_dir()  # before anything imports prometheus_client

    from . import create_app

    try:
        app = create_app()  # fail fast in the master: a broken service file never forks workers
    except BaseException:
        if created:
            shutil.rmtree(metrics_dir, ignore_errors=True)
        raise
    metrics_port = app.extensions["b12_cds"].settings.metrics_port

    def when_ready(_arbiter: Any) -> None:
        if metrics_port:  # Prometheus scrapes here without a client JWT; keep this port cluster-internal
            from prometheus_client import CollectorRegistry, start_http_server
            from prometheus_client.multiprocess import MultiProcessCollector

            registry = CollectorRegistry()
            MultiProcessCollector(registry)
            start_http_server(metrics_port, addr=host, registry=registry)

    def child_exit(_arbiter: Any, worker: Any) -> None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)

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
            self.cfg.set("when_ready", when_ready)
            self.cfg.set("child_exit", child_exit)

        def load(self) -> Any:
            return app

    # Everything loaded so far (modules, knowledge tables, compiled patterns, the warmed-up state) lives
    # for the whole process: freeze it out of the garbage collector before forking, so the collections a
    # request's allocations trigger scan only that request's objects (and workers do not dirty the
    # shared pages by touching their GC headers).
    gc.freeze()
    master_pid = os.getpid()
    try:
        _Server().run()
    finally:
        # Forked workers run this `finally` too when they exit (gunicorn re-raises SystemExit in the
        # child): only the master may remove the metrics directory, or the first worker restart would
        # delete it under the live workers and every later request would fail.
        if created and os.getpid() == master_pid:
            shutil.rmtree(metrics_dir, ignore_errors=True)


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
    engine = Engine(st.knowledge, st.engine.clock)  # no card gate: the CLI neither suppresses nor records
    base_url = st.settings.public_base_url or None  # cards link to /explain there (default: the local server)
    try:
        if isinstance(body, dict) and body.get("resourceType") == "Bundle":
            resources = [e["resource"] for e in body.get("entry", []) if isinstance(e, dict) and "resource" in e]
            patients = [r for r in resources if r.get("resourceType") == "Patient"]
            if len(patients) != 1:
                raise SystemExit(f"{path}: a Bundle must hold exactly one Patient")
            service = st.services[service_id or "b12-patient-view"]
            evaluation = engine.evaluate_resources(
                service, patient_id=patients[0]["id"], hook=service.hook, resources=resources, context={},
                base_url=base_url,
            )
        else:
            hook = body.get("hook") if isinstance(body, dict) else None
            candidates = [s for s in st.services.values() if s.hook == hook]
            service = st.services[service_id] if service_id else (candidates[0] if candidates else None)
            if service is None:
                raise SystemExit(f"{path}: no service handles hook '{hook}'")
            evaluation = engine.evaluate(service, parse_hook_request(body, service.hook), base_url=base_url)
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


def check(path: Path, as_json: bool) -> int:
    """Full R4 validation of a request or Bundle file, every problem by path; exit 1 when any is found.

    Off the hot path on purpose: the service reads only what its rules use and names what it leaves
    out; this is where an integrator sees everything else that is wrong with their data.
    """
    from .fhir.conformance import check_document, report_text
    from .knowledge import load_knowledge

    report = check_document(_load_json(path), load_knowledge())
    if as_json:
        print(orjson.dumps(report.as_dict(), option=orjson.OPT_INDENT_2).decode())
    else:
        print(report_text(report))
    return 1 if report.problem_count or any(r.service.startswith("left out") for r in report.resources) else 0


def _database():
    from .config import load_settings
    from .storage.db import make_engine

    settings = load_settings()
    return settings, make_engine(settings.database_url)  # make_engine runs the migrations


def report(since: str | None, as_csv: bool) -> int:
    from datetime import datetime

    from .reporting import build_report, report_csv, report_table

    start = None
    if since:
        try:
            start = datetime.fromisoformat(since.replace("Z", "+00:00"))
        except ValueError:
            raise SystemExit(f"--since: '{since}' is not a date (YYYY-MM-DD)") from None
        start = start if start.tzinfo else start.replace(tzinfo=UTC)
    _, db = _database()
    result = build_report(db, start)
    print(report_csv(result) if as_csv else report_table(result), end="" if as_csv else "\n")
    return 0


def purge(days: int | None) -> int:
    from datetime import datetime, timedelta

    from .storage.cards_store import purge_before

    settings, db = _database()
    keep = days if days is not None else settings.retention_days
    if keep < 1:
        raise SystemExit("--days must be at least 1")
    removed = purge_before(db, datetime.now(UTC) - timedelta(days=keep))
    print(f"purged records older than {keep} days: {removed['issued_cards']} issued cards, "
          f"{removed['feedback']} feedback rows")
    return 0


def migrate() -> int:
    _database()
    print("database schema is at the latest revision")
    return 0


def knowledge() -> int:
    from .knowledge import knowledge_table, load_knowledge

    print(knowledge_table(load_knowledge()))
    return 0


def explain_token(token_arg: str, aud: str | None, at: str | None, fetch: bool) -> int:
    """Print why the configured verification would accept or refuse a client JWT (exit 0 / 1 / 2)."""
    from datetime import datetime

    from .security.diagnose import diagnose_token

    if token_arg == "-":
        token = sys.stdin.read()
    elif Path(token_arg).is_file():
        token = Path(token_arg).read_text(encoding="utf-8")
    else:
        token = token_arg
    token = token.strip().removeprefix("Bearer ").strip()
    moment = None
    if at:
        try:
            moment = datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp()
        except ValueError:
            raise SystemExit(f"--at: '{at}' is not an ISO 8601 date-time") from None
    diagnosis = diagnose_token(token, os.environ, aud=aud, at=moment, fetch=fetch)
    print("\n".join(diagnosis.lines))
    if diagnosis.reason == "config":
        return 2
    return 0 if diagnosis.accepted else 1


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
    p_check = sub.add_parser("check", help="full R4 validation of a CDS Hooks request or FHIR Bundle file, every "
                             "problem by path, and what the service does with each resource")
    p_check.add_argument("file", type=Path)
    p_check.add_argument("--json", action="store_true", help="print the report as JSON")
    sub.add_parser("knowledge", help="print the active knowledge (codes, thresholds) with sources")
    p_report = sub.add_parser("report", help="card performance per family and hook (shown, accepted, overridden)")
    p_report.add_argument("--since", help="only cards and feedback from this date (YYYY-MM-DD or ISO 8601)")
    p_report.add_argument("--csv", action="store_true", help="print CSV instead of a table")
    p_purge = sub.add_parser("purge", help="delete issued cards and feedback older than CDS_RETENTION_DAYS")
    p_purge.add_argument("--days", type=int, help="override CDS_RETENTION_DAYS for this run")
    sub.add_parser("migrate", help="create or upgrade the database schema (also done at start-up)")
    p_token = sub.add_parser("explain-token", help="say why a client JWT would be refused (the 401 body never does)")
    p_token.add_argument("token", help="the JWT, a file holding it, or - for stdin (a 'Bearer ' prefix is fine)")
    p_token.add_argument("--aud", help="the exact URL the client called (default: aud is not checked)")
    p_token.add_argument("--at", help="check as of this instant (ISO 8601), e.g. a captured token's iat")
    p_token.add_argument("--no-fetch", action="store_true", help="never download JWK Sets (configured keys only)")
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except StartupError as exc:
        # A setting or data file to fix, named in the message: one line, no traceback (startup.py).
        print(f"b12-cds: cannot start: {exc.one_line()}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    if args.command == "serve":
        serve(args.host, args.port, args.workers)
        return 0
    if args.command == "evaluate":
        return evaluate(args.file, args.service, args.as_of, args.json)
    if args.command == "check":
        return check(args.file, args.json)
    if args.command == "report":
        return report(args.since, args.csv)
    if args.command == "purge":
        return purge(args.days)
    if args.command == "migrate":
        return migrate()
    if args.command == "explain-token":
        return explain_token(args.token, args.aud, args.at, not args.no_fetch)
    return knowledge()


if __name__ == "__main__":
    sys.exit(main())
