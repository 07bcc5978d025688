"""openapi.yaml: a valid OpenAPI 3.1 document that agrees with the marshmallow schemas and the real app.

Three layers:
1. the document itself is valid (openapi-spec-validator);
2. its schemas agree with `cds_service.protocol` (same fields, required fields, enums, limits, patterns,
   and the same accept/reject verdict on edge cases), and its examples pass both;
3. real responses from the app (test client) conform to it (openapi-core response validation).
"""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from marshmallow import EXCLUDE, RAISE
from openapi_core import Config, OpenAPI
from openapi_core.deserializing.media_types.util import plain_loads
from openapi_core.testing import MockRequest, MockResponse
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate as validate_openapi_document

from cds_service.errors import BadRequest
from cds_service.protocol.common import CodingSchema, DisplayedCodingSchema
from cds_service.protocol.feedback import (
    AcceptedSuggestionSchema,
    FeedbackItemSchema,
    FeedbackRequestSchema,
    OverrideReasonSchema,
    parse_feedback,
)
from cds_service.protocol.request import (
    CONTEXT_SCHEMAS,
    FHIR_ID_PATTERN,
    REFERENCE_PATTERN,
    FhirAuthorizationSchema,
    HookRequestSchema,
    OrderSelectContextSchema,
    OrderSignContextSchema,
    PatientViewContextSchema,
    parse_hook_request,
)
from cds_service.protocol.response import (
    INDICATORS,
    SUMMARY_MAX,
    ActionSchema,
    CardSchema,
    InvalidCard,
    LinkSchema,
    ResponseSchema,
    SourceSchema,
    SuggestionSchema,
    validate_response,
)
from cds_service.protocol.services import SERVICE_ID_PATTERN
from tests.support.project import EVALUATION_TIME, PROJECT

SPEC_PATH = PROJECT / "openapi.yaml"
HOOKS_DIR = PROJECT / "hooks"
HOST = "http://localhost"
PATIENT_VIEW = "b12-patient-view"
REQUIRED_KEYS = ("labs", "conditions", "medicationRequests")


# ----------------------------------------------------------------------------- helpers and fixtures


def _load_spec() -> dict[str, Any]:
    return yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))


SPEC = _load_spec()
SCHEMAS = SPEC["components"]["schemas"]


@pytest.fixture(scope="module")
def openapi() -> OpenAPI:
    # GET /openapi.yaml answers YAML text (schema: string); openapi-core has no YAML deserializer.
    config = Config(extra_media_type_deserializers={"application/yaml": plain_loads})
    return OpenAPI.from_dict(_load_spec(), config=config)


def schema_validator(name: str) -> OAS31Validator:
    """A JSON Schema validator for one component schema; `$ref`s resolve inside the document."""
    root = {"$ref": f"#/components/schemas/{name}", "components": SPEC["components"]}
    return OAS31Validator(root, format_checker=OAS31Validator.FORMAT_CHECKER)


def schema_errors(name: str, instance: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
            for e in schema_validator(name).iter_errors(instance)]


def _describe(exc: BaseException) -> str:
    """Flatten openapi-core's exception chain (schema errors hide in __cause__)."""
    parts = [f"{type(exc).__name__}: {exc}"]
    cause = exc.__cause__
    while cause is not None:
        parts.append(f"{type(cause).__name__}: {cause}")
        for err in getattr(cause, "schema_errors", ()) or ():
            parts.append(f"  - {'/'.join(map(str, err.absolute_path)) or '(root)'}: {err.message}")
        cause = cause.__cause__
    return "\n".join(parts)


def assert_conforms(openapi: OpenAPI, method: str, path: str, response: Any, *,
                    body: bytes | None = None, content_type: str = "application/json") -> None:
    """Validate a real Flask test-client response against the operation it answered."""
    request = MockRequest(HOST, method, path, data=body, content_type=content_type)
    mock = MockResponse(
        response.get_data(),
        status_code=response.status_code,
        headers=dict(response.headers),
        content_type=response.mimetype,
    )
    try:
        openapi.validate_response(request, mock)
    except Exception as exc:  # noqa: BLE001 - re-raised with the details pytest would hide
        raise AssertionError(
            f"{method} {path} -> {response.status_code} does not conform to openapi.yaml:\n{_describe(exc)}\n"
            f"body: {response.get_data(as_text=True)[:2000]}"
        ) from exc


def assert_request_conforms(openapi: OpenAPI, path: str, body: Any) -> None:
    request = MockRequest(HOST, "post", path, data=json.dumps(body).encode(), content_type="application/json")
    try:
        openapi.validate_request(request)
    except Exception as exc:  # noqa: BLE001
        raise AssertionError(f"request to {path} does not conform:\n{_describe(exc)}") from exc


def empty_searchset() -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "searchset", "total": 0}


