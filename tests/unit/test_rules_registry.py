"""The rule registry and properties every family keeps (knowledge-driven, well-formed findings)."""

from __future__ import annotations

import ast

import pytest

from cds_service.clinical.rules import FAMILIES, UnknownFamily, evaluate_families
from cds_service.knowledge import concepts as c
from cds_service.knowledge import load_knowledge
from tests.support.factories import assessed, b12, check_finding, med, mma, problem, record, unreadable_b12
from tests.support.project import PROJECT

RULES_DIR = PROJECT / "cds_service" / "clinical" / "rules"


SCENARIOS = {
    "borderline with neuropathy": record(b12(200), problem(c.NEURO_SENSORY, 100)),
    "deficient with gait disorder on folic acid": record(
        b12(100), problem(c.NEURO_GAIT, 10), med(c.FOLIC_ACID, dose_mg=5)
    ),
    "nitrous oxide with numbness": record(problem(c.NITROUS_OXIDE_EXPOSURE, 30), problem(c.NEURO_SENSORY, 5)),
    "scd with raised mma": record(problem(c.NEURO_SCD_MYELOPATHY, 20), mma(0.9), b12(300)),
    "unreadable b12": record(unreadable_b12()),
    "draft folate and nitrous oxide": record(
        med(c.FOLIC_ACID, draft=True, dose_mg=5), med(c.NITROUS_OXIDE_DRUG, draft=True), b12(200)
    ),
}


def test_the_registry_is_keyed_by_the_card_topic_codes():
    assert set(FAMILIES) == {
        "mma-testing",
        "folate-without-b12",
        "urgent-neuro-review",
        "b12-untreated",
        "nitrous-oxide-risk",
        "b12-testing",
    }


def test_evaluate_families_runs_only_the_named_families_in_order(kb):
    rec = SCENARIOS["deficient with gait disorder on folic acid"]
    findings = evaluate_families(assessed(rec, kb), kb, ["b12-untreated", "folate-without-b12"])
    assert [f.family for f in findings] == ["b12-untreated", "folate-without-b12"]


def test_an_unknown_family_is_a_configuration_error_not_silence(kb):
    with pytest.raises(UnknownFamily):
        evaluate_families(assessed(record(), kb), kb, ["mma-testing", "no-such-family"])


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_every_finding_is_well_formed(kb, name):
    findings = evaluate_families(assessed(SCENARIOS[name], kb), kb, FAMILIES)
    assert findings, f"scenario '{name}' should produce at least one card"
    for finding in findings:
        check_finding(finding, kb)
        assert finding.family in FAMILIES


def test_an_empty_record_gives_no_findings(kb):
    assert evaluate_families(assessed(record(), kb), kb, FAMILIES) == []


def test_summaries_stay_under_140_characters_with_long_patient_text(kb):
    long_name = "Folic acid 5 mg tablets " * 20
    rec = record(b12(100), med(c.FOLIC_ACID, dose_mg=5, text=long_name), problem(c.NEURO_GAIT, 10))
    for finding in evaluate_families(assessed(rec, kb), kb, FAMILIES):
        assert len(finding.summary) < 140


def test_thresholds_come_from_knowledge_not_from_the_code(kb):
    """Moving every B12 cut-off moves every family's decision with it."""
    rec = record(b12(140), problem(c.NEURO_GAIT, 10))
    default = {f.family for f in evaluate_families(assessed(rec, kb), kb, FAMILIES)}
    raised = load_knowledge(threshold_overrides={"b12-total.deficient-below": 148})
    moved = {f.family for f in evaluate_families(assessed(rec, raised), raised, FAMILIES)}
    assert "mma-testing" in default and "b12-untreated" not in default
    assert "b12-untreated" in moved and "mma-testing" not in moved


def test_windows_come_from_knowledge_not_from_the_code(kb):
    rec = record(b12(100), problem(c.NEURO_GAIT, 50))
    assert evaluate_families(assessed(rec, kb), kb, ["urgent-neuro-review"])
    short_window = load_knowledge(threshold_overrides={"window.red-flag-days": 30})
    assert not evaluate_families(assessed(rec, short_window), short_window, ["urgent-neuro-review"])


_ALLOWED_NUMBERS = {0, 1, 2}  # counting ("two or more risk factors"), indexing; no clinical values
_FORMATTING_MODULES = {"common.py"}  # number formatting and summary length, not clinical logic


@pytest.mark.parametrize("path", sorted(p.name for p in RULES_DIR.glob("*.py") if p.name not in _FORMATTING_MODULES))
def test_rule_modules_hold_no_clinical_numbers(path):
    tree = ast.parse((RULES_DIR / path).read_text(encoding="utf-8"))
    numbers = {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, (int, float))
        and not isinstance(node.value, bool)
    }
    assert numbers <= _ALLOWED_NUMBERS, f"{path} holds numeric literals {sorted(numbers - _ALLOWED_NUMBERS)}"


@pytest.mark.parametrize("path", sorted(p.name for p in RULES_DIR.glob("*.py")))
def test_rule_modules_import_no_web_framework_and_stay_small(path):
    source = (RULES_DIR / path).read_text(encoding="utf-8")
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & {"flask", "requests", "werkzeug", "marshmallow", "cds_service"}, imported
    assert len(source.splitlines()) < 400
