"""Declarative CDS service files (`hooks/*.json`): loading, validation, discovery descriptors.

A service is data: id, hook, texts, prefetch templates and which rule families it runs. The loader
refuses to start on a broken file and names the file and field, because a service that silently
drops a prefetch key would silently lose the data a safety rule needs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from ..startup import StartupError
from .common import StrictBoolean, flatten_errors, required_string
from .request import CONTEXT_SCHEMAS, PREFETCH_TOKEN_FIELDS

SERVICE_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9\-]{0,63}$")
TOKEN_PATTERN = re.compile(r"\{\{\s*([^}]*?)\s*\}\}")
USER_TOKENS = frozenset({"userPractitionerId", "userPractitionerRoleId", "userPatientId", "userRelatedPersonId"})
# CDS Hooks 2.0 recommended query subset: no chained params, no modifiers other than :in.
TEMPLATE_PATTERN = re.compile(r"^[A-Z][A-Za-z]+(/\{\{[^}]+\}\}|\?[^#\s]+)$")


class ServiceDefinitionError(StartupError):
    """A hooks/ file is invalid; the message names the file and the field."""


class PrefetchSpecSchema(Schema):
    class Meta:
        unknown = RAISE

    template = required_string()
    required = StrictBoolean(required=True)
    purpose = required_string()


class ServiceFileSchema(Schema):
    class Meta:
        unknown = RAISE

    id = fields.String(required=True, validate=validate.Regexp(SERVICE_ID_PATTERN))
    hook = fields.String(required=True, validate=validate.OneOf(sorted(CONTEXT_SCHEMAS)))
    title = required_string()
    description = required_string()
    usageRequirements = required_string()
    families = fields.List(fields.String(), required=True, validate=validate.Length(min=1))
    prefetch = fields.Dict(keys=fields.String(validate=validate.Regexp(r"^[A-Za-z][A-Za-z0-9]*$")),
                           values=fields.Nested(PrefetchSpecSchema), required=True)


@dataclass(frozen=True)
class PrefetchSpec:
    key: str
    template: str
    required: bool
    purpose: str


@dataclass(frozen=True)
class ServiceDefinition:
    id: str
    hook: str
    title: str
    description: str
    usage_requirements: str
    families: tuple[str, ...]
    prefetch: tuple[PrefetchSpec, ...]
    source_file: str

    def descriptor(self) -> dict[str, Any]:
        """The discovery entry (CDS Hooks 2.0 service descriptor)."""
        return {
            "hook": self.hook,
            "title": self.title,
            "description": self.description,
            "id": self.id,
            "prefetch": {p.key: p.template for p in self.prefetch},
            "usageRequirements": self.usage_requirements,
        }


def check_template(template: str, hook: str) -> str | None:
    """Return a problem with a prefetch template, or None if it uses only CDS Hooks 2.0 tokens."""
    if not TEMPLATE_PATTERN.match(template):
        return "must be a relative FHIR read (Type/{{context.x}}) or type-level search (Type?...)"
    for token in TOKEN_PATTERN.findall(template):
        if token in USER_TOKENS:
            continue
        if token.startswith("context."):
            field = token.removeprefix("context.")
            if field not in PREFETCH_TOKEN_FIELDS[hook]:
                return f"token '{{{{{token}}}}}' is not a prefetch token of {hook}"
            continue
        return f"token '{{{{{token}}}}}' is not a CDS Hooks 2.0 prefetch token"
    return None


def load_service_file(path: Path, known_families: Iterable[str]) -> ServiceDefinition:
    name = path.name
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ServiceDefinitionError(f"{name}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    try:
        data = ServiceFileSchema().load(raw)
    except ValidationError as exc:
        raise ServiceDefinitionError(f"{name}: " + "; ".join(flatten_errors(exc.messages))) from None
    if path.stem != data["id"]:
        raise ServiceDefinitionError(f"{name}: field 'id' ('{data['id']}') must match the file name")
    known = set(known_families)
    for family in data["families"]:
        if family not in known:
            raise ServiceDefinitionError(f"{name}: field 'families': unknown rule family '{family}'")
    specs = []
    for key, spec in data["prefetch"].items():
        problem = check_template(spec["template"], data["hook"])
        if problem:
            raise ServiceDefinitionError(f"{name}: field 'prefetch.{key}.template': {problem}")
        specs.append(PrefetchSpec(key, spec["template"], spec["required"], spec["purpose"]))
    return ServiceDefinition(
        id=data["id"],
        hook=data["hook"],
        title=data["title"],
        description=data["description"],
        usage_requirements=data["usageRequirements"],
        families=tuple(data["families"]),
        prefetch=tuple(specs),
        source_file=name,
    )


def load_service_definitions(directory: Path, known_families: Iterable[str]) -> dict[str, ServiceDefinition]:
    files = sorted(directory.glob("*.json"))
    if not files:
        raise ServiceDefinitionError(f"{directory}: no service files (*.json)")
    families = list(known_families)
    services: dict[str, ServiceDefinition] = {}
    for path in files:
        service = load_service_file(path, families)
        services[service.id] = service
    return services
