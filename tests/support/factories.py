"""A small stand-in for `cds_service.knowledge.Knowledge`, plus record factories, for rule and card tests.

It implements only the part of the knowledge API the rules and cards may use (docs/contracts.md):
`threshold(key)`, `value(key)`, `citations`, `orderables`, with the contract's default values, so
rule tests do not depend on the knowledge files (written concurrently) and can override any
threshold to prove that rules read numbers from knowledge instead of hard-coding them.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from types import MappingProxyType
from typing import Any

from cds_service.clinical import concepts as c
from cds_service.clinical.record import (
    CodeRef,
    LabResult,
    MedicationExposure,
    OrderFact,
    PatientRecord,
    Problem,
)


@dataclass(frozen=True)
class FakeThreshold:
    key: str
    value: float
    unit: str
    status: str
    citation: str
    source: str = "docs/contracts.md default"
    description: str = ""


@dataclass(frozen=True)
class FakeCitation:
    id: str
    label: str
    url: str | None
    status: str = "S"


@dataclass(frozen=True)
class FakeOrderable:
    key: str
    kind: str  # lab | medication | referral
    system: str | None
    code: str | None
    display: str
    text: str
    dosage_text: str | None = None
    status: str = "V"
    source: str = "docs/contracts.md"


# key: (value, unit, status, citation)
_THRESHOLDS: dict[str, tuple[float, str, str, str]] = {
    "b12-total.deficient-below": (133, "pmol/L", "S", "nice-ng239"),
    "b12-total.normal-above": (258, "pmol/L", "S", "nice-ng239"),
    "b12-active.deficient-below": (25, "pmol/L", "S", "nice-ng239"),
    "b12-active.normal-above": (70, "pmol/L", "S", "nice-ng239"),
    "mma.uln": (0.40, "umol/L", "V", "mayo-mma"),
    "mma.uln-age-65": (0.46, "umol/L", "V", "mayo-mma"),
    "mma.strongly-raised": (0.75, "umol/L", "V", "paris-2023"),
    "homocysteine.uln": (15, "umol/L", "V", "paris-2023"),
    "folate-serum.deficient-below": (7, "nmol/L", "V", "pfeiffer-2016"),
    "mcv.macrocytosis-above": (100, "fL", "S", "design-convention"),
    "haemoglobin.anaemia-male-below": (130, "g/L", "V", "who-haemoglobin-2011"),
    "haemoglobin.anaemia-female-below": (120, "g/L", "V", "who-haemoglobin-2011"),
    "haemoglobin.anaemia-pregnancy-below": (110, "g/L", "V", "who-haemoglobin-2011"),
    "egfr.mma-caution-below": (60, "mL/min/{1.73_m2}", "U", "design-convention"),
    "egfr.mma-uninterpretable-below": (30, "mL/min/{1.73_m2}", "U", "design-convention"),
    "age.risk-factor-years": (65, "a", "U", "design-convention"),
    "window.b12-lookback-days": (365, "d", "design", "design-convention"),
    "window.replacement-invalidates-days": (90, "d", "design", "design-convention"),
    "window.red-flag-days": (90, "d", "design", "design-convention"),
    "window.neuro-recent-days": (365, "d", "design", "design-convention"),
    "window.n2o-exposure-days": (365, "d", "design", "design-convention"),
    "window.egfr-recent-days": (90, "d", "design", "design-convention"),
    "window.mma-before-b12-days": (90, "d", "design", "design-convention"),
    "window.cover-recent-days": (90, "d", "design", "design-convention"),
    "dose.oral-b12-replacement-min-mg": (1, "mg/d", "S", "nice-ng239"),
    "dose.folate-prophylaxis-max-mg": (1, "mg/d", "design", "design-convention"),
    "policy.exclude-leucovorin": (1, "{flag}", "design", "design-convention"),
    "policy.exclude-contraceptive-levomefolate": (1, "{flag}", "design", "design-convention"),
    "policy.lab-offers-b12-with-metabolites": (0, "{flag}", "design", "aan-2009"),
    "dose.b12-cyanide-antidote-min-mg": (1000, "mg", "design", "design-convention"),
    "dose.parenteral-b12-trace-max-mg": (0.01, "mg", "design", "design-convention"),
}

_CITATIONS = {
    "aan-2009": (
        "England et al. Neurology 2009;72:185-192 (AAN practice parameter)",
        "https://doi.org/10.1212/01.wnl.0000336370.51010.a1",
    ),
    "nice-ng239": (
        "NICE NG239: Vitamin B12 deficiency in over 16s (2024)",
        "https://www.nice.org.uk/guidance/ng239",
    ),
    "bsh-2014": (
        "BSH 2014: cobalamin and folate disorders (Devalia et al.)",
        "https://doi.org/10.1111/bjh.12959",
    ),
    "lindenbaum-1988": (
        "Lindenbaum et al. NEJM 1988;318:1720-8",
        "https://doi.org/10.1056/NEJM198806303182604",
    ),
    "paris-2023": (
        "Paris et al. Pract Neurol 2023;23:222-228 (nitrous oxide)",
        "https://doi.org/10.1136/pn-2022-003631",
    ),
    "hashi-2025": ("Hashi et al. BMJ Neurol Open 2025", None),
    "mhra-metformin-2022": (
        "MHRA Drug Safety Update: metformin and B12 (2022)",
        "https://www.gov.uk/drug-safety-update",
    ),
    "bnf-b12-dosing": ("BNF: hydroxocobalamin dosing", "https://bnf.nice.org.uk/drugs/hydroxocobalamin/"),
    "nhs-lothian-referral": ("NHS Lothian haematology referral guidance", None),
    "who-haemoglobin-2011": (
        "WHO VMNIS haemoglobin cut-offs (2011)",
        "https://apps.who.int/iris/handle/10665/85839",
    ),
    "pfeiffer-2016": ("Pfeiffer et al. AJCN 2016 (folate cut-offs)", None),
    "mayo-mma": (
        "Mayo Clinic Laboratories: MMA reference interval",
        "https://www.mayocliniclabs.com/test-catalog/overview/80289",
    ),
    "design-convention": ("Local design convention awaiting clinical sign-off", None),
}

_LOINC = "http://loinc.org"
_RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"

_ORDERABLES = [
    FakeOrderable(
        "b12-total",
        "lab",
        _LOINC,
        "2132-9",
        "Cobalamin (Vitamin B12) [Mass/volume] in Serum or Plasma",
        "Serum vitamin B12",
    ),
    FakeOrderable(
        "b12-active",
        "lab",
        _LOINC,
        "72160-5",
        "Holo-transcobalamin II [Moles/volume] in Serum",
        "Active B12 (holotranscobalamin)",
    ),
    FakeOrderable(
        "mma",
        "lab",
        _LOINC,
        "13964-2",
        "Methylmalonate [Moles/volume] in Serum or Plasma",
        "Methylmalonic acid (MMA)",
    ),
    FakeOrderable(
        "homocysteine",
        "lab",
        _LOINC,
        "13965-9",
        "Homocysteine [Moles/volume] in Serum or Plasma",
        "Plasma homocysteine",
    ),
    FakeOrderable(
        "folate-serum", "lab", _LOINC, "2284-8", "Folate [Mass/volume] in Serum or Plasma", "Serum folate"
    ),
    FakeOrderable(
        "fbc", "lab", _LOINC, "58410-2", "CBC panel - Blood by Automated count", "Full blood count"
    ),
    FakeOrderable(
        "egfr",
        "lab",
        _LOINC,
        "98979-8",
        "Glomerular filtration rate/1.73 sq M.predicted [Volume Rate/Area] in Serum, Plasma or "
        "Blood by Creatinine-based formula (CKD-EPI 2021)",
        "eGFR",
    ),
    FakeOrderable(
        "creatinine",
        "lab",
        _LOINC,
        "2160-0",
        "Creatinine [Mass/volume] in Serum or Plasma",
        "Serum creatinine",
    ),
    FakeOrderable(
        "intrinsic-factor-antibody",
        "lab",
        _LOINC,
        "31444-3",
        "Intrinsic factor blocking Ab [Presence] in Serum",
        "Intrinsic factor antibody",
    ),
    FakeOrderable(
        "hydroxocobalamin-im",
        "medication",
        _RXNORM,
        "5514",
        "hydroxocobalamin",
        "Hydroxocobalamin 1 mg IM",
        "1 mg intramuscularly three times a week for 2 weeks, then 1 mg every 3 months",
    ),
    FakeOrderable(
        "hydroxocobalamin-im-neuro",
        "medication",
        _RXNORM,
        "5514",
        "hydroxocobalamin",
        "Hydroxocobalamin 1 mg IM (neurological involvement)",
        "1 mg intramuscularly on alternate days until no further improvement, then 1 mg every 2 months",
    ),
    FakeOrderable(
        "cyanocobalamin-oral",
        "medication",
        _RXNORM,
        "11248",
        "cyanocobalamin",
        "Cyanocobalamin 1 mg oral daily",
        "1000 micrograms by mouth once daily",
    ),
    FakeOrderable(
        "neurology-urgent",
        "referral",
        None,
        None,
        "Urgent neurology review",
        "Urgent (same-day) neurology review for suspected B12-related myelopathy",
        status="U",
    ),
    FakeOrderable(
        "neurology-urgent-neuropathy",
        "referral",
        None,
        None,
        "Urgent neurology review",
        "Urgent neurology review for suspected B12-related neuropathy after nitrous oxide",
        status="U",
    ),
]


class FakeKnowledge:
    """Implements `threshold`, `value`, `citations` and `orderables` like the real Knowledge."""

    def __init__(self, threshold_overrides: Mapping[str, float] | None = None) -> None:
        overrides = dict(threshold_overrides or {})
        unknown = set(overrides) - set(_THRESHOLDS)
        if unknown:
            raise KeyError(f"unknown threshold keys: {sorted(unknown)}")
        self._thresholds = {
            key: FakeThreshold(key, float(overrides.get(key, value)), unit, status, citation)
            for key, (value, unit, status, citation) in _THRESHOLDS.items()
        }
        self.citations = MappingProxyType(
            {cid: FakeCitation(cid, label, url) for cid, (label, url) in _CITATIONS.items()}
        )
        self.orderables = MappingProxyType({o.key: o for o in _ORDERABLES})

    def threshold(self, key: str) -> FakeThreshold:
        return self._thresholds[key]

    def value(self, key: str) -> float:
        return self._thresholds[key].value


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


def knowledge(which: str) -> Any:
    """'fake' (contract defaults) or 'real' (cds_service.knowledge.load_knowledge, skipped if absent)."""
    if which == "fake":
        return FakeKnowledge()
    import pytest

    try:
        from cds_service.knowledge import load_knowledge
    except ImportError as exc:  # the knowledge package is written concurrently
        pytest.skip(f"real knowledge not available yet: {exc}")
    return _real_knowledge(load_knowledge)


_REAL: list[Any] = []


def _real_knowledge(loader: Any) -> Any:
    if not _REAL:
        _REAL.append(loader())
    return _REAL[0]


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
