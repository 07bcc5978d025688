"""PHI/token leak check over the logs of the whole test session.

Every record the service logs during the suite is formatted exactly as in production (JSON) and
kept; at the end of the session (tests/conftest.py) the text is scanned for the fixture patients'
names and birth dates and for every token the tests use. A hit fails the run.
"""

from __future__ import annotations

import io
import json
import logging
import re

from cds_service.logging_setup import JsonFormatter
from tests.support.project import FIXTURES

LOG_BUFFER = io.StringIO()
TEST_TOKENS = ("tok-secret", "secret-token-xyz", "tok-never-echoed", "sekmet-test-token-4c1d")


def capture_logs() -> None:
    """Send every service and root log record, JSON-formatted, into LOG_BUFFER (once per session)."""
    capture = logging.StreamHandler(LOG_BUFFER)
    capture.setFormatter(JsonFormatter())
    capture.setLevel(logging.DEBUG)
    logging.getLogger("cds_service").addHandler(capture)
    logging.getLogger().addHandler(capture)


def _forbidden_strings() -> set[str]:
    forbidden = set(TEST_TOKENS)
    for path in (FIXTURES / "patients").glob("*.json"):
        bundle = json.loads(path.read_text())
        for entry in bundle.get("entry", []):
            resource = entry.get("resource", {})
            if resource.get("resourceType") == "Patient":
                for name in resource.get("name", []):
                    forbidden.update(n for n in name.get("given", []) if len(n) > 3)
                    if len(name.get("family", "")) > 3:
                        forbidden.add(name["family"])
                if resource.get("birthDate"):
                    forbidden.add(resource["birthDate"])
    return forbidden


def find_log_leaks(text: str) -> list[str]:
    leaks = [s for s in sorted(_forbidden_strings()) if s in text]
    if re.search(r"eyJ[A-Za-z0-9_-]{10,}\.", text):
        leaks.append("a JWT")
    return leaks
