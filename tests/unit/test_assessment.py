"""The assessment (computed once per request) and the facts it reads: doses from products (4.6 D3),
quantitative antibodies (D5), same-day disagreeing B12 results (D10), the hook as an explicit input (D2).
"""

from __future__ import annotations

import ast
import json
from datetime import UTC, datetime

import pytest

from cds_service.clinical.assessment import assess
from cds_service.clinical.normalize import build_patient_record
from cds_service.clinical.rules.cover import read_b12_product
from cds_service.clinical.units import format_mg, strength_from_name, strength_from_ratio
from cds_service.knowledge import concepts as c
from tests.support.factories import b12, med, mma, order, problem, record
from tests.support.project import PROJECT

RULES = PROJECT / "cds_service" / "clinical" / "rules"
AS_OF = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
RX = "http://www.nlm.nih.gov/research/umls/rxnorm"


# --- computed once ---------------------------------------------------------------------------------------

FAMILY_MODULES = ["mma_testing.py", "urgent_neuro_review.py", "b12_untreated.py", "folate_without_b12.py",
                  "nitrous_oxide_risk.py"]
DERIVATIONS = {"classify_b12", "assess_neuro", "assess_risk", "assess_haematology", "folate_context", "b12_cover",
               "latest_mma", "latest_homocysteine", "mma_for_b12", "renal_context", "replacement_since"}


@pytest.mark.parametrize("module", FAMILY_MODULES)
def test_no_family_derives_the_patient_picture_itself(module):
    """Families read the Assessment; none calls the derivations it is built from."""
    tree = ast.parse((RULES / module).read_text())
    called = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    assert not (called | imported) & DERIVATIONS, f"{module} recomputes {(called | imported) & DERIVATIONS}"


def test_the_assessment_is_computed_once_per_request(monkeypatch, tmp_path):
    from cds_service import create_app, engine

    calls = []
    real = engine.assess

    def counting(*args, **kwargs):
        calls.append(args[2] if len(args) > 2 else kwargs.get("hook"))
        return real(*args, **kwargs)

    monkeypatch.setattr(engine, "assess", counting)
    app = create_app({"TESTING": True, "EVALUATION_TIME": "2026-11-01T12:00:00Z",
                      "DATABASE_URL": f"sqlite:///{tmp_path / 't.db'}"})
    body = json.loads((PROJECT / "fixtures" / "requests" / "r3-ataxia-new.patient-view.json").read_text())
    response = app.test_client().post("/cds-services/b12-patient-view", json=body)
    assert response.status_code == 200
    assert response.get_json()["cards"], "the fixture should produce cards"
    assert calls == ["patient-view"]


# --- the hook is an input (D2) -----------------------------------------------------------------------------


def test_order_subjects_are_the_selections_at_order_select_and_every_draft_at_order_sign(kb):
    folate = med(c.FOLIC_ACID, draft=True, dose_mg=5, ref="MedicationRequest/d1")
    test = order(c.B12_TOTAL, draft=True, ref="ServiceRequest/d2")
    rec = record(folate, test, subject_refs=["ServiceRequest/d2"])
    selected = assess(rec, kb, "order-select").subjects
    assert selected.refs == ("ServiceRequest/d2",)
    signed = assess(record(folate, test), kb, "order-sign").subjects
    assert set(signed.refs) == {"MedicationRequest/d1", "ServiceRequest/d2"}
    assert not assess(record(folate, test), kb, "patient-view").subjects.any


def test_an_unknown_hook_is_a_programming_error(kb):
    with pytest.raises(ValueError):
        assess(record(), kb, "encounter-start")


# --- doses from products (D3) ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "mg", "per"),
    [
        ("cyanocobalamin 1000 MCG Oral Tablet", 1.0, "unit"),
        ("folic acid 0.4 MG Oral Tablet", 0.4, "unit"),
        ("hydroxocobalamin 1 MG/ML Injectable Solution", 1.0, "mL"),
        ("Cyanocobalamin 1,000 mcg tab", 1.0, "unit"),
        ("Vitamin B12 50 microgram tablets", 0.05, "unit"),  # local spelling, spelled out
        ("cyanocobalamin-folic acid 0.025-1 mg tablet", None, None),  # hyphen-joined: per ingredient, see normalize
        ("folic acid 1 MG / cyanocobalamin 0.5 MG Oral Tablet", None, None),  # two strengths: not guessed
        ("Vitamin B12 tablets", None, None),  # the '12' of B12 is no strength
    ],
)
def test_strength_is_read_from_an_rxnorm_style_name_or_not_guessed(name, mg, per):
    found = strength_from_name(name)
    assert (found.strength_mg, found.strength_per) == (mg, per) if mg is not None else found is None


