#!/usr/bin/env bash
# Set up (first run) and start the service on http://127.0.0.1:8080 with embedded defaults (SQLite).
# Extra arguments go to `b12-cds serve`, e.g. scripts/run.sh --port 9000 --host 0.0.0.0
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/b12-cds serve "$@"