def prefetch_keys(service_id: str) -> list[str]:
    return list(json.loads((HOOKS_DIR / f"{service_id}.json").read_text(encoding="utf-8"))["prefetch"])


def patient_view_body(*, omit: tuple[str, ...] = ()) -> dict[str, Any]:
    """A valid patient-view request: every prefetch key of hooks/b12-patient-view.json present."""
    prefetch: dict[str, Any] = {}
    for key in prefetch_keys(PATIENT_VIEW):
        if key in omit:
            continue
        prefetch[key] = {"resourceType": "Patient", "id": "p1"} if key == "patient" else empty_searchset()
    return {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/example", "patientId": "p1"},
        "prefetch": prefetch,
    }


def _make_app(tmp_path: Path, **extra: Any):
    from cds_service import create_app

    return create_app({"TESTING": True, "EVALUATION_TIME": EVALUATION_TIME,
                       "DATABASE_URL": f"sqlite:///{tmp_path}/t.db", **extra})


@pytest.fixture
def api(tmp_path: Path):
    return _make_app(tmp_path).test_client()


def example(name: str) -> Any:
    return copy.deepcopy(SPEC["components"]["examples"][name]["value"])


# ----------------------------------------------------------------------------- 1. the document


def test_document_is_valid_openapi_3_1() -> None:
    assert SPEC["openapi"] == "3.1.0"
    validate_openapi_document(_load_spec())  # raises OpenAPIValidationError on any problem


def test_document_covers_every_endpoint() -> None:
    expected = {
        "/cds-services": {"get", "options"},
        "/cds-services/{id}": {"post", "options"},
        "/cds-services/{id}/feedback": {"post", "options"},
        "/healthz": {"get"},
        "/readyz": {"get"},
        "/openapi.yaml": {"get"},
        "/explain": {"get"},
        "/explain/{family}": {"get"},
    }
    methods = {"get", "post", "put", "patch", "delete", "options", "head"}
    actual = {path: {m for m in item if m in methods} for path, item in SPEC["paths"].items()}
    assert actual == expected
    call = SPEC["paths"]["/cds-services/{id}"]["post"]["responses"]
    assert {"200", "400", "404", "412", "413", "415", "500"} <= set(call)
    fb = SPEC["paths"]["/cds-services/{id}/feedback"]["post"]["responses"]
    assert {"200", "400", "404", "413", "415"} <= set(fb)
    assert set(SPEC["paths"]["/readyz"]["get"]["responses"]) == {"200", "503"}


def test_every_error_response_is_an_operation_outcome() -> None:
    for name, response in SPEC["components"]["responses"].items():
        if name == "Preflight":
            assert "content" not in response
            continue
        assert response["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/OperationOutcome"}, name
    for path in ("/cds-services", "/cds-services/{id}", "/cds-services/{id}/feedback"):
        for method, op in SPEC["paths"][path].items():
            if method == "parameters":
                continue
            for status, response in op["responses"].items():
                if not status.startswith("2"):
                    assert "$ref" in response, f"{method} {path} {status} is not a shared error response"


def test_security_is_an_optional_bearer_jwt() -> None:
    scheme = SPEC["components"]["securitySchemes"]["cdsJwt"]
    assert (scheme["type"], scheme["scheme"], scheme["bearerFormat"]) == ("http", "bearer", "JWT")
    assert SPEC["security"] == [{}, {"cdsJwt": []}]
    # the auth middleware exempts only the probes, the explanation pages and CORS preflights
    # (cds_service.security.middleware)
    open_paths = ("/healthz", "/readyz", "/explain", "/explain/{family}")
    for path in open_paths:
        assert SPEC["paths"][path]["get"]["security"] == []
    for path, item in SPEC["paths"].items():
        for method, op in item.items():
            if method == "options":
                assert op["security"] == [], path
            elif method in ("get", "post") and path not in open_paths:
                assert "security" not in op, f"{method} {path} must inherit the optional JWT"
                assert "401" in op["responses"], f"{method} {path} needs a 401"


def test_service_id_parameter_is_enum_free_with_every_real_id_as_example() -> None:
    param = SPEC["components"]["parameters"]["ServiceId"]
    assert "enum" not in param["schema"]
    ids = {p.stem for p in HOOKS_DIR.glob("*.json")}
    assert ids and {e["value"] for e in param["examples"].values()} == ids


# ----------------------------------------------------------------------------- 2. agreement with marshmallow


STRICT_PAIRS = [
    ("HookRequest", HookRequestSchema),
    ("FhirAuthorization", FhirAuthorizationSchema),
    ("PatientViewContext", PatientViewContextSchema),
    ("OrderSelectContext", OrderSelectContextSchema),
    ("OrderSignContext", OrderSignContextSchema),
    ("CdsResponse", ResponseSchema),
    ("Card", CardSchema),
    ("Source", SourceSchema),
    ("Suggestion", SuggestionSchema),
    ("Action", ActionSchema),
    ("Link", LinkSchema),
    ("Coding", CodingSchema),
    ("OverrideReason", DisplayedCodingSchema),
    ("FeedbackRequest", FeedbackRequestSchema),
    ("FeedbackItem", FeedbackItemSchema),
]


