"""Chromium for the browser tests: Debian's /usr/bin/chromium driven by Playwright.

Without Chromium the tests are skipped with the reason shown, except under CI=true, where a missing
browser fails the run (scripts/bootstrap.sh test installs it).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path(os.environ.get("B12_CHROMIUM", "/usr/bin/chromium"))  # override only to test the skip
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def chromium() -> Path:
    ci = os.environ.get("CI", "").strip().lower() == "true"

    def unavailable(reason: str) -> None:
        if ci:
            pytest.fail(f"CI=true but {reason}")
        warnings.warn(f"browser tests skipped: {reason}", stacklevel=2)  # shown in the summary even with -q
        pytest.skip(f"browser tests skipped: {reason}")

    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        unavailable("the playwright package is missing (pip install -e '.[test]')")
    if not CHROMIUM.exists():
        unavailable(f"{CHROMIUM} is missing (scripts/bootstrap.sh test, or apt-get install -y chromium)")
    return CHROMIUM


@pytest.fixture(scope="module")
def browser(chromium: Path) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()
