#!/usr/bin/env bash
# One command for the whole benchmark (floor vs service, scaling, profile); see bench/run.py --help.
#   bash bench/run.sh [--duration 10] [--warmup 3] [--connections 8] [--workers N] [--out DIR] ...
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh test  # .venv with the service, and sekmet-fhir for the no-prefetch workload
exec env PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" .venv/bin/python -m bench "$@"