def _inline(path: str) -> dict[str, Any]:
    node: Any = SCHEMAS
    for part in path.split("."):
        node = node[part]
    return node


INLINE_PAIRS = [
    ("FeedbackItem.properties.overrideReason", OverrideReasonSchema),
    ("FeedbackItem.properties.acceptedSuggestions.items", AcceptedSuggestionSchema),
]


@pytest.mark.parametrize(("where", "schema_cls"), [(n, c) for n, c in STRICT_PAIRS] + INLINE_PAIRS,
                         ids=[n for n, _ in STRICT_PAIRS] + [n for n, _ in INLINE_PAIRS])
def test_fields_required_and_unknown_policy_match_marshmallow(where: str, schema_cls: type) -> None:
    spec_schema = _inline(where) if "." in where else SCHEMAS[where]
    mm = schema_cls()
    assert set(spec_schema["properties"]) == set(mm.fields), "properties differ"
    assert set(spec_schema.get("required", ())) == {n for n, f in mm.fields.items() if f.required}, \
        "required fields differ"
    if mm.unknown == RAISE:
        assert spec_schema.get("additionalProperties") is False, "marshmallow RAISEs on unknown fields"
    else:
        assert mm.unknown == EXCLUDE
        assert spec_schema.get("additionalProperties", True) is not False, "marshmallow tolerates unknown fields"


def test_enums_limits_and_patterns_match_the_code() -> None:
    card = SCHEMAS["Card"]["properties"]
    assert card["summary"]["maxLength"] == SUMMARY_MAX == 139
    assert tuple(card["indicator"]["enum"]) == INDICATORS
    assert card["selectionBehavior"]["enum"] == ["at-most-one", "any"]
    assert SCHEMAS["Action"]["properties"]["type"]["enum"] == ["create", "update", "delete"]
    assert SCHEMAS["Link"]["properties"]["type"]["enum"] == ["absolute", "smart"]
    assert SCHEMAS["FeedbackItem"]["properties"]["outcome"]["enum"] == ["accepted", "overridden"]
    assert SCHEMAS["FhirReference"]["pattern"] == REFERENCE_PATTERN.pattern
    assert SCHEMAS["FhirId"]["pattern"] == FHIR_ID_PATTERN.pattern
    assert SCHEMAS["ServiceDescriptor"]["properties"]["id"]["pattern"] == SERVICE_ID_PATTERN.pattern
    hooks_with_context = {
        branch["if"]["properties"]["hook"]["const"] for branch in SCHEMAS["HookRequest"]["allOf"]
    }
    assert hooks_with_context == set(CONTEXT_SCHEMAS)


def _marshmallow_accepts_response(body: Any) -> bool:
    try:
        validate_response(body)
    except InvalidCard:
        return False
    return True


def _card(**changes: Any) -> dict[str, Any]:
    card = example("CardsWithSuggestion")["cards"][0]
    for key, value in changes.items():
        if value is None:
            card.pop(key, None)
        else:
            card[key] = value
    return card


_SUGGESTION = example("CardsWithSuggestion")["cards"][0]["suggestions"][0]
RESPONSE_CASES: list[tuple[str, dict[str, Any], bool]] = [
    ("example", {"cards": [_card()]}, True),
    ("no-cards", {"cards": []}, True),
    ("minimal-card", {"cards": [{"summary": "x", "indicator": "info", "source": {"label": "B12"}}]}, True),
    ("summary-139", {"cards": [_card(summary="s" * 139)]}, True),
    ("summary-140", {"cards": [_card(summary="s" * 140)]}, False),
    ("summary-empty", {"cards": [_card(summary="")]}, False),
    ("indicator-hard-stop", {"cards": [_card(indicator="hard-stop")]}, False),
    ("no-source", {"cards": [_card(source=None)]}, False),
    ("unknown-card-field", {"cards": [{**_card(), "priority": 1}]}, False),
    ("unknown-top-field", {"cards": [], "warnings": []}, False),
    ("suggestions-without-selectionBehavior", {"cards": [_card(selectionBehavior=None)]}, False),
    ("empty-suggestions", {"cards": [_card(suggestions=[])]}, False),
    ("two-recommended-at-most-one",
     {"cards": [_card(suggestions=[_SUGGESTION, {**_SUGGESTION, "uuid": str(uuid.uuid4())}])]}, False),
    ("two-recommended-any",
     {"cards": [_card(selectionBehavior="any",
                      suggestions=[_SUGGESTION, {**_SUGGESTION, "uuid": str(uuid.uuid4())}])]}, True),
    ("empty-detail", {"cards": [_card(detail="")]}, False),
    ("override-reason-without-display",
     {"cards": [_card(overrideReasons=[{"system": "http://x.org", "code": "a"}])]}, False),
    ("absolute-link-with-appContext",
     {"cards": [_card(links=[{"label": "l", "url": "https://x.org", "type": "absolute", "appContext": "a"}])]},
     False),
    ("smart-link-with-appContext",
     {"cards": [_card(links=[{"label": "l", "url": "https://x.org/launch", "type": "smart", "appContext": "a"}])]},
     True),
    ("delete-without-resourceId",
     {"cards": [], "systemActions": [{"type": "delete", "description": "d"}]}, False),
    ("delete-with-resourceId",
     {"cards": [], "systemActions": [{"type": "delete", "description": "d", "resourceId": "ServiceRequest/1"}]},
     True),
    ("create-without-resource", {"cards": [], "systemActions": [{"type": "create", "description": "d"}]}, False),
    ("action-without-description",
     {"cards": [], "systemActions": [{"type": "delete", "resourceId": "ServiceRequest/1"}]}, False),
    ("empty-systemActions", {"cards": [], "systemActions": []}, False),
    ("empty-extension", {"cards": [_card(extension={})]}, False),
    ("card-uuid-not-uuid", {"cards": [_card(uuid="card-1")]}, False),
]


