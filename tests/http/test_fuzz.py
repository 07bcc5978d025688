"""Fuzzing: schemathesis against openapi.yaml for every endpoint, hypothesis against prefetch.

Bounded example counts keep CI fast; the property is the same everywhere: no 5xx, and every
response conforms to the OpenAPI document (status code, content type, body schema).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from cds_service import create_app
from tests.support.fhir import patient_view_request, searchset
from tests.support.project import EVALUATION_TIME

_DB = Path(tempfile.mkdtemp(prefix="b12-fuzz-")) / "fuzz.db"
APP = create_app({"TESTING": True, "EVALUATION_TIME": EVALUATION_TIME, "DATABASE_URL": f"sqlite:///{_DB}"})
schema = schemathesis.openapi.from_wsgi("/openapi.yaml", APP)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_endpoint_survives_generated_requests(case):
    case.call_and_validate(checks=CHECKS)


JSON_LEAVES = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
FIELDS = (
    "status",
    "code",
    "subject",
    "effectiveDateTime",
    "valueQuantity",
    "valueString",
    "referenceRange",
    "category",
    "issued",
    "interpretation",
    "clinicalStatus",
    "onsetDateTime",
    "medicationCodeableConcept",
    "dosageInstruction",
    "authoredOn",
    "verificationStatus",
    "id",
)


@st.composite
def malformed_resource(draw) -> dict:
    """A plausible resource of a type the rules read, with some fields replaced by arbitrary JSON."""
    resource_type = draw(
        st.sampled_from(
            [
                "Observation",
                "Condition",
                "MedicationRequest",
                "MedicationStatement",
                "Procedure",
                "ServiceRequest",
                "Encounter",
            ]
        )
    )
    resource = {"resourceType": resource_type, "id": "r1", "subject": {"reference": "Patient/p1"}}
    for field in draw(st.lists(st.sampled_from(FIELDS), min_size=1, max_size=4, unique=True)):
        resource[field] = draw(JSON_VALUES)
    return resource


@given(
    resources=st.lists(malformed_resource(), min_size=1, max_size=3),
    key=st.sampled_from(["labs", "conditions", "medicationRequests", "procedures", "serviceRequests"]),
)
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
def test_malformed_fhir_in_prefetch_is_never_a_500(resources, key):
    body = patient_view_request(**{key: searchset(*resources)})
    response = APP.test_client().post(
        "/cds-services/b12-patient-view", data=json.dumps(body), content_type="application/json"
    )
    assert response.status_code in (200, 400), response.get_data(as_text=True)
    if response.status_code == 400:
        assert response.get_json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize("depth", [100, 5000])
def test_deeply_nested_json_is_answered_without_a_500(depth):
    """orjson refuses nesting deeper than 1024 (400); shallower nesting in an unused resource is ignored."""
    encounter = {"resourceType": "Encounter", "id": "e1", "marker": "DEEP"}
    body = json.dumps(patient_view_request(procedures=searchset(encounter)))
    nested = '{"x":' * depth + "{}" + "}" * depth
    raw = body.replace('"DEEP"', nested, 1)
    response = APP.test_client().post(
        "/cds-services/b12-patient-view", data=raw, content_type="application/json"
    )
    assert response.status_code == (400 if depth > 1024 else 200)
    assert response.get_json()["resourceType" if depth > 1024 else "cards"] is not None
