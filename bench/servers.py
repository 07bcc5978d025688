"""Start and stop the processes under test (all bound to 127.0.0.1), and watch worker memory."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parent.parent
VENV_PY = PROJECT / ".venv" / "bin" / "python"
SEKMET = PROJECT / ".fhir-venv" / "bin" / "sekmet"
SEKMET_TOKEN = "bench-token-7f3a"
EVALUATION_TIME = "2026-11-01T12:00:00Z"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: process exited with {proc.returncode} before it answered")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout_s:.0f} s")


@dataclass
class Proc:
    name: str
    base: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def start_gunicorn(name: str, argv: list[str], env: dict[str, str], workdir: Path, port: int,
                   ready_path: str) -> Proc:
    log_path = workdir / f"{name}.log"
    log = open(log_path, "wb")  # noqa: SIM115 - kept open for the child's lifetime
    proc = subprocess.Popen(argv, cwd=PROJECT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(base + ready_path, proc)
    except RuntimeError:
        proc.kill()
        raise RuntimeError(f"{name} did not start; see {log_path}:\n{log_path.read_text()[-2000:]}") from None
    return Proc(name, base, proc, log_path)


def base_env(workdir: Path, name: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CDS_") and k.lower() != "prometheus_multiproc_dir"}
    env["PYTHONPATH"] = str(PROJECT)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if name:
        # An operator-given multiprocess metrics dir, as a deployment sets it: cli.serve then neither
        # creates nor removes one (a temp dir it creates itself is removed by the first worker that
        # exits through serve()'s `finally`, e.g. on a max_requests restart; see docs/performance.md).
        env["PROMETHEUS_MULTIPROC_DIR"] = str(workdir / f"metrics-{name}")
    return env


def start_service(workdir: Path, workers: int, fhir_allowlist: str = "", extra_env: dict[str, str] | None = None
                  ) -> Proc:
    """The real service via its own CLI, embedded defaults (SQLite, development, INFO JSON logs)."""
    port = free_port()
    env = base_env(workdir, "service")
    env["CDS_EVALUATION_TIME"] = EVALUATION_TIME
    env["CDS_DATABASE_URL"] = f"sqlite:///{workdir / 'bench.db'}"
    if fhir_allowlist:
        env["CDS_FHIR_SERVER_ALLOWLIST"] = fhir_allowlist
    env.update(extra_env or {})
    b12 = PROJECT / ".venv" / "bin" / "b12-cds"
    argv = [str(b12), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    return start_gunicorn("service", argv, env, workdir, port, "/healthz")


def start_floor(workdir: Path, workers: int) -> Proc:
    port = free_port()
    argv = [str(VENV_PY), "-m", "bench.floor_app", "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(workers)]
    return start_gunicorn("floor", argv, base_env(workdir, "floor"), workdir, port, "/cds-services")


def start_sekmet(workdir: Path) -> Proc:
    """sekmet-fhir as tests/support/sekmet.py starts it (bearer auth, SQLite data dir)."""
    if not SEKMET.exists():
        raise FileNotFoundError(f"{SEKMET} missing (scripts/bootstrap.sh test installs it)")
    port = free_port()
    base = f"http://127.0.0.1:{port}/fhir"
    sdir = workdir / "sekmet"
    sdir.mkdir(exist_ok=True)
    (sdir / "settings.yaml").write_text(
        f"base_url: {base}\nhost: 127.0.0.1\nport: {port}\ndata_dir: {sdir / 'data'}\n"
        f"server_auth:\n  types: [bearer]\n  tokens: [{SEKMET_TOKEN}]\nsimulator:\n  enabled: false\n"
        "log_inbound: false\n"
    )
    log_path = workdir / "sekmet.log"
    log = open(log_path, "wb")  # noqa: SIM115
    proc = subprocess.Popen([str(SEKMET), "serve", "-c", str(sdir / "settings.yaml")], cwd=sdir,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    wait_http(f"{base}/metadata", proc)
    return Proc("sekmet", base, proc, log_path)


def load_collection(base: str, bundle: dict) -> None:
    """PUT every resource of a collection Bundle in one transaction (ids kept), like the tests do."""
    entries = [{"resource": e["resource"],
                "request": {"method": "PUT", "url": f"{e['resource']['resourceType']}/{e['resource']['id']}"}}
               for e in bundle["entry"]]
    data = json.dumps({"resourceType": "Bundle", "type": "transaction", "entry": entries}).encode()
    req = urllib.request.Request(base, data=data, method="POST", headers={
        "Authorization": f"Bearer {SEKMET_TOKEN}", "Content-Type": "application/fhir+json",
        "Accept": "application/fhir+json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        if r.status >= 300:
            raise RuntimeError(f"sekmet transaction answered {r.status}")


# --- memory ------------------------------------------------------------------------------------
def children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            out.extend(int(x) for x in task.read_text().split())
        except (OSError, ValueError):
            pass
    return out


def status_kb(pid: int, key: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


@dataclass
class RssWatcher:
    """Polls the gunicorn workers (children of the master) for VmHWM, keeping the peak of every pid
    ever seen: max_requests recycles workers during a run, and a dead worker's VmHWM is gone."""

    master_pid: int
    interval_s: float = 0.25
    peak_kb: dict[int, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def poll(self) -> None:
        for pid in children(self.master_pid):
            hwm = status_kb(pid, "VmHWM")
            if hwm is not None and hwm > self.peak_kb.get(pid, 0):
                self.peak_kb[pid] = hwm

    def start(self) -> RssWatcher:
        def loop() -> None:
            while not self._stop.wait(self.interval_s):
                self.poll()

        self.poll()
        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=2)
        self.poll()

    def window(self) -> dict[int, int]:
        """Current VmHWM of the live workers (for a per-workload snapshot)."""
        self.poll()
        return {pid: kb for pid in children(self.master_pid) if (kb := status_kb(pid, "VmHWM")) is not None}


