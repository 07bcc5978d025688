"""Marshmallow pieces shared by the CDS Hooks schemas.

CDS Hooks says values SHALL NOT be null, "" , [] or {} unless a rule allows it; these helpers make
that the default so each schema does not have to repeat it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

NonEmptyString = validate.Length(min=1, error="must not be empty")


def _validators(extra: Any) -> list[Any]:
    if extra is None:
        return [NonEmptyString]
    return [NonEmptyString, *(extra if isinstance(extra, (list, tuple)) else [extra])]


def required_string(validate: Any = None, **kwargs: Any) -> fields.String:
    return fields.String(required=True, validate=_validators(validate), **kwargs)


def optional_string(validate: Any = None, **kwargs: Any) -> fields.String:
    return fields.String(validate=_validators(validate), **kwargs)


class StrictBoolean(fields.Boolean):
    """JSON true/false only: "yes" or 1 are not booleans on the wire."""

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise ValidationError("must be true or false")
        return value


def non_empty_list(inner: fields.Field[Any], **kwargs: Any) -> fields.List[Any]:
    return fields.List(inner, validate=validate.Length(min=1, error="must not be an empty array"), **kwargs)


class NonEmptyDict(fields.Dict):
    """A JSON object that must not be `{}`."""

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        # marshmallow's Mapping._deserialize carries no annotations (a gap in an otherwise typed package)
        result = super()._deserialize(value, attr, data, **kwargs)  # type: ignore[no-untyped-call]
        if not result:
            raise ValidationError("must not be an empty object")
        return result


class CodingSchema(Schema):
    """CDS Hooks' slim Coding: code and system required, display optional (required in overrideReasons)."""

    code = required_string()
    system = required_string()
    display = optional_string()
    extension = NonEmptyDict()


class DisplayedCodingSchema(CodingSchema):
    display = required_string()


def flatten_errors(messages: Any, prefix: str = "") -> list[str]:
    """Turn marshmallow's nested error dict into 'path: message' lines an integrator can act on."""
    lines: list[str] = []
    if isinstance(messages, dict):
        for key, value in messages.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if key == "_schema":
                path = prefix or "(body)"
            lines.extend(flatten_errors(value, path))
    elif isinstance(messages, list):
        if all(isinstance(m, str) for m in messages):
            lines.extend(f"{prefix}: {m}" for m in messages)
        else:
            for m in messages:
                lines.extend(flatten_errors(m, prefix))
    else:
        lines.append(f"{prefix}: {messages}")
    return lines
