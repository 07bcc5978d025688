"""CDS Hooks 2.0 feedback: `POST {service}/feedback` with `{"feedback": [...]}`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from ..errors import BadRequest
from .common import CodingSchema, NonEmptyDict, flatten_errors, non_empty_list, optional_string, required_string

# Card and suggestion ids are uuids in practice; the cap keeps them within the database columns.
ID_LENGTH = validate.Length(max=128, error="must be at most 128 characters")


class AcceptedSuggestionSchema(Schema):
    class Meta:
        unknown = RAISE

    id = required_string(validate=ID_LENGTH)


class OverrideReasonSchema(Schema):
    class Meta:
        unknown = RAISE

    reason = fields.Nested(CodingSchema)
    userComment = optional_string()

    @validates_schema
    def reason_or_comment(self, data: dict[str, Any], **_: Any) -> None:
        if not data:
            raise ValidationError("overrideReason needs a reason or a userComment (cds-fb-3)")


class AwareDateTime(fields.DateTime):
    """RFC 3339 date-time that must carry a time zone: feedback times are compared across EHRs."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        result = super()._deserialize(value, attr, data, **kwargs)
        if result.tzinfo is None:
            raise ValidationError("must include a time zone (e.g. 2026-11-01T10:05:31Z)")
        try:
            return result.astimezone(UTC)
        except OverflowError:
            raise ValidationError("is outside the representable date range") from None


class FeedbackItemSchema(Schema):
    class Meta:
        unknown = RAISE

    card = required_string(validate=ID_LENGTH)
    outcome = fields.String(required=True, validate=validate.OneOf(("accepted", "overridden")))
    acceptedSuggestions = non_empty_list(fields.Nested(AcceptedSuggestionSchema))
    overrideReason = fields.Nested(OverrideReasonSchema)
    outcomeTimestamp = AwareDateTime(required=True)
    extension = NonEmptyDict()

    @validates_schema
    def outcome_consistency(self, data: dict[str, Any], **_: Any) -> None:
        if data["outcome"] == "accepted" and "acceptedSuggestions" not in data:
            raise ValidationError("acceptedSuggestions is required when outcome is 'accepted' (cds-fb-2)",
                                  "acceptedSuggestions")
        if data["outcome"] == "accepted" and "overrideReason" in data:
            raise ValidationError("overrideReason only belongs to an 'overridden' outcome", "overrideReason")


class FeedbackRequestSchema(Schema):
    class Meta:
        unknown = RAISE

    feedback = non_empty_list(fields.Nested(FeedbackItemSchema), required=True)


_schema = FeedbackRequestSchema()


@dataclass(frozen=True)
class FeedbackItem:
    card: str
    outcome: str
    accepted_suggestions: tuple[str, ...]
    override_code: str | None
    override_system: str | None
    has_user_comment: bool
    outcome_timestamp: datetime


def parse_feedback(body: Any) -> list[FeedbackItem]:
    if not isinstance(body, dict):
        raise BadRequest("feedback body must be a JSON object")
    try:
        data = _schema.load(body)
    except ValidationError as exc:
        raise BadRequest("invalid feedback: " + "; ".join(flatten_errors(exc.messages))) from None
    items = []
    for raw in data["feedback"]:
        reason = (raw.get("overrideReason") or {}).get("reason") or {}
        items.append(
            FeedbackItem(
                card=raw["card"],
                outcome=raw["outcome"],
                accepted_suggestions=tuple(s["id"] for s in raw.get("acceptedSuggestions", ())),
                override_code=reason.get("code"),
                override_system=reason.get("system"),
                # Free-text comments may hold PHI: we keep only whether one was given.
                has_user_comment="userComment" in (raw.get("overrideReason") or {}),
                outcome_timestamp=raw["outcomeTimestamp"],
            )
        )
    return items