def python_version() -> str:
    return sys.version.split()[0]


# --- CPU used by others during a measurement -----------------------------------------------------
CLK_TCK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2:].split()  # fields from 3 (state) on


def _own_and_reaped(pid: int) -> tuple[float, float] | None:
    f = _stat_fields(pid)
    if f is None:
        return None
    utime, stime, cutime, cstime = (int(x) for x in f[11:15])
    return (utime + stime) / CLK_TCK, (cutime + cstime) / CLK_TCK


def _system_busy() -> tuple[float, float]:
    """(busy, steal) CPU seconds since boot, all CPUs."""
    parts = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    vals = [int(x) for x in parts]
    user, nice, system, idle, iowait, irq, softirq, steal = (vals + [0] * 8)[:8]
    return (user + nice + system + irq + softirq) / CLK_TCK, steal / CLK_TCK


class CpuAccount:
    """How much CPU the machine spent outside the benchmark's own processes during a window.

    Ours = the bench process (wrk is its reaped child), each root (gunicorn masters, sekmet) and their
    live children; a child that dies in the window is counted through its parent's reaped time, less
    what it had used before the window. Foreign = system busy - ours: other work on the machine."""

    def __init__(self, roots: list[int]) -> None:
        self.roots = [os.getpid(), *roots]

    def _snapshot(self) -> dict[str, Any]:
        own: dict[int, float] = {}
        reaped = 0.0
        for root in self.roots:
            got = _own_and_reaped(root)
            if got:
                own[root] = got[0]
                reaped += got[1]
            for child in children(root):
                c = _own_and_reaped(child)
                if c:
                    own[child] = c[0]
        busy, steal = _system_busy()
        return {"own": own, "reaped": reaped, "busy": busy, "steal": steal, "t": time.monotonic()}

    def start(self) -> None:
        self.before = self._snapshot()

    def stop(self) -> dict[str, float]:
        after = self._snapshot()
        b = self.before
        ours = after["reaped"] - b["reaped"]
        for pid, cpu in after["own"].items():
            ours += cpu - b["own"].get(pid, 0.0)
        for pid, cpu in b["own"].items():
            if pid not in after["own"]:
                ours -= cpu  # died: its whole life is in the parent's reaped time
        wall = after["t"] - b["t"]
        busy = after["busy"] - b["busy"]
        ncpu = os.cpu_count() or 1
        return {"wall_s": wall, "busy_share": busy / (wall * ncpu), "ours_share": ours / (wall * ncpu),
                "foreign_share": max(0.0, busy - ours) / (wall * ncpu),
                "steal_share": (after["steal"] - b["steal"]) / (wall * ncpu)}


def tree_cpu_s(master_pid: int) -> float:
    total = 0.0
    for pid in [master_pid, *children(master_pid)]:
        got = _own_and_reaped(pid)
        if got:
            total += got[0]
    return total


def wait_idle(master_pids: list[int], timeout_s: float = 30.0, window_s: float = 0.3) -> float:
    """Wait until the servers have drained what a load run left queued (sync workers still serve
    requests whose connections wrk already closed): no worker used more than 5% of a CPU over a
    window. Returns the seconds waited (bounded by timeout_s)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        before = sum(tree_cpu_s(p) for p in master_pids)
        time.sleep(window_s)
        if sum(tree_cpu_s(p) for p in master_pids) - before < 0.05 * window_s:
            break
    return time.monotonic() - started
