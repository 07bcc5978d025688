"""Load generators: wrk (Debian package) when present, else a bounded Python one.

Both return the same dict: requests, seconds, rps, p50/p95/p99/max (ms), errors (socket errors and
timeouts), non2xx. Only 127.0.0.1 URLs are accepted, and every run is bounded by its duration.
"""

from __future__ import annotations

import http.client
import json
import math
import multiprocessing as mp
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

LUA = r"""
wrk.method = "%(method)s"
%(body)s
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCHJSON {\"requests\":%%d,\"duration_us\":%%d,\"connect\":%%d,\"read\":%%d,\"write\":%%d," ..
    "\"status\":%%d,\"timeout\":%%d,\"p50\":%%d,\"p95\":%%d,\"p99\":%%d,\"max\":%%d}\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
"""
LUA_BODY = r"""
wrk.headers["Content-Type"] = "application/json"
local f = assert(io.open("%s", "rb"))
wrk.body = f:read("*all")
f:close()
"""


def check_local(url: str) -> None:
    if urlsplit(url).hostname != "127.0.0.1":
        raise ValueError(f"load is only ever sent to 127.0.0.1, not {url}")


def ensure_wrk(log: callable = print) -> str | None:  # type: ignore[valid-type]
    """wrk's path; installs Debian's package if absent and possible (apt-get update only on failure)."""
    found = shutil.which("wrk")
    if found:
        return found
    if not shutil.which("apt-get"):
        return None
    log("wrk not found: apt-get install -y wrk")
    for attempt in (["apt-get", "install", "-y", "wrk"], ["apt-get", "update"], ["apt-get", "install", "-y", "wrk"]):
        try:
            r = subprocess.run(attempt, capture_output=True, timeout=300,
                               env={"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
        except (OSError, subprocess.TimeoutExpired):
            return None
        if attempt[1] == "install" and r.returncode == 0:
            return shutil.which("wrk")
        if attempt[1] == "update" and r.returncode != 0:
            return None
        if attempt[1] == "install":
            log("apt-get install failed; apt-get update, then retry")
    return shutil.which("wrk")


def run_wrk(wrk: str, url: str, method: str, body_path: Path | None, *, connections: int, threads: int,
            duration_s: float, workdir: Path, timeout_s: int = 10) -> dict:
    check_local(url)
    script = workdir / f"wrk-{abs(hash((url, str(body_path)))) % 10**8}.lua"
    body = LUA_BODY % str(body_path) if body_path else ""
    script.write_text(LUA % {"method": method, "body": body})
    threads = max(1, min(threads, connections))
    argv = [wrk, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration_s))}s", f"--timeout={timeout_s}s",
            "-s", str(script), url]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=duration_s + timeout_s + 30)
    m = re.search(r"BENCHJSON (\{.*\})", r.stdout)
    if r.returncode != 0 or not m:
        raise RuntimeError(f"wrk failed ({r.returncode}): {r.stdout[-1500:]} {r.stderr[-1500:]}")
    raw = json.loads(m.group(1))
    seconds = raw["duration_us"] / 1e6
    return {
        "tool": "wrk",
        "requests": raw["requests"],
        "seconds": seconds,
        "rps": raw["requests"] / seconds if seconds else 0.0,
        "p50": raw["p50"] / 1000, "p95": raw["p95"] / 1000, "p99": raw["p99"] / 1000, "max": raw["max"] / 1000,
        "errors": raw["connect"] + raw["read"] + raw["write"] + raw["timeout"],
        "non2xx": raw["status"],
    }


# --- fallback: a Python load generator (processes x threads, one keep-alive-capable connection each) --
def _conn_loop(host: str, port: int, method: str, path: str, body: bytes | None, stop_at: float,
               lat: list[float], counters: dict[str, int], lock: threading.Lock) -> None:
    headers = {"Content-Type": "application/json"} if body is not None else {}
    conn: http.client.HTTPConnection | None = None
    while time.monotonic() < stop_at:
        t0 = time.perf_counter()
        try:
            if conn is None:
                conn = http.client.HTTPConnection(host, port, timeout=10)
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            dt = time.perf_counter() - t0
            ok = 200 <= resp.status < 300
            if resp.will_close:
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException):
            if conn is not None:
                conn.close()
            conn = None
            with lock:
                counters["errors"] += 1
            continue
        lat.append(dt)
        if not ok:
            with lock:
                counters["non2xx"] += 1
    if conn is not None:
        conn.close()


def _proc_main(args: tuple, queue: mp.Queue) -> None:  # type: ignore[type-arg]
    host, port, method, path, body, n_threads, stop_at = args
    lock = threading.Lock()
    counters = {"errors": 0, "non2xx": 0}
    lats: list[list[float]] = [[] for _ in range(n_threads)]
    threads = [threading.Thread(target=_conn_loop, args=(host, port, method, path, body, stop_at, lats[i],
                                                         counters, lock), daemon=True) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=max(0.0, stop_at - time.monotonic()) + 15)
    queue.put(([x for lst in lats for x in lst], counters))


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return math.nan
    k = max(0, min(len(sorted_values) - 1, math.ceil(q / 100 * len(sorted_values)) - 1))
    return sorted_values[k]


def run_python(url: str, method: str, body_path: Path | None, *, connections: int, threads: int,
               duration_s: float, **_: object) -> dict:
    check_local(url)
    parts = urlsplit(url)
    body = body_path.read_bytes() if body_path else None
    n_procs = max(1, min(threads, connections))
    per = [connections // n_procs + (1 if i < connections % n_procs else 0) for i in range(n_procs)]
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    start = time.monotonic()
    stop_at = start + duration_s
    procs = [ctx.Process(target=_proc_main, args=((parts.hostname, parts.port, method, parts.path, body, n,
                                                   stop_at), queue)) for n in per if n]
    for p in procs:
        p.start()
    lat: list[float] = []
    errors = non2xx = 0
    for _ in procs:
        got, counters = queue.get(timeout=duration_s + 60)
        lat.extend(got)
        errors += counters["errors"]
        non2xx += counters["non2xx"]
    for p in procs:
        p.join(timeout=10)
    seconds = time.monotonic() - start
    lat.sort()
    return {
        "tool": "python",
        "requests": len(lat),
        "seconds": seconds,
        "rps": len(lat) / seconds,
        "p50": percentile(lat, 50) * 1000, "p95": percentile(lat, 95) * 1000, "p99": percentile(lat, 99) * 1000,
        "max": (lat[-1] * 1000) if lat else math.nan,
        "errors": errors,
        "non2xx": non2xx,
    }
