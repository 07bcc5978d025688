#!/usr/bin/env bash
# Set up (first run) and start the service on http://127.0.0.1:8080 with embedded defaults (SQLite).
# Extra arguments go to `b12-cds serve`, e.g. scripts/run.sh --port 9000 --host 0.0.0.0
set -euo pipefail
cd "$(dirname "$0")/.."
# Set-up output only when set-up fails, so a start-up error is the one line the service prints.
[ -x .venv/bin/python ] || echo "first run: creating .venv and installing the service (about a minute)"
if ! setup_log=$(bash scripts/bootstrap.sh 2>&1); then
  printf '%s\n' "$setup_log" >&2
  exit 1
fi
exec .venv/bin/b12-cds serve "$@"