def test_strength_is_read_from_an_ingredient_ratio():
    per_tablet = strength_from_ratio({"numerator": {"value": 1000, "unit": "ug"}, "denominator": {"value": 1}})
    per_ml = strength_from_ratio({"numerator": {"value": 2, "code": "mg"}, "denominator": {"value": 2, "code": "mL"}})
    assert (per_tablet.strength_mg, per_tablet.strength_per) == (1.0, "unit")
    assert (per_ml.strength_mg, per_ml.strength_per) == (1.0, "mL")
    assert strength_from_ratio({"numerator": {"value": 1, "unit": "tablet"}}) is None


def test_doses_read_as_a_prescriber_writes_them():
    assert format_mg(1) == "1 mg" and format_mg(0.05) == "50 micrograms" and format_mg(2.5) == "2.5 mg"


def test_an_oral_1_mg_tablet_without_frequency_is_replacement_and_says_so(kb):
    reading = read_b12_product(med(c.B12_REPLACEMENT, unit_strength_mg=1.0), kb)
    assert reading.counts and "frequency not recorded" in reading.reading


def test_an_oral_product_of_unknown_strength_is_not_cover_but_named(kb):
    reading = read_b12_product(med(c.B12_REPLACEMENT), kb)
    assert not reading.counts and "strength unknown" in reading.reading


def test_a_low_known_daily_dose_is_not_replacement(kb):
    reading = read_b12_product(med(c.B12_REPLACEMENT, dose_mg=0.05), kb)
    assert not reading.counts and "50 micrograms/day" in reading.reading


def test_a_coded_gram_dose_of_hydroxocobalamin_is_the_cyanide_antidote_not_replacement(kb):
    reading = read_b12_product(med(c.B12_REPLACEMENT, route="parenteral", dose_mg=5000), kb)
    assert not reading.counts and "cyanide-antidote" in reading.reading


def test_a_parenteral_multivitamin_trace_of_b12_is_not_replacement(kb):
    infusion = med(c.B12_REPLACEMENT, route="parenteral", unit_strength_mg=0.0005, strength_per="mL")
    injection = med(c.B12_REPLACEMENT, route="parenteral", unit_strength_mg=1.0, strength_per="mL")
    assert not read_b12_product(infusion, kb).counts and "trace" in read_b12_product(infusion, kb).reading
    assert read_b12_product(injection, kb).counts


def test_a_low_strength_tablet_without_frequency_is_not_replacement(kb):
    assert not read_b12_product(med(c.B12_REPLACEMENT, unit_strength_mg=0.05), kb).counts


def test_a_product_of_unknown_strength_is_listed_and_the_card_never_says_none_on_record(kb):
    from cds_service.clinical.rules.b12_untreated import evaluate

    rec = record(b12(100), med(c.B12_REPLACEMENT, text="Vitamin B12 tablets"))
    findings = evaluate(assess(rec, kb), kb)
    assert len(findings) == 1
    finding = findings[0]
    rows = " ".join(f"{e.as_received} {e.note}" for e in finding.evidence)
    assert "Vitamin B12 tablets" in rows and "strength unknown" in rows
    assert "on record" not in finding.summary or "no B12 replacement on record" not in finding.summary
    assert not any("No B12 product is on record" in line for line in finding.rationale)


def _statement(name: str, **extra) -> dict:
    return {"resourceType": "MedicationStatement", "id": "ms1", "status": "active",
            "subject": {"reference": "Patient/p1"}, "medicationCodeableConcept": {"text": name}, **extra}


def test_a_self_reported_tablet_without_dosage_carries_its_strength_from_the_name(kb):
    rec = build_patient_record([_statement("cyanocobalamin 1000 MCG Oral Tablet")], kb, patient_id="p1",
                               as_of=AS_OF)
    m = rec.medications[0]
    assert (m.unit_strength_mg, m.strength_per, m.strength_source, m.route) == (1.0, "unit", "product name", "oral")
    assert m.daily_dose_mg is None and not m.frequency_known


def test_a_referenced_medication_carries_its_strength_from_its_ingredient(kb):
    medication = {"resourceType": "Medication", "id": "b12", "code": {"text": "Vitamin B12 tablets"},
                  "form": {"text": "tablet"},
                  "ingredient": [{"itemCodeableConcept": {"text": "cyanocobalamin"},
                                  "strength": {"numerator": {"value": 1000, "unit": "mcg"},
                                               "denominator": {"value": 1, "unit": "tablet"}}}]}
    statement = _statement("x", medicationReference={"reference": "Medication/b12"})
    del statement["medicationCodeableConcept"]
    rec = build_patient_record([statement, medication], kb, patient_id="p1", as_of=AS_OF)
    m = rec.medications[0]
    assert (m.unit_strength_mg, m.strength_source) == (1.0, "Medication.ingredient.strength")


def test_a_dosage_with_a_tablet_count_uses_the_strength_from_the_name(kb):
    dosage = [{"timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
               "doseAndRate": [{"doseQuantity": {"value": 2, "unit": "tablet"}}]}]
    rec = build_patient_record([_statement("folic acid 0.4 MG Oral Tablet", dosage=dosage)], kb,
                               patient_id="p1", as_of=AS_OF)
    assert rec.medications[0].daily_dose_mg == pytest.approx(0.8)


