#!/usr/bin/env bash
# Creates .venv (Python 3.11) and installs the service; with "test", the test tools too.
# Idempotent: a second run only checks that everything is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
fi
extras=""
[ "${1:-}" = "test" ] && extras="[test]"
.venv/bin/python -m pip install -q -e ".${extras}"
if [ "${1:-}" = "test" ]; then
  # A real FHIR server for the integration tests, in its own venv (its dependencies are not ours).
  if [ ! -x .fhir-venv/bin/sekmet ]; then
    "$PYTHON" -m venv .fhir-venv
    .fhir-venv/bin/python -m pip install -q --upgrade pip
  fi
  .fhir-venv/bin/python -m pip install -q sekmet-fhir==0.1.1
fi
