"""Record and result factories for rule, assessment and card tests, and the checks every Finding keeps.

Rule tests run against the real knowledge (the session fixture `kb` in tests/conftest.py); a test
that needs other numbers loads it with `load_knowledge(threshold_overrides={...})`, the per-site
override mechanism, to prove that rules read numbers from knowledge instead of hard-coding them.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from cds_service.clinical.record import (
    CodeRef,
    LabResult,
    MedicationExposure,
    OrderFact,
    PatientRecord,
    Problem,
)
from cds_service.knowledge import concepts as c

# --- record factories --------------------------------------------------------------------------------
# Hand-built PatientRecords for rule tests: every helper takes "days ago" relative to AS_OF so a test
# reads like the clinical story ("B12 150 pmol/L 30 days ago, gait disorder noted 10 days ago").

AS_OF = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)  # fixtures are anchored here (contracts.md)
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"

_LAB_CODES = {
    c.B12_TOTAL: ("14685-2", "pmol/L"),
    c.B12_ACTIVE: ("72160-5", "pmol/L"),
    c.MMA: ("13964-2", "umol/L"),
    c.HOMOCYSTEINE: ("13965-9", "umol/L"),
    c.FOLATE_SERUM: ("2284-8", "nmol/L"),
    c.HAEMOGLOBIN: ("718-7", "g/L"),
    c.MCV: ("787-2", "fL"),
    c.EGFR: ("98979-8", "mL/min/{1.73_m2}"),
    c.IF_ANTIBODY: ("31444-3", "{index}"),
}
_ids = itertools.count(1)


def ago(days: float) -> datetime:
    return AS_OF - timedelta(days=days)


def lab(
    analyte: str,
    value: float | None,
    days_ago: float | None = 30,
    *,
    raw_value: str | None = None,
    raw_unit: str | None = "",
    comparator: str | None = None,
    reference_high: float | None = None,
    status: str = "final",
    problem: str | None = None,
    positive: bool | None = None,
) -> LabResult:
    code, unit = _LAB_CODES[analyte]
    return LabResult(
        analyte=analyte,
        source_ref=f"Observation/{next(_ids)}",
        code=CodeRef(LOINC, code, analyte),
        effective=ago(days_ago) if days_ago is not None else None,
        raw_value=raw_value if raw_value is not None else (None if value is None else f"{value:g}"),
        raw_unit=unit if raw_unit == "" else raw_unit,
        value=value,
        unit=unit,
        comparator=comparator,  # type: ignore[arg-type]
        reference_high=reference_high,
        positive=positive,
        status=status,
        problem=problem,
    )


def b12(value: float | None, days_ago: float | None = 30, **kw: Any) -> LabResult:
    return lab(c.B12_TOTAL, value, days_ago, **kw)


def active_b12(value: float | None, days_ago: float | None = 30, **kw: Any) -> LabResult:
    return lab(c.B12_ACTIVE, value, days_ago, **kw)


def mma(value: float, days_ago: float = 20, **kw: Any) -> LabResult:
    return lab(c.MMA, value, days_ago, **kw)


def egfr(value: float, days_ago: float = 10, **kw: Any) -> LabResult:
    return lab(c.EGFR, value, days_ago, **kw)


def unreadable_b12(days_ago: float = 30) -> LabResult:
    """A B12 that arrived without a unit: kept, not classified."""
    return b12(None, days_ago, raw_value="150", raw_unit=None, problem="unit missing")


def problem(
    classes: str | Iterable[str],
    days_ago: float | None = 30,
    *,
    code: str | None = None,
    display: str | None = None,
    active: bool = True,
    recorded_days_ago: float | None = None,
) -> Problem:
    cls = frozenset({classes} if isinstance(classes, str) else classes)
    n = next(_ids)
    return Problem(
        classes=cls,
        source_ref=f"Condition/{n}",
        code=CodeRef(SNOMED, code or f"9{n:05d}", display or sorted(cls)[0]),
        is_active=active,
        onset=ago(days_ago) if days_ago is not None else None,
        recorded=ago(recorded_days_ago) if recorded_days_ago is not None else None,
    )


def med(
    classes: str | Iterable[str],
    *,
    active: bool = True,
    start_days_ago: float | None = 60,
    end_days_ago: float | None = None,
    route: str = "oral",
    dose_mg: float | None = None,
    draft: bool = False,
    status: str | None = None,
    matched_by: str = "code",
    text: str | None = None,
    ref: str | None = None,
    unit_strength_mg: float | None = None,
    strength_per: str | None = None,
    frequency_known: bool = False,
) -> MedicationExposure:
    cls = frozenset({classes} if isinstance(classes, str) else classes)
    name = text or " + ".join(sorted(cls))
    return MedicationExposure(
        classes=cls,
        source_ref=ref or f"MedicationRequest/{next(_ids)}",
        resource_type="MedicationRequest",
        status=status or ("draft" if draft else ("active" if active else "completed")),
        is_active=active and not draft,
        matched_by=matched_by,  # type: ignore[arg-type]
        code=None if matched_by == "text" else CodeRef(RXNORM, "0000", name),
        text=name,
        start=None if draft or start_days_ago is None else ago(start_days_ago),
        end=ago(end_days_ago) if end_days_ago is not None else None,
        route=route,  # type: ignore[arg-type]
        daily_dose_mg=dose_mg,
        is_draft=draft,
        unit_strength_mg=unit_strength_mg,
        strength_per=(strength_per or ("unit" if unit_strength_mg is not None else None)),  # type: ignore[arg-type]
        strength_source="product name" if unit_strength_mg is not None else None,
        frequency_known=frequency_known or dose_mg is not None,
    )


def order(
    concepts: str | Iterable[str], *, status: str = "active", draft: bool = False, ref: str | None = None
) -> OrderFact:
    cls = frozenset({concepts} if isinstance(concepts, str) else concepts)
    return OrderFact(
        concepts=cls,
        source_ref=ref or f"ServiceRequest/{next(_ids)}",
        status="draft" if draft else status,
        code=CodeRef(LOINC, "0000-0", sorted(cls)[0]),
        authored=AS_OF,
        is_draft=draft,
    )


def record(
    *items: LabResult | MedicationExposure | Problem | OrderFact,
    age: int | None = 50,
    sex: str | None = "female",
    subject_refs: Iterable[str] = (),
    unavailable: Iterable[str] = (),
) -> PatientRecord:
    return PatientRecord(
        patient_id="pat-1",
        as_of=AS_OF,
        birth_date=date(AS_OF.year - age, 1, 1) if age is not None else None,
        sex=sex,
        labs=tuple(i for i in items if isinstance(i, LabResult)),
        medications=tuple(i for i in items if isinstance(i, MedicationExposure)),
        problems=tuple(i for i in items if isinstance(i, Problem)),
        orders=tuple(i for i in items if isinstance(i, OrderFact)),
        unavailable_inputs=tuple(unavailable),
        subject_refs=tuple(subject_refs),
    )


def check_finding(finding: Any, kb: Any) -> Any:
    """The contract every Finding keeps; returns the finding so tests can chain on it."""
    assert 0 < len(finding.summary) < 140, finding.summary
    assert finding.rationale and all(line.strip() for line in finding.rationale)
    assert finding.evidence, "a finding without evidence cannot be checked by a clinician"
    for item in finding.evidence:
        assert item.label and item.as_received, item
    for cid in (*finding.citations, *(t.citation for t in finding.thresholds)):
        assert cid in kb.citations, cid
    for threshold in finding.thresholds:
        assert threshold.status in {"V", "S", "U", "design"}, threshold
    for action in finding.actions:
        assert action.kind == "advice" or action.key in kb.orderables, action
    return finding


def action_keys(finding: Any) -> list[str]:
    return [a.key for a in finding.actions if a.kind != "advice"]


def evidence_text(finding: Any) -> str:
    return " | ".join(f"{e.label} {e.as_received} {e.converted} {e.note}" for e in finding.evidence)


def assessed(rec: PatientRecord, kb: Any, hook: str | None = None) -> Any:
    """The request's Assessment for a hand-built record; the hook, unless given, is the one such a
    record comes from (selections: order-select; draft orders: order-sign; else patient-view)."""
    from cds_service.clinical.assessment import assess

    if hook is None:
        drafts = any(m.is_draft for m in rec.medications) or any(o.is_draft for o in rec.orders)
        hook = "order-select" if rec.subject_refs else ("order-sign" if drafts else "patient-view")
    return assess(rec, kb, hook)


def run_rule(rule: Callable[[Any, Any], Sequence[Any]], rec: PatientRecord, kb: Any, hook: str | None = None) -> Any:
    """One family's findings for a hand-built record, through the request's Assessment."""
    return rule(assessed(rec, kb, hook), kb)


def only_finding(findings: Sequence[Any], kb: Any) -> Any:
    """The single finding of a rule that must speak exactly once, checked against the contract."""
    assert len(findings) == 1, findings
    return check_finding(findings[0], kb)