# --- quantitative antibodies (D5) --------------------------------------------------------------------------


def _antibody(value, *, high=None, interpretation=None) -> dict:
    res = {"resourceType": "Observation", "id": "ab1", "status": "final",
           "code": {"coding": [{"system": "http://loinc.org", "code": "31444-3"}]},
           "effectiveDateTime": "2026-10-01", "valueQuantity": {"value": value, "unit": "U/mL"}}
    if high is not None:
        res["referenceRange"] = [{"high": {"value": high, "unit": "U/mL"}}]
    if interpretation is not None:
        res["interpretation"] = [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": interpretation}]}]
    return res


@pytest.mark.parametrize(
    ("value", "high", "interpretation", "positive"),
    [(35, 6, None, True), (4, 6, None, False), (35, None, "H", True), (35, None, None, None)],
)
def test_a_quantitative_antibody_is_read_against_the_lab_upper_limit(kb, value, high, interpretation, positive):
    lab = build_patient_record([_antibody(value, high=high, interpretation=interpretation)], kb,
                               patient_id="p1", as_of=AS_OF).labs[0]
    assert lab.positive is positive
    assert (lab.problem is None) is (positive is not None)
    assert lab.as_received().startswith(str(value))


# --- same-day results that disagree (D10) ------------------------------------------------------------------


def test_two_b12_results_on_one_day_use_the_more_abnormal_band_whatever_their_order(kb):
    normal, borderline = b12(300, 20), b12(200, 20)
    for items in ((normal, borderline), (borderline, normal)):
        status = assess(record(*items), kb).b12
        assert status.status == "indeterminate" and status.index is borderline
        assert status.same_day_disagreeing == (normal,)
        notes = " ".join(e.note or "" for e in status.evidence(kb))
        assert "two results on the same day disagree" in notes


def test_agreeing_same_day_results_are_not_called_a_disagreement(kb):
    assert assess(record(b12(300, 20), b12(320, 20)), kb).b12.same_day_disagreeing == ()


def test_a_newer_day_still_wins_over_an_older_more_abnormal_result(kb):
    assert assess(record(b12(100, 40), b12(300, 20)), kb).b12.status == "normal"


# --- pernicious anaemia (D4) -------------------------------------------------------------------------------


def test_coded_pernicious_anaemia_is_an_autoimmune_cause(kb):
    rec = record(b12(400), problem({c.PERNICIOUS_ANAEMIA, c.B12_DEFICIENCY}, 400))
    assert len(assess(rec, kb).autoimmune_cause) == 1


# --- review findings (2026-12): product names and routes as EHRs write them ----------------------------


@pytest.mark.parametrize(
    ("name", "counts"),
    [
        ("cyanocobalamin-folic acid 0.025-1 mg tablet", False),  # 25 micrograms B12, not 1 mg
        ("cyanocobalamin-folic acid-pyridoxine 0.5-2.5-25 mg tablet", False),  # 0.5 mg, not 25 mg
        ("Vitamin B12 1000mcg tablets", True),  # plural form word is still oral
        ("methylcobalamin 5000 MCG ODT", True),
        ("cyanocobalamin 1000 microgram tablet", True),
        ("cyanocobalamin 1mg/ml inj", True),
        ("hydroxocobalamin 25 MG/ML Injectable Solution", False),  # reconstituted cyanide antidote
        ("mecobalamin 0.6 MG / Vitamin B 12 0.6 MG Sublingual Tablet", True),  # parts add up, as by code
    ],
)
def test_b12_product_names_are_read_as_written(kb, name, counts):
    rec = build_patient_record([_statement(name)], kb, patient_id="p1", as_of=AS_OF)
    b12_products = [m for m in rec.medications if c.B12_REPLACEMENT in m.classes]
    reading = read_b12_product(b12_products[0], kb) if b12_products else None
    assert (reading is not None and reading.counts) is counts, (name, reading)


def test_same_day_mma_results_use_the_more_abnormal_one_whatever_their_order(kb):
    low, high = mma(0.2, 20), mma(0.9, 20)
    for items in ((low, high), (high, low)):
        assert assess(record(b12(200, 30), *items), kb).mma_latest.result is high


@pytest.mark.parametrize("name", ["Neo-Cytamen 1000micrograms/ml solution for injection", "Cytamen 1mg/1ml injection"])
def test_uk_brand_b12_injections_are_recognised_and_counted(kb, name):
    rec = build_patient_record([_statement(name)], kb, patient_id="p1", as_of=AS_OF)
    (m,) = rec.medications
    assert c.B12_REPLACEMENT in m.classes and m.route == "parenteral"
    assert read_b12_product(m, kb).counts
