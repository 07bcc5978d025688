"""Start a throwaway PostgreSQL cluster on 127.0.0.1 for the storage tests (real server, no mock).

Uses Debian's PostgreSQL binaries (scripts/bootstrap.sh test installs the `postgresql` package). As
root the cluster runs as the `postgres` user. Without the binaries the tests skip locally with a
visible reason; in CI (CI=true) that is a failure.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass

import pytest

from tests.support.sekmet import free_port


def _bin_dir() -> str | None:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    return next((c for c in candidates if os.path.exists(os.path.join(c, "initdb"))), None)


@dataclass
class Postgres:
    url: str
    data_dir: str
    bin_dir: str
    run_as: list[str]

    def stop(self) -> None:
        subprocess.run([*self.run_as, f"{self.bin_dir}/pg_ctl", "-D", self.data_dir, "-m", "fast", "-w", "stop"],
                       check=False, capture_output=True)
        shutil.rmtree(os.path.dirname(self.data_dir), ignore_errors=True)


def start_postgres() -> Postgres:
    bin_dir = _bin_dir()
    if bin_dir is None:
        message = "PostgreSQL server binaries not installed (apt-get install postgresql)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    root = tempfile.mkdtemp(prefix="b12-pg-")
    run_as: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    data = os.path.join(root, "data")
    port = free_port()
    subprocess.run([*run_as, f"{bin_dir}/initdb", "-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8"],
                   check=True, capture_output=True)
    subprocess.run([*run_as, f"{bin_dir}/pg_ctl", "-D", data, "-l", os.path.join(root, "pg.log"), "-w", "start",
                    "-o", f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off -c max_connections=200"],
                   check=True, capture_output=True)
    deadline = time.monotonic() + 20
    while subprocess.run([f"{bin_dir}/pg_isready", "-h", "127.0.0.1", "-p", str(port)],
                         capture_output=True).returncode != 0:
        if time.monotonic() > deadline:
            pytest.fail("PostgreSQL did not become ready")
        time.sleep(0.1)
    subprocess.run([f"{bin_dir}/psql", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-c",
                    "CREATE DATABASE cds"], check=True, capture_output=True)
    return Postgres(f"postgresql+psycopg://postgres@127.0.0.1:{port}/cds", data, bin_dir, run_as)
