"""hooks/*.json usageRequirements says what a client really needs (issue 15).

Against an open FHIR server (the reference sandbox sends no fhirAuthorization) the service reads
missing prefetch keys without a token, so the text must not claim fhirAuthorization is required;
and it must name every prefetch key the service file marks as required.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.project import PROJECT

HOOKS = sorted((PROJECT / "hooks").glob("*.json"))


@pytest.mark.parametrize("path", HOOKS, ids=lambda p: p.stem)
def test_usage_requirements_name_the_required_keys_and_an_optional_token(path: Path):
    service = json.loads(path.read_text(encoding="utf-8"))
    text = service["usageRequirements"]
    assert "fhirAuthorization is needed only if" in text and "open server works without it" in text
    assert "CDS_FHIR_SERVER_ALLOWLIST" in text and "412" in text
    for key, spec in service["prefetch"].items():
        assert key in text, f"{path.name}: usageRequirements does not name prefetch key {key}"
        if spec.get("required"):
            required_part = text.split("are required", 1)[0]
            assert key in required_part, f"{path.name}: {key} is required but not listed as required"
