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
  # Debian packages the tests start for real: Chromium for the browser tests (Playwright cannot
  # download its own browsers here) and PostgreSQL for the storage tests (run on SQLite and PostgreSQL).
  packages=()
  [ -x /usr/bin/chromium ] || packages+=(chromium)
  compgen -G "/usr/lib/postgresql/*/bin/initdb" > /dev/null || packages+=(postgresql)
  if [ ${#packages[@]} -gt 0 ]; then
    if [ "$(id -u)" = "0" ]; then
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -q && apt-get install -y -q --no-install-recommends "${packages[@]}" \
        || echo "warning: installing ${packages[*]} failed: those tests will be skipped (or fail under CI=true)" >&2
    else
      echo "warning: ${packages[*]} missing and this is not root: those tests will be skipped" \
           "(or fail under CI=true); install with: sudo apt-get install -y ${packages[*]}" >&2
    fi
  fi
fi
