"""In-process measurements: cost per prefetch resource (scaling) and cProfile of the hot path.

Runs in its own process (bench.run starts it with stderr to a file, so the service's INFO JSON logs
are written, as in production, but not to the terminal):

    .venv/bin/python -m bench.inprocess --out DIR [--quick]

Method: the real app from `create_app()` (same env as the served one), requests through Flask's test
client (`app.test_client().post`): body read + orjson, marshmallow request schema, prefetch gather,
the read pass (typed forms of the read fields), normalisation, rules, cards, logging; no sockets, no
gunicorn. Response validation runs only in test/debug mode, so not here (as in production).
Each point is the median of repeated calls (at least 5, more until ~1.5 s per point). Engine stage
times (Evaluation.timings_ms) come from separate direct `Engine.evaluate` calls.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import statistics
import sys
import time
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parent.parent
SIZES = (10, 100, 1000, 5000)
TYPES = ("Observation", "Encounter", "Condition", "MedicationRequest", "Procedure")


def make_app(workdir: Path) -> Any:
    os.environ["CDS_EVALUATION_TIME"] = "2026-11-01T12:00:00Z"
    os.environ["CDS_DATABASE_URL"] = f"sqlite:///{workdir / 'inprocess.db'}"
    from cds_service import create_app

    return create_app()


def timed_median(fn: Any, budget_s: float, min_reps: int = 5, max_reps: int = 300) -> tuple[float, int]:
    fn()  # warm
    samples: list[float] = []
    started = time.perf_counter()
    while len(samples) < max_reps and (len(samples) < min_reps or time.perf_counter() - started < budget_s):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples), len(samples)


def post_fn(client: Any, path: str, body: bytes) -> Any:
    def call() -> None:
        r = client.post(path, data=body, content_type="application/json")
        if r.status_code != 200:
            raise RuntimeError(f"{path}: {r.status_code} {r.get_data(as_text=True)[:300]}")

    return call


def stage_medians(app: Any, body: bytes, reps: int) -> dict[str, float]:
    import orjson

    from cds_service.protocol.request import parse_hook_request

    st = app.extensions["b12_cds"]
    service = st.services["b12-patient-view"]
    acc: dict[str, list[float]] = {}
    for _ in range(reps):
        t0 = time.perf_counter()
        req = parse_hook_request(orjson.loads(body), "patient-view")
        parse_ms = (time.perf_counter() - t0) * 1000
        ev = st.engine.evaluate(service, req, None)
        for k, v in {"parse_ms": parse_ms, **ev.timings_ms}.items():
            acc.setdefault(k, []).append(v)
    return {k: statistics.median(v) for k, v in acc.items()}


def fit(xs: list[float], ys: list[float]) -> tuple[float, float, float]:
    """Least-squares slope, intercept and R^2."""
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    intercept = my - slope * mx
    ss_tot = sum((y - my) ** 2 for y in ys)
    ss_res = sum((y - (intercept + slope * x)) ** 2 for x, y in zip(xs, ys, strict=True))
    return slope, intercept, 1 - ss_res / ss_tot if ss_tot else 1.0


def scaling(app: Any, quick: bool) -> dict[str, Any]:
    from bench.workloads import dumps, prefetch_resource_count, request_unfiltered, scaling_chart

    client = app.test_client()
    path = "/cds-services/b12-patient-view"
    budget = 0.5 if quick else 1.5
    mixed = []
    for n in SIZES:
        body = request_unfiltered(scaling_chart(n, "mixed"), "patient-view")
        raw = dumps(body)
        med, reps = timed_median(post_fn(client, path, raw), budget)
        stages = stage_medians(app, raw, 3 if n >= 1000 else 7)
        mixed.append({"size": n, "resources": prefetch_resource_count(body), "bytes": len(raw), "ms": med * 1000,
                      "reps": reps, "stages_ms": stages})
    slope, intercept, r2 = fit([p["resources"] for p in mixed], [p["ms"] for p in mixed])
    base = mixed[0]
    for p in mixed[1:]:
        p["us_per_added_resource"] = (p["ms"] - base["ms"]) * 1000 / (p["resources"] - base["resources"])
    per_type = []
    for rt in TYPES:
        pts = {}
        for n in (10, 1000):
            raw = dumps(request_unfiltered(scaling_chart(n, rt), "patient-view"))
            med, reps = timed_median(post_fn(client, path, raw), budget)
            pts[n] = med * 1000
        per_type.append({"type": rt, "ms_10": pts[10], "ms_1000": pts[1000],
                         "us_per_resource": (pts[1000] - pts[10]) * 1000 / 990})
    return {"mixed": mixed, "slope_us_per_resource": slope * 1000, "intercept_ms": intercept, "r2": r2,
            "per_type": per_type}


def validation_costs(quick: bool) -> dict[str, dict[str, float]]:
    """µs per resource, by type: the typed read form (msgspec, what a request pays for a resource that
    can matter) against a full R4B model_validate (what `b12-cds check` pays, and requests paid before)."""
    import msgspec
    from fhir.resources.R4B import get_fhir_model_class

    from bench.workloads import Chart
    from cds_service.fhir.forms import FORMS

    c = Chart(seed=5)
    samples = {"Observation": c.relevant_lab, "Condition": c.condition, "MedicationRequest": c.medication_request,
               "MedicationStatement": c.medication_statement, "Procedure": c.procedure,
               "ServiceRequest": c.service_request}
    out: dict[str, dict[str, float]] = {"read_form": {}, "r4b": {}}
    for rt, make in samples.items():
        resources = [make() for _ in range(200)]
        form, model = FORMS[rt], get_fhir_model_class(rt)

        def read(resources: list = resources, form: Any = form) -> None:
            for r in resources:
                msgspec.convert(r, form)

        def r4b(resources: list = resources, model: Any = model) -> None:
            for r in resources:
                model.model_validate(r)

        for name, fn in (("read_form", read), ("r4b", r4b)):
            med, _ = timed_median(fn, 0.2 if quick else 0.5)
            out[name][rt] = med / len(resources) * 1e6
    return out


def profile(app: Any, path: str, body: bytes, reps: int, outfile: Path, top: int = 25) -> dict[str, Any]:
    client = app.test_client()
    call = post_fn(client, path, body)
    for _ in range(3):
        call()
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    for _ in range(reps):
        call()
    prof.disable()
    wall = time.perf_counter() - t0
    text = io.StringIO()
    stats = pstats.Stats(prof, stream=text)
    stats.sort_stats("cumulative").print_stats(60)
    stats.sort_stats("tottime").print_stats(30)
    outfile.write_text(text.getvalue())
    total = stats.total_tt  # type: ignore[attr-defined]
    rows = []
    skip = ("werkzeug/test.py", "flask/testing.py", "flask/app.py", "bench/inprocess.py", "~")
    for (filename, line, func), (_cc, nc, tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        if any(s in filename for s in skip) or filename == "~":
            continue
        rows.append({"function": f"{short(filename)}:{line}({func})", "ncalls_per_req": nc / reps,
                     "cum_ms_per_req": ct * 1000 / reps, "tot_ms_per_req": tt * 1000 / reps,
                     "cum_share": ct / total if total else 0.0})
    by_cum = sorted(rows, key=lambda r: -r["cum_ms_per_req"])[:top]
    by_tot = sorted(rows, key=lambda r: -r["tot_ms_per_req"])[:15]
    return {"reps": reps, "profiled_ms_per_req": wall * 1000 / reps, "by_cumulative": by_cum, "by_tottime": by_tot,
            "file": str(outfile)}


def short(filename: str) -> str:
    for marker in ("site-packages/", str(PROJECT) + "/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.inprocess")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--skip-scaling", action="store_true")
    parser.add_argument("--skip-profile", action="store_true")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if str(PROJECT) not in sys.path:
        sys.path.insert(0, str(PROJECT))
    from bench.workloads import build_workloads

    app = make_app(args.out)
    result: dict[str, Any] = {"method": "in-process, Flask test client, median of repeated calls"}
    workloads = build_workloads()
    client = app.test_client()
    result["single_request_ms"] = {}
    for name in ("typical", "heavy", "order-sign"):
        w = workloads[name]
        med, reps = timed_median(post_fn(client, w.path, w.body), 0.5 if args.quick else 1.5)
        result["single_request_ms"][name] = {"ms": med * 1000, "reps": reps}
    if not args.skip_scaling:
        result["scaling"] = scaling(app, args.quick)
        result["validate_us_per_resource"] = validation_costs(args.quick)
    if not args.skip_profile:
        result["profile"] = {
            "typical": profile(app, workloads["typical"].path, workloads["typical"].body, 40 if args.quick else 150,
                               args.out / "profile-typical.txt"),
            "heavy": profile(app, workloads["heavy"].path, workloads["heavy"].body, 3 if args.quick else 8,
                             args.out / "profile-heavy.txt"),
        }
    (args.out / "inprocess.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
