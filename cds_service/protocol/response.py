"""CDS Hooks 2.0 response schemas: Card, Source, Suggestion, Action, Link.

Every response is checked against these before it leaves (`validate_response`): a card that breaks
the spec (summary >= 140 chars, missing selectionBehavior, a null or empty value) is a bug in this
service, and sending it would make some EHRs drop all our cards, so it fails loudly instead.
"""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from ..clinical.findings import SUMMARY_MAX, Indicator  # the spec: a "<140-character" summary
from .common import (
    CodingSchema,
    DisplayedCodingSchema,
    NonEmptyDict,
    StrictBoolean,
    flatten_errors,
    non_empty_list,
    optional_string,
    required_string,
)

INDICATORS = tuple(indicator.value for indicator in Indicator)


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE

    extension = NonEmptyDict()


class SourceSchema(StrictSchema):
    label = required_string()
    url = fields.Url(require_tld=False)
    icon = fields.Url(require_tld=False)
    topic = fields.Nested(CodingSchema)


class ActionSchema(StrictSchema):
    type = fields.String(required=True, validate=validate.OneOf(("create", "update", "delete")))
    description = required_string()
    resource = NonEmptyDict()
    resourceId = optional_string()

    @validates_schema
    def target_present(self, data: dict[str, Any], **_: Any) -> None:
        if data["type"] in {"create", "update"} and "resource" not in data:
            raise ValidationError(f"a '{data['type']}' action needs a resource", "resource")
        if data["type"] == "delete" and "resourceId" not in data:
            raise ValidationError("a 'delete' action needs resourceId", "resourceId")


class SuggestionSchema(StrictSchema):
    label = required_string()
    uuid = fields.UUID()
    isRecommended = StrictBoolean()
    actions = non_empty_list(fields.Nested(ActionSchema))


class LinkSchema(StrictSchema):
    label = required_string()
    url = fields.Url(required=True, require_tld=False)
    type = fields.String(required=True, validate=validate.OneOf(("absolute", "smart")))
    appContext = optional_string()
    autolaunchable = StrictBoolean()

    @validates_schema
    def app_context_only_for_smart(self, data: dict[str, Any], **_: Any) -> None:
        if "appContext" in data and data["type"] != "smart":
            raise ValidationError("appContext is only allowed on smart links (cds-resp-3)", "appContext")


class CardSchema(StrictSchema):
    uuid = fields.UUID()
    summary = fields.String(
        required=True, validate=validate.Length(min=1, max=SUMMARY_MAX, error="must be 1-139 characters")
    )
    detail = optional_string()
    indicator = fields.String(required=True, validate=validate.OneOf(INDICATORS))
    source = fields.Nested(SourceSchema, required=True)
    suggestions = non_empty_list(fields.Nested(SuggestionSchema))
    selectionBehavior = fields.String(validate=validate.OneOf(("at-most-one", "any")))
    overrideReasons = non_empty_list(fields.Nested(DisplayedCodingSchema))
    links = non_empty_list(fields.Nested(LinkSchema))

    @validates_schema
    def selection_rules(self, data: dict[str, Any], **_: Any) -> None:
        suggestions = data.get("suggestions")
        if suggestions and "selectionBehavior" not in data:
            raise ValidationError("selectionBehavior is required when suggestions are present (cds-resp-6)",
                                  "selectionBehavior")
        if suggestions and data.get("selectionBehavior") == "at-most-one":
            if sum(1 for s in suggestions if s.get("isRecommended")) > 1:
                raise ValidationError("at most one suggestion may be recommended with at-most-one (cds-resp-1)",
                                      "suggestions")


class ResponseSchema(StrictSchema):
    cards = fields.List(fields.Nested(CardSchema), required=True)
    systemActions = non_empty_list(fields.Nested(ActionSchema))


_response_schema = ResponseSchema()


class InvalidCard(AssertionError):
    """A card built by this service breaks the CDS Hooks card schema: a bug, never the client's fault."""


def validate_response(response: dict[str, Any]) -> None:
    errors = _response_schema.validate(response)
    if errors:
        raise InvalidCard("; ".join(flatten_errors(errors)))
