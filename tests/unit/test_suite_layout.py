"""The suite stays in layers: every test module lives in tests/unit, http, integration or browser."""

from __future__ import annotations

from tests.support.project import TESTS

LAYERS = {"unit", "http", "integration", "browser"}


def test_every_test_module_lives_in_a_layer_directory() -> None:
    misplaced = sorted(str(path.relative_to(TESTS)) for path in TESTS.rglob("test_*.py")
                       if path.relative_to(TESTS).parts[0] not in LAYERS)
    assert not misplaced, f"move into tests/unit, http, integration or browser: {misplaced}"