@pytest.mark.parametrize(("body", "valid"), [(b, v) for _, b, v in RESPONSE_CASES],
                         ids=[n for n, _, _ in RESPONSE_CASES])
def test_card_schema_agrees_with_marshmallow(body: dict[str, Any], valid: bool) -> None:
    errors = schema_errors("CdsResponse", body)
    assert _marshmallow_accepts_response(body) is valid, "marshmallow verdict"
    assert (not errors) is valid, f"openapi verdict: {errors}"


def _marshmallow_accepts_request(body: Any) -> bool:
    try:
        parse_hook_request(body, body.get("hook", "patient-view"))
    except BadRequest:
        return False
    return True


def _request(change: Any = None) -> dict[str, Any]:
    body = patient_view_body()
    body["hookInstance"] = "2c7f0f1e-8d55-4a49-9d45-6a8a6b7b1f10"
    if change:
        change(body)
    return body


def _order_select(body: dict[str, Any]) -> None:
    body["hook"] = "order-select"
    body["context"]["selections"] = ["MedicationRequest/m1"]
    body["context"]["draftOrders"] = {"resourceType": "Bundle", "entry": [{"resource": {
        "resourceType": "MedicationRequest", "id": "m1", "status": "draft"}}]}


REQUEST_CASES: list[tuple[str, Any, bool]] = [
    ("valid", None, True),
    ("unknown-context-field-tolerated", lambda b: b["context"].update(newField=1), True),
    ("encounterId", lambda b: b["context"].update(encounterId="enc-1"), True),
    ("null-prefetch-value", lambda b: b["prefetch"].update(patient=None), True),
    ("no-prefetch", lambda b: b.pop("prefetch"), True),
    ("fhirServer-and-authorization", lambda b: b.update(
        fhirServer="https://ehr.example.org/fhir",
        fhirAuthorization={"access_token": "t", "token_type": "Bearer", "expires_in": 300,
                           "scope": "user/Patient.read", "subject": "cds"}), True),
    ("authorization-without-fhirServer", lambda b: b.update(
        fhirAuthorization={"access_token": "t", "token_type": "Bearer", "expires_in": 300,
                           "scope": "user/Patient.read", "subject": "cds"}), False),
    ("token-type-lowercase", lambda b: b.update(
        fhirServer="https://ehr.example.org/fhir",
        fhirAuthorization={"access_token": "t", "token_type": "bearer", "expires_in": 300,
                           "scope": "user/Patient.read", "subject": "cds"}), False),
    ("unknown-top-level-field", lambda b: b.update(user="Practitioner/1"), True),
    ("missing-context", lambda b: b.pop("context"), False),
    ("missing-hookInstance", lambda b: b.pop("hookInstance"), False),
    ("hookInstance-not-uuid", lambda b: b.update(hookInstance="abc"), False),
    ("userId-not-a-reference", lambda b: b["context"].update(userId="example"), False),
    ("patientId-is-a-reference", lambda b: b["context"].update(patientId="Patient/p1"), False),
    ("missing-patientId", lambda b: b["context"].pop("patientId"), False),
    ("fhirServer-ftp", lambda b: b.update(fhirServer="ftp://ehr.example.org/fhir"), False),
    ("empty-extension", lambda b: b.update(extension={}), False),
    ("order-select-valid", _order_select, True),
    ("order-select-without-selections",
     lambda b: (_order_select(b), b["context"].pop("selections")), False),
    ("order-select-empty-selections",
     lambda b: (_order_select(b), b["context"].update(selections=[])), False),
]


