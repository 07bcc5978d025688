"""Full R4 conformance check of a CDS Hooks request or a FHIR Bundle, for integrators, off the hot path.

The service itself reads only the fields its rules use (`fhir.forms`) and tolerates defects
elsewhere; an integrator cleaning their data wants every problem. This runs the fhir.resources R4B
models (the closest to R4 4.0.1 the library ships; its top-level package is R5 and rejects real R4
data, tooling-notes 2.3) over every resource, and puts each problem next to what the service does
with that resource: read, left out and named on the cards, or never read (a type or code no rule
reads). It is used by `b12-cds check FILE` and the check section of `/preview`; it costs ~120-260 us
a resource, which is why it is not on the request path. Messages carry paths, never values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..knowledge import Knowledge
from .forms import DRAFT_FORMS, FORMS
from .reader import describe_ref, read_resources

MAX_PROBLEMS_PER_RESOURCE = 50


@dataclass(frozen=True)
class Problem:
    location: str  # where the resource sits, e.g. "prefetch.labs.entry[3].resource"
    resource: str  # "Observation/abc"
    path: str  # FHIRPath-like path inside the resource, e.g. "effectiveDateTime", "extension[0].url"
    message: str  # R4B's message, without the input value

    def as_dict(self) -> dict[str, str]:
        return {"location": self.location, "resource": self.resource, "path": self.path, "message": self.message}


@dataclass(frozen=True)
class ResourceVerdict:
    location: str
    resource: str
    service: str  # "read", "left out: <field> <reason>", "not read (type or codes no rule reads)"
    problems: tuple[Problem, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"location": self.location, "resource": self.resource, "service": self.service,
                "problems": [p.as_dict() for p in self.problems]}


@dataclass
class CheckReport:
    kind: str  # "cds-hooks-request" | "bundle" | "resource"
    resources: list[ResourceVerdict] = field(default_factory=list)
    request_problems: list[str] = field(default_factory=list)  # envelope problems (the 400 the service gives)

    @property
    def problem_count(self) -> int:
        return len(self.request_problems) + sum(len(r.problems) for r in self.resources)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "resources": len(self.resources),
            "problems": self.problem_count,
            "requestProblems": list(self.request_problems),
            "leftOut": sum(1 for r in self.resources if r.service.startswith("left out")),
            "results": [r.as_dict() for r in self.resources if r.problems or r.service.startswith("left out")],
        }


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part != "__root__":
            out += f".{part}" if out else str(part)
    return out or "(resource)"


def r4_problems(resource: dict[str, Any], location: str) -> list[Problem]:
    """Every problem fhir.resources R4B finds in one resource, by path (no input values)."""
    from fhir.resources.R4B import get_fhir_model_class
    from pydantic import ValidationError

    ref = describe_ref(resource)
    rtype = resource.get("resourceType")
    try:
        model = get_fhir_model_class(rtype) if isinstance(rtype, str) else None
    except (ValueError, KeyError):
        model = None
    if model is None:
        return [Problem(location, ref, "resourceType", "not an R4 resource type")]
    try:
        model.model_validate(resource)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)[:MAX_PROBLEMS_PER_RESOURCE]
        return [Problem(location, ref, _path(tuple(e.get("loc", ()))), str(e.get("msg", "invalid"))) for e in errors]
    except (ValueError, TypeError) as exc:  # fhir_core raises plain errors for a few shapes
        return [Problem(location, ref, "(resource)", type(exc).__name__)]
    return []


def _located_resources(body: Any) -> tuple[str, list[tuple[str, dict[str, Any], bool]], list[str]]:
    """(kind, [(location, resource, is_draft)], shape problems) of a request, Bundle or resource."""
    problems: list[str] = []
    found: list[tuple[str, dict[str, Any], bool]] = []

    def bundle(value: Any, where: str, is_draft: bool = False) -> None:
        entries = value.get("entry", [])
        if not isinstance(entries, list):
            problems.append(f"{where}.entry: must be an array")
            return
        for index, entry in enumerate(entries):
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if isinstance(resource, dict) and isinstance(resource.get("resourceType"), str):
                found.append((f"{where}.entry[{index}].resource", resource, is_draft))
            else:
                problems.append(f"{where}.entry[{index}]: entry has no resource with a resourceType")

    if not isinstance(body, dict):
        return "unknown", [], ["the file is not a JSON object"]
    if body.get("resourceType") == "Bundle":
        bundle(body, "Bundle")
        return "bundle", found, problems
    if isinstance(body.get("resourceType"), str):
        return "resource", [("(resource)", body, False)], problems
    prefetch = body.get("prefetch") or {}
    if isinstance(prefetch, dict):
        for key, value in prefetch.items():
            where = f"prefetch.{key}"
            if value is None:
                continue
            if not isinstance(value, dict) or not isinstance(value.get("resourceType"), str):
                problems.append(f"{where}: must be a FHIR resource, a Bundle, an OperationOutcome or null")
            elif value["resourceType"] == "Bundle":
                bundle(value, where)
            elif value["resourceType"] != "OperationOutcome":
                found.append((where, value, False))
    context = body.get("context")
    drafts = context.get("draftOrders") if isinstance(context, dict) else None
    if isinstance(drafts, dict):
        bundle(drafts, "context.draftOrders", is_draft=True)
    return "cds-hooks-request", found, problems


def check_document(body: Any, kb: Knowledge) -> CheckReport:
    """Validate every resource with R4B, and say what the service does with each."""
    kind, located, shape_problems = _located_resources(body)
    report = CheckReport(kind, request_problems=shape_problems)
    if kind == "cds-hooks-request":
        from ..errors import BadRequest
        from ..protocol.request import parse_hook_request

        hook = body.get("hook")
        try:
            parse_hook_request(body, hook if isinstance(hook, str) else "")
        except BadRequest as exc:
            report.request_problems.append(exc.message)
    plain = [r for _, r, is_draft in located if not is_draft]
    drafts = [r for _, r, is_draft in located if is_draft]
    read = read_resources(plain, kb, drafts)
    failures = {(f.ref, f.is_draft): f for f in read.failures}
    read_refs = {(f"{r.resourceType}/{r.id}", False) for r in read.resources}
    read_refs |= {(f"{r.resourceType}/{r.id}", True) for r in read.drafts}
    for location, resource, is_draft in located:
        ref = describe_ref(resource)
        used = (DRAFT_FORMS if is_draft else FORMS).get(str(resource.get("resourceType")))
        if (ref, is_draft) in failures:
            failure = failures[(ref, is_draft)]
            service = f"left out: {failure.field} {failure.reason}"
        elif used is not None and (ref, is_draft) in read_refs:
            service = "read"
        else:
            service = "not read (a type or codes no rule reads)"
        report.resources.append(ResourceVerdict(location, ref, service, tuple(r4_problems(resource, location))))
    return report


def report_text(report: CheckReport) -> str:
    """The check as lines an integrator reads in a terminal."""
    lines = [f"{report.kind}: {len(report.resources)} resource(s), {report.problem_count} problem(s), "
             f"{sum(1 for r in report.resources if r.service.startswith('left out'))} left out by the service"]
    for problem in report.request_problems:
        lines.append(f"request: {problem}")
    for verdict in report.resources:
        if not verdict.problems and not verdict.service.startswith("left out"):
            continue
        lines.append(f"{verdict.location} {verdict.resource} [{verdict.service}]")
        for p in verdict.problems:
            lines.append(f"  {p.path}: {p.message}")
    return "\n".join(lines)
