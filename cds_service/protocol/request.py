"""CDS Hooks 2.0 service request: schema for the envelope and for each hook's context.

Unknown top-level fields are tolerated and reported by name (`HookRequest.ignored_fields`, logged by
the API): EHRs add vendor fields and later spec versions add members, and refusing the request would
silence the answer. Unknown *context* fields are tolerated too (hook definitions gain fields between
versions). Refused: unknown fields inside `fhirAuthorization`, whose shape the spec fixes and where a
typo (`acces_token`) would silently lose the credential, and every known field with a wrong type.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, validate, validates_schema

from ..errors import BadRequest
from .common import NonEmptyDict, flatten_errors, non_empty_list, optional_string, required_string

REFERENCE_PATTERN = re.compile(r"^[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}$")
FHIR_ID_PATTERN = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")

_reference = validate.Regexp(REFERENCE_PATTERN, error="must be a relative reference like 'Practitioner/123'")
_fhir_id = validate.Regexp(FHIR_ID_PATTERN, error="must be a bare FHIR id (not a reference)")


class FhirAuthorizationSchema(Schema):
    class Meta:
        unknown = RAISE

    access_token = required_string()
    token_type = fields.String(required=True, validate=validate.Equal("Bearer", error="must be 'Bearer'"))
    expires_in = fields.Integer(required=True, strict=True, validate=validate.Range(min=0))
    scope = required_string()
    subject = required_string()
    patient = optional_string(validate=_fhir_id)
    extension = NonEmptyDict()


class HookRequestSchema(Schema):
    class Meta:
        unknown = EXCLUDE  # named in HookRequest.ignored_fields

    hook = required_string()
    hookInstance = fields.UUID(required=True)
    fhirServer = fields.Url(schemes={"http", "https"}, require_tld=False)
    fhirAuthorization = fields.Nested(FhirAuthorizationSchema)
    context = fields.Dict(required=True)
    prefetch = fields.Dict(keys=fields.String())  # values: resource, Bundle, null or OperationOutcome
    extension = NonEmptyDict()

    @validates_schema
    def fhir_server_with_authorization(self, data: dict[str, Any], **_: Any) -> None:
        if "fhirAuthorization" in data and "fhirServer" not in data:
            raise ValidationError("fhirServer is required when fhirAuthorization is present (cds-r-1)", "fhirServer")


class PatientViewContextSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    userId = required_string(validate=_reference)
    patientId = required_string(validate=_fhir_id)
    encounterId = optional_string(validate=_fhir_id)


class OrderSelectContextSchema(PatientViewContextSchema):
    selections = non_empty_list(fields.String(validate=_reference), required=True)
    draftOrders = NonEmptyDict(required=True)


class OrderSignContextSchema(PatientViewContextSchema):
    draftOrders = NonEmptyDict(required=True)


CONTEXT_SCHEMAS: dict[str, type[Schema]] = {
    "patient-view": PatientViewContextSchema,
    "order-select": OrderSelectContextSchema,
    "order-sign": OrderSignContextSchema,
}
# Context fields usable as prefetch tokens, per hook (CDS Hooks Library: "Prefetch Token: Yes").
PREFETCH_TOKEN_FIELDS: dict[str, frozenset[str]] = {
    hook: frozenset({"userId", "patientId", "encounterId"}) for hook in CONTEXT_SCHEMAS
}

_envelope_schema = HookRequestSchema()
_ENVELOPE_FIELDS = frozenset(_envelope_schema.fields)
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


def ignored_field_names(body: dict[str, Any]) -> tuple[str, ...]:
    """Unknown top-level field names; a name that is not a plain identifier is not echoed."""
    return tuple(sorted(
        name if _SAFE_NAME.match(name) else "(unprintable name)" for name in body if name not in _ENVELOPE_FIELDS
    ))
_context_schemas = {hook: cls() for hook, cls in CONTEXT_SCHEMAS.items()}


@dataclass(frozen=True)
class HookRequest:
    hook: str
    hook_instance: str
    context: dict[str, Any]
    prefetch: dict[str, Any] | None
    fhir_server: str | None
    fhir_authorization: dict[str, Any] | None
    ignored_fields: tuple[str, ...] = ()  # unknown top-level fields, by name (safe names only)

    @property
    def patient_id(self) -> str:
        return str(self.context["patientId"])


def parse_hook_request(body: Any, expected_hook: str) -> HookRequest:
    """Validate a decoded JSON body for a service that handles `expected_hook`.

    Raises BadRequest with every problem listed by field path, so an integrator fixes them in one go.
    """
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    try:
        envelope = _envelope_schema.load(body)
    except ValidationError as exc:
        raise BadRequest("invalid CDS Hooks request: " + "; ".join(flatten_errors(exc.messages))) from None
    if envelope["hook"] != expected_hook:
        raise BadRequest(
            f"hook '{envelope['hook']}' sent to a service that handles '{expected_hook}'", ("hook",)
        )
    try:
        context = _context_schemas[expected_hook].load(envelope["context"])
    except ValidationError as exc:
        raise BadRequest(
            f"invalid context for {expected_hook}: " + "; ".join(flatten_errors(exc.messages, "context"))
        ) from None
    auth = envelope.get("fhirAuthorization")
    if auth and auth.get("patient") and auth["patient"] != context["patientId"]:
        raise BadRequest(
            "fhirAuthorization.patient does not match context.patientId", ("fhirAuthorization.patient",)
        )
    prefetch = envelope.get("prefetch")
    return HookRequest(
        hook=envelope["hook"],
        hook_instance=str(envelope["hookInstance"]),
        context=context,
        prefetch=prefetch,
        fhir_server=envelope.get("fhirServer"),
        fhir_authorization=auth,
        ignored_fields=ignored_field_names(body),
    )
