"""Where things are, and the instant every fixture and request is evaluated at."""

from __future__ import annotations

from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent.parent
TESTS = PROJECT / "tests"
FIXTURES = PROJECT / "fixtures"
EVALUATION_TIME = "2026-11-01T12:00:00Z"  # the fixtures are anchored here (docs/contracts.md)