@pytest.mark.parametrize(("change", "valid"), [(c, v) for _, c, v in REQUEST_CASES],
                         ids=[n for n, _, _ in REQUEST_CASES])
def test_request_schema_agrees_with_marshmallow(change: Any, valid: bool) -> None:
    body = _request(change)
    errors = schema_errors("HookRequest", body)
    assert _marshmallow_accepts_request(copy.deepcopy(body)) is valid, "marshmallow verdict"
    assert (not errors) is valid, f"openapi verdict: {errors}"


def _marshmallow_accepts_feedback(body: Any) -> bool:
    try:
        parse_feedback(body)
    except BadRequest:
        return False
    return True


_ACCEPTED = example("FeedbackAccepted")["feedback"][0]
_OVERRIDDEN = example("FeedbackOverridden")["feedback"][0]
FEEDBACK_CASES: list[tuple[str, Any, bool]] = [
    ("accepted", {"feedback": [_ACCEPTED]}, True),
    ("overridden", {"feedback": [_OVERRIDDEN]}, True),
    ("overridden-no-reason", {"feedback": [{k: v for k, v in _OVERRIDDEN.items() if k != "overrideReason"}]}, True),
    ("overridden-comment-only", {"feedback": [{**_OVERRIDDEN, "overrideReason": {"userComment": "n/a"}}]}, True),
    ("batch", {"feedback": [_ACCEPTED, _OVERRIDDEN]}, True),
    ("offset-timestamp", {"feedback": [{**_ACCEPTED, "outcomeTimestamp": "2026-11-01T11:05:31+01:00"}]}, True),
    ("empty-feedback", {"feedback": []}, False),
    ("no-feedback", {}, False),
    ("unknown-top-field", {"feedback": [_ACCEPTED], "x": 1}, False),
    ("unknown-item-field", {"feedback": [{**_ACCEPTED, "user": "u"}]}, False),
    ("accepted-without-suggestions",
     {"feedback": [{k: v for k, v in _ACCEPTED.items() if k != "acceptedSuggestions"}]}, False),
    ("accepted-with-overrideReason", {"feedback": [{**_ACCEPTED, "overrideReason": {"userComment": "x"}}]}, False),
    ("empty-overrideReason", {"feedback": [{**_OVERRIDDEN, "overrideReason": {}}]}, False),
    ("outcome-ignored", {"feedback": [{**_OVERRIDDEN, "outcome": "ignored"}]}, False),
    ("timestamp-without-zone", {"feedback": [{**_ACCEPTED, "outcomeTimestamp": "2026-11-01T10:05:31"}]}, False),
    ("empty-card", {"feedback": [{**_ACCEPTED, "card": ""}]}, False),
    ("suggestion-without-id", {"feedback": [{**_ACCEPTED, "acceptedSuggestions": [{}]}]}, False),
    ("reason-without-system",
     {"feedback": [{**_OVERRIDDEN, "overrideReason": {"reason": {"code": "x"}}}]}, False),
]


@pytest.mark.parametrize(("body", "valid"), [(b, v) for _, b, v in FEEDBACK_CASES],
                         ids=[n for n, _, _ in FEEDBACK_CASES])
def test_feedback_schema_agrees_with_marshmallow(body: Any, valid: bool) -> None:
    errors = schema_errors("FeedbackRequest", body)
    assert _marshmallow_accepts_feedback(copy.deepcopy(body)) is valid, "marshmallow verdict"
    assert (not errors) is valid, f"openapi verdict: {errors}"


def test_request_examples_conform(openapi: OpenAPI) -> None:
    for name, path in (("PatientViewRequest", "/cds-services/b12-patient-view"),
                       ("OrderSignRequest", "/cds-services/b12-order-sign"),
                       ("FeedbackAccepted", "/cds-services/b12-patient-view/feedback"),
                       ("FeedbackOverridden", "/cds-services/b12-patient-view/feedback")):
        assert_request_conforms(openapi, path, example(name))
    parse_hook_request(example("PatientViewRequest"), "patient-view")
    parse_hook_request(example("OrderSignRequest"), "order-sign")
    parse_feedback(example("FeedbackAccepted"))
    parse_feedback(example("FeedbackOverridden"))


def test_hand_built_request_conforms(openapi: OpenAPI) -> None:
    assert_request_conforms(openapi, f"/cds-services/{PATIENT_VIEW}", patient_view_body())


def test_response_and_error_examples_conform() -> None:
    validate_response(example("CardsWithSuggestion"))
    assert not schema_errors("CdsResponse", example("CardsWithSuggestion"))
    assert not schema_errors("DiscoveryResponse", example("DiscoveryResponse"))
    for name, response in SPEC["components"]["responses"].items():
        for ex in response.get("content", {}).get("application/json", {}).get("examples", {}).values():
            assert not schema_errors("OperationOutcome", ex["value"]), name


