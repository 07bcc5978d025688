#!/usr/bin/env bash
# Set up (first run) and run the whole test suite: lint, types, then pytest. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh test
.venv/bin/ruff check .
.venv/bin/mypy  # cds_service/ at the strictness in pyproject.toml [tool.mypy]
exec .venv/bin/python -m pytest "$@"