# ----------------------------------------------------------------------------- 3. real responses


def test_discovery_conforms(api, openapi: OpenAPI) -> None:
    response = api.get("/cds-services")
    assert response.status_code == 200
    assert_conforms(openapi, "get", "/cds-services", response)
    assert {s["id"] for s in response.get_json()["services"]} == {p.stem for p in HOOKS_DIR.glob("*.json")}


def test_patient_view_200_conforms(api, openapi: OpenAPI) -> None:
    path = f"/cds-services/{PATIENT_VIEW}"
    body = patient_view_body()
    assert_request_conforms(openapi, path, body)
    response = api.post(path, json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert_conforms(openapi, "post", path, response, body=json.dumps(body).encode())
    assert isinstance(response.get_json()["cards"], list)


def b12_labs(pg_per_ml: float) -> dict[str, Any]:
    """A labs searchset with one serum B12 result (LOINC 2132-9) from 2026-09-15."""
    observation = {
        "resourceType": "Observation",
        "id": "b12-1",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2132-9"}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2026-09-15T09:00:00Z",
        "valueQuantity": {"value": pg_per_ml, "unit": "pg/mL", "system": "http://unitsofmeasure.org",
                          "code": "pg/mL"},
    }
    return {"resourceType": "Bundle", "type": "searchset", "total": 1,
            "entry": [{"fullUrl": "urn:uuid:" + str(uuid.uuid4()), "resource": observation,
                       "search": {"mode": "match"}}]}


@pytest.mark.parametrize("b12", [100, 250], ids=["deficient", "borderline"])
def test_patient_view_cards_conform(api, openapi: OpenAPI, b12: float) -> None:
    """Real cards (suggestions, override reasons, links) conform, and their uuids work as feedback."""
    path = f"/cds-services/{PATIENT_VIEW}"
    body = patient_view_body()
    body["prefetch"]["labs"] = b12_labs(b12)
    # aged 74: age >= 65 is a B12 risk factor, so a borderline result also gets a card (MMA testing)
    body["prefetch"]["patient"] = {"resourceType": "Patient", "id": "p1", "gender": "female",
                                   "birthDate": "1952-03-14"}
    assert_request_conforms(openapi, path, body)
    response = api.post(path, json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert_conforms(openapi, "post", path, response)
    cards = response.get_json()["cards"]
    assert cards, f"a serum B12 of {b12} pg/mL with no treatment should give a card"
    with_suggestion = [c for c in cards if c.get("uuid") and any(s.get("uuid") for s in c.get("suggestions", ()))]
    assert with_suggestion, "expected a card with a suggestion that can receive feedback"
    card = with_suggestion[0]
    suggestion = next(s for s in card["suggestions"] if s.get("uuid"))
    feedback = {"feedback": [{"card": card["uuid"], "outcome": "accepted",
                              "acceptedSuggestions": [{"id": suggestion["uuid"]}],
                              "outcomeTimestamp": "2026-11-01T12:01:00Z"}]}
    assert_request_conforms(openapi, path + "/feedback", feedback)
    stored = api.post(path + "/feedback", json=feedback)
    assert stored.status_code == 200
    assert_conforms(openapi, "post", path + "/feedback", stored)


def test_order_sign_cards_conform(api, openapi: OpenAPI) -> None:
    path = "/cds-services/b12-order-sign"
    body = patient_view_body()
    body["hook"] = "order-sign"
    body["prefetch"]["labs"] = b12_labs(100)
    body["context"]["draftOrders"] = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {
        "resourceType": "MedicationRequest", "id": "folic-1", "status": "draft", "intent": "order",
        "medicationCodeableConcept": {"text": "Folic acid 5 mg tablets"},
        "subject": {"reference": "Patient/p1"}}}]}
    assert_request_conforms(openapi, path, body)
    response = api.post(path, json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert_conforms(openapi, "post", path, response)
    assert response.get_json()["cards"], "folic acid over an untreated deficient B12 should give a card"


def test_wrong_hook_400_conforms(api, openapi: OpenAPI) -> None:
    path = "/cds-services/b12-order-sign"
    response = api.post(path, json=patient_view_body())  # a patient-view request to the order-sign service
    assert response.status_code == 400
    assert_conforms(openapi, "post", path, response)
    assert response.get_json()["issue"][0]["expression"] == ["hook"]


def test_patient_view_with_fhir_content_type_conforms(api, openapi: OpenAPI) -> None:
    path = f"/cds-services/{PATIENT_VIEW}"
    data = json.dumps(patient_view_body()).encode()
    response = api.post(path, data=data, content_type="application/fhir+json")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert_conforms(openapi, "post", path, response, body=data, content_type="application/fhir+json")


def test_malformed_json_400_conforms(api, openapi: OpenAPI) -> None:
    path = f"/cds-services/{PATIENT_VIEW}"
    response = api.post(path, data=b'{"hook": "patient-view",', content_type="application/json")
    assert response.status_code == 400
    assert_conforms(openapi, "post", path, response, body=b"{")
    assert response.get_json()["issue"][0]["code"] == "invalid"


def test_schema_violation_400_conforms(api, openapi: OpenAPI) -> None:
    path = f"/cds-services/{PATIENT_VIEW}"
    body = {**patient_view_body(), "hookInstance": "not-a-uuid"}
    response = api.post(path, json=body)
    assert response.status_code == 400
    assert_conforms(openapi, "post", path, response)


def test_unreadable_resource_200_with_extension_conforms(api, openapi: OpenAPI) -> None:
    path = f"/cds-services/{PATIENT_VIEW}"
    body = patient_view_body()
    broken = {"resourceType": "Observation", "id": "b12-1", "subject": {"reference": "Patient/p1"},
              "code": {"coding": [{"system": "http://loinc.org", "code": "2132-9"}]}}  # no status
    body["prefetch"]["labs"] = {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": broken}]}
    response = api.post(path, json=body)
    assert response.status_code == 200
    assert response.get_json()["extension"]["org.b12-neuro-cds.unreadable-resources"][0]["field"] == "status"
    assert_conforms(openapi, "post", path, response)


def test_unknown_service_404_conforms(api, openapi: OpenAPI) -> None:
    path = "/cds-services/no-such-service"
    response = api.post(path, json=patient_view_body())
    assert response.status_code == 404
    assert_conforms(openapi, "post", path, response)
    assert response.get_json()["issue"][0]["code"] == "not-found"


def test_unsupported_media_type_415_conforms(api, openapi: OpenAPI) -> None:
    path = f"/cds-services/{PATIENT_VIEW}"
    data = json.dumps(patient_view_body()).encode()
    response = api.post(path, data=data, content_type="text/plain")
    assert response.status_code == 415
    assert_conforms(openapi, "post", path, response, body=data, content_type="text/plain")


def test_missing_required_prefetch_412_conforms(api, openapi: OpenAPI) -> None:
    path = f"/cds-services/{PATIENT_VIEW}"
    body = patient_view_body(omit=REQUIRED_KEYS)
    assert "fhirServer" not in body
    response = api.post(path, json=body)
    assert response.status_code == 412, response.get_data(as_text=True)
    assert_conforms(openapi, "post", path, response)
    issue = response.get_json()["issue"][0]
    assert set(issue["expression"]) == {f"prefetch.{k}" for k in REQUIRED_KEYS}


def test_payload_too_large_413_conforms(tmp_path: Path, openapi: OpenAPI) -> None:
    api = _make_app(tmp_path, MAX_BODY_BYTES=1024).test_client()
    for path in (f"/cds-services/{PATIENT_VIEW}", f"/cds-services/{PATIENT_VIEW}/feedback"):
        body = patient_view_body()
        body["extension"] = {"org.example.padding": "x" * 2048}
        response = api.post(path, json=body)
        assert response.status_code == 413, path
        assert_conforms(openapi, "post", path, response)


def test_feedback_200_conforms(api, openapi: OpenAPI) -> None:
    path = f"/cds-services/{PATIENT_VIEW}/feedback"
    body = {"feedback": [example("FeedbackAccepted")["feedback"][0], example("FeedbackOverridden")["feedback"][0]]}
    assert_request_conforms(openapi, path, body)
    response = api.post(path, json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert_conforms(openapi, "post", path, response)
    assert response.get_json() == {"stored": 2, "received": 2}
    again = api.post(path, json=body)  # idempotent: duplicates received, not stored
    assert_conforms(openapi, "post", path, again)
    assert again.get_json() == {"stored": 0, "received": 2}


def test_feedback_400_conforms(api, openapi: OpenAPI) -> None:
    path = f"/cds-services/{PATIENT_VIEW}/feedback"
    bad = {"feedback": [{"card": "c1", "outcome": "accepted", "outcomeTimestamp": "2026-11-01T10:05:31Z"}]}
    response = api.post(path, json=bad)
    assert response.status_code == 400
    assert_conforms(openapi, "post", path, response)
    malformed = api.post(path, data=b"not json", content_type="application/json")
    assert malformed.status_code == 400
    assert_conforms(openapi, "post", path, malformed)


def test_feedback_404_and_415_conform(api, openapi: OpenAPI) -> None:
    body = {"feedback": [example("FeedbackAccepted")["feedback"][0]]}
    unknown = "/cds-services/no-such-service/feedback"
    response = api.post(unknown, json=body)
    assert response.status_code == 404
    assert_conforms(openapi, "post", unknown, response)
    path = f"/cds-services/{PATIENT_VIEW}/feedback"
    response = api.post(path, data=json.dumps(body), content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert_conforms(openapi, "post", path, response, content_type="application/x-www-form-urlencoded")


def test_healthz_and_readyz_conform(api, openapi: OpenAPI) -> None:
    health = api.get("/healthz")
    assert health.status_code == 200
    assert_conforms(openapi, "get", "/healthz", health)
    ready = api.get("/readyz")
    assert ready.status_code in (200, 503)
    assert_conforms(openapi, "get", "/readyz", ready)
    assert ready.status_code == 200, ready.get_json()  # a fresh test app with real knowledge is ready


def test_openapi_document_is_served(api, openapi: OpenAPI) -> None:
    response = api.get("/openapi.yaml")
    assert response.status_code == 200
    assert response.mimetype == "application/yaml"
    assert yaml.safe_load(response.get_data(as_text=True)) == SPEC
    assert_conforms(openapi, "get", "/openapi.yaml", response)


ISSUER = "https://ehr.example.org"


def _auth_app(tmp_path: Path):
    """An app with client-JWT verification on, trusting one EC P-384 key; returns (app, private key)."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from jwt.algorithms import ECAlgorithm

    from cds_service.config import ConfigError
    from cds_service.security import auth_enabled, install_jwt_auth

    private_key = ec.generate_private_key(ec.SECP384R1())
    jwk = {**json.loads(ECAlgorithm.to_jwk(private_key.public_key())), "kid": "k1", "alg": "ES384", "use": "sig"}
    auth = {"AUTH_REQUIRED": "true", "TRUSTED_ISSUERS": json.dumps([{"iss": ISSUER, "jwks": {"keys": [jwk]}}])}
    try:
        app = _make_app(tmp_path, **auth)
    except ConfigError:  # create_app does not take the auth settings (yet): wire the middleware here
        app = _make_app(tmp_path)
        install_jwt_auth(app, {f"CDS_{k}": v for k, v in auth.items()}, app.extensions["b12_cds"].db, "")
    assert auth_enabled(app)
    return app, private_key


def test_unauthorized_401_conforms(tmp_path: Path, openapi: OpenAPI) -> None:
    app, _ = _auth_app(tmp_path)
    api = app.test_client()
    calls = [("get", "/cds-services", None), ("post", f"/cds-services/{PATIENT_VIEW}", patient_view_body()),
             ("post", f"/cds-services/{PATIENT_VIEW}/feedback", {"feedback": [_ACCEPTED]}),
             ("get", "/openapi.yaml", None)]
    for method, path, body in calls:
        for headers in ({}, {"Authorization": "Bearer not-a-jwt"}):
            response = api.open(path, method=method.upper(), json=body, headers=headers)
            assert response.status_code == 401, (path, headers)
            assert_conforms(openapi, method, path, response)
    for path in ("/healthz", "/readyz"):  # probes stay open
        response = api.get(path)
        assert response.status_code in (200, 503)
        assert_conforms(openapi, "get", path, response)
    preflight = api.open("/cds-services", method="OPTIONS")
    assert preflight.status_code in (200, 204)
    assert_conforms(openapi, "options", "/cds-services", preflight, content_type="")


def test_authenticated_call_conforms(tmp_path: Path, openapi: OpenAPI) -> None:
    import time

    import jwt

    app, private_key = _auth_app(tmp_path)
    api = app.test_client()
    path = f"/cds-services/{PATIENT_VIEW}"
    now = int(time.time())
    token = jwt.encode({"iss": ISSUER, "aud": f"http://localhost{path}", "exp": now + 300, "iat": now,
                        "jti": str(uuid.uuid4())}, private_key, algorithm="ES384",
                       headers={"kid": "k1", "typ": "JWT"})
    headers = {"Authorization": f"Bearer {token}"}
    body = patient_view_body()
    request = MockRequest(HOST, "post", path, headers=headers, data=json.dumps(body).encode())
    openapi.validate_request(request)  # the bearer token satisfies the cdsJwt alternative
    response = api.post(path, json=body, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert_conforms(openapi, "post", path, response)
    replay = api.post(path, json=body, headers=headers)  # same jti again
    assert replay.status_code == 401
    assert_conforms(openapi, "post", path, replay)


@pytest.mark.parametrize("path", ["/cds-services", f"/cds-services/{PATIENT_VIEW}",
                                  f"/cds-services/{PATIENT_VIEW}/feedback"])
def test_cors_preflight_conforms(api, openapi: OpenAPI, path: str) -> None:
    response = api.open(path, method="OPTIONS", headers={
        "Origin": "https://ehr.example.org",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    })
    assert response.status_code in (200, 204)
    assert_conforms(openapi, "options", path, response, content_type="")
    assert response.headers["Access-Control-Allow-Origin"] == "*"  # TESTING default CDS_CORS_ORIGINS=*
    assert "Authorization" in response.headers["Access-Control-Allow-Headers"]
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
