"""Normaliser: FHIR R4 JSON in, PatientRecord facts out, one branch per test."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from cds_service.clinical.normalize import build_patient_record

AS_OF = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
LOINC = "http://loinc.org"
SCT = "http://snomed.info/sct"
ICD = "http://hl7.org/fhir/sid/icd-10-cm"
RX = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"


def record(kb, *resources, drafts=(), **kwargs):
    return build_patient_record(list(resources), kb, patient_id="p1", as_of=AS_OF, draft_orders=list(drafts), **kwargs)


def obs(oid="o1", code="2132-9", value=150, unit="pg/mL", status="final", system=LOINC, **extra):
    res = {
        "resourceType": "Observation", "id": oid, "status": status,
        "code": {"coding": [{"system": system, "code": code}]},
        "effectiveDateTime": "2026-10-01T09:00:00Z",
    }
    if value is not None:
        quantity = {"value": value}
        if unit is not None:
            quantity.update({"unit": unit, "system": UCUM, "code": unit})
        res["valueQuantity"] = quantity
    res.update(extra)
    return res


def med(mid="m1", rt="MedicationRequest", status="active", codings=(), text=None, **extra):
    concept = {"coding": [{"system": s, "code": c, "display": d} for s, c, d in codings]}
    if text:
        concept["text"] = text
    res = {"resourceType": rt, "id": mid, "status": status, "medicationCodeableConcept": concept}
    if rt == "MedicationRequest":
        res.update({"intent": "order", "authoredOn": "2026-09-01"})
    res.update(extra)
    return res


def condition(cid="c1", codings=(("http://snomed.info/sct", "44077006"),), **extra):
    res = {"resourceType": "Condition", "id": cid, "code": {"coding": [{"system": s, "code": c} for s, c in codings]}}
    res.update(extra)
    return res


def status(code: str) -> dict:
    return {"coding": [{"code": code}]}


# --- labs ------------------------------------------------------------------------------------------
def test_b12_in_pg_per_ml_is_converted_to_pmol_per_litre(kb):
    lab = record(kb, obs(value=349)).labs[0]
    assert lab.analyte == "b12-total"
    assert lab.value == pytest.approx(257.49, abs=0.01)
    assert (lab.raw_value, lab.raw_unit, lab.unit) == ("349", "pg/mL", "pmol/L")
    assert lab.effective == datetime(2026, 10, 1, 9, 0, tzinfo=UTC)
    assert lab.code.code == "2132-9" and lab.source_ref == "Observation/o1"
    assert lab.interpretable


def test_comparator_is_kept_and_value_is_the_bound(kb):
    lab = record(kb, obs(value=100, valueQuantity={"value": 100, "comparator": "<", "unit": "pg/mL"})).labs[0]
    assert lab.comparator == "<"
    assert lab.value == pytest.approx(73.78)
    assert lab.as_received() == "< 100 pg/mL"


def test_missing_unit_is_kept_with_a_problem_not_dropped(kb):
    lab = record(kb, obs(value=150, unit=None)).labs[0]
    assert lab.value is None
    assert lab.problem == "unit missing"
    assert not lab.interpretable
    assert lab.as_received() == "150 (no unit)"


def test_unknown_unit_is_named_in_the_problem(kb):
    lab = record(kb, obs(value=150, unit="pg")).labs[0]
    assert lab.value is None and lab.problem == "unit 'pg' not recognised"


def test_non_ucum_human_unit_is_used_when_the_code_is_absent(kb):
    res = obs(valueQuantity={"value": 200, "unit": "pmol/l"})
    assert record(kb, res).labs[0].value == 200.0


def test_text_value_is_kept_but_not_interpreted(kb):
    res = obs(value=None, valueString="<100")
    lab = record(kb, res).labs[0]
    assert lab.value is None and lab.raw_value == "<100" and "not a quantity" in lab.problem


@pytest.mark.parametrize("bad_status", ["entered-in-error", "cancelled", "registered", "preliminary"])
def test_unusable_result_statuses_are_ignored(kb, bad_status):
    assert record(kb, obs(status=bad_status)).labs == ()


@pytest.mark.parametrize("good_status", ["final", "amended", "corrected"])
def test_final_amended_corrected_are_accepted(kb, good_status):
    assert len(record(kb, obs(status=good_status)).labs) == 1


def test_preliminary_accepted_only_when_asked(kb):
    assert len(record(kb, obs(status="preliminary"), include_preliminary=True).labs) == 1


def test_effective_falls_back_to_period_start_then_issued(kb):
    period = obs(effectivePeriod={"start": "2026-09-01T00:00:00Z"})
    del period["effectiveDateTime"]
    issued = obs(oid="o2", issued="2026-08-01T10:00:00+02:00")
    del issued["effectiveDateTime"]
    labs = record(kb, period, issued).labs
    assert labs[0].effective == datetime(2026, 9, 1, tzinfo=UTC)
    assert labs[1].effective == datetime(2026, 8, 1, 8, 0, tzinfo=UTC)


def test_reference_range_is_converted_and_takes_the_result_unit_when_it_has_none(kb):
    res = obs(code="13964-2", value=520, unit="nmol/L", referenceRange=[{"low": {"value": 87}, "high": {"value": 318}}])
    lab = record(kb, res).labs[0]
    assert lab.analyte == "mma" and lab.value == pytest.approx(0.52)
    assert lab.reference_low == pytest.approx(0.087) and lab.reference_high == pytest.approx(0.318)


def test_haemoglobin_in_mmol_per_litre_and_first_matching_coding_wins(kb):
    res = obs(code="x", value=7.5, unit="mmol/L")
    res["code"]["coding"] = [{"system": "urn:local", "code": "HB"}, {"system": LOINC, "code": "718-7"}]
    lab = record(kb, res).labs[0]
    assert lab.analyte == "haemoglobin" and lab.value == pytest.approx(120.8, abs=0.05)
    assert lab.code.code == "718-7"


@pytest.mark.parametrize(
    ("value_field", "expected"),
    [
        ({"valueCodeableConcept": {"coding": [{"system": SCT, "code": "10828004", "display": "Positive"}]}}, True),
        ({"valueCodeableConcept": {"coding": [{"system": SCT, "code": "260385009"}]}}, False),
        ({"valueString": "Detected"}, True),
        ({"interpretation": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                                          "code": "POS"}]}]}, True),
        ({"interpretation": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                                          "code": "NEG"}]}]}, False),
    ],
)
def test_qualitative_antibody_results(kb, value_field, expected):
    res = obs(code="31444-3", value=None, **value_field)
    lab = record(kb, res).labs[0]
    assert lab.analyte == "intrinsic-factor-antibody"
    assert lab.positive is expected and lab.problem is None and lab.interpretable


def test_numeric_antibody_without_interpretation_has_a_problem(kb):
    lab = record(kb, obs(code="40960-7", value=30, unit="U")).labs[0]
    assert lab.positive is None and lab.problem and lab.raw_value == "30"


def test_observation_coded_as_a_finding_becomes_a_problem(kb):
    finding = obs(code="44077006", system=SCT, value=None)
    rec = record(kb, finding)
    assert rec.labs == ()
    assert rec.problems[0].classes == {"neuro-sensory"}
    assert rec.problems[0].first_noted == datetime(2026, 10, 1, 9, 0, tzinfo=UTC)


def test_finding_in_observation_value_counts_but_absent_finding_does_not(kb):
    coded_value = obs(code="unknown-symptom-code", value=None,
                      valueCodeableConcept={"coding": [{"system": SCT, "code": "20262006"}]})
    absent = obs(oid="o2", code="44077006", system=SCT, value=None, valueBoolean=False)
    rec = record(kb, coded_value, absent)
    assert [p.classes for p in rec.problems] == [{"neuro-gait"}]


def test_irrelevant_observation_is_skipped(kb):
    assert record(kb, obs(code="2345-7", value=5.5, unit="mmol/L")).labs == ()


# --- conditions and procedures ---------------------------------------------------------------------
def test_condition_classes_status_and_dates(kb):
    rec = record(kb, condition(
        codings=((ICD, "G62.9"), (SCT, "424736006")), clinicalStatus=status("active"),
        onsetDateTime="2026-08-15", recordedDate="2026-08-20T10:00:00Z",
    ))
    problem = rec.problems[0]
    assert problem.classes == {"neuro-sensory", "diabetic-neuropathy"}
    assert problem.is_active and problem.code.code == "G62.9"
    assert problem.onset == datetime(2026, 8, 15, tzinfo=UTC)
    assert problem.recorded == datetime(2026, 8, 20, 10, tzinfo=UTC)


def test_undotted_icd_code_and_missing_clinical_status_is_active(kb):
    problem = record(kb, condition(codings=((ICD, "G320"),))).problems[0]
    assert problem.classes == {"neuro-scd-myelopathy"} and problem.is_active


@pytest.mark.parametrize(("clinical", "active"), [("recurrence", True), ("relapse", True), ("resolved", False),
                                                  ("inactive", False), ("remission", False)])
def test_clinical_status_decides_activity(kb, clinical, active):
    assert record(kb, condition(clinicalStatus=status(clinical))).problems[0].is_active is active


def test_abatement_without_clinical_status_is_inactive(kb):
    assert record(kb, condition(abatementDateTime="2025-01-01")).problems[0].is_active is False


@pytest.mark.parametrize("verification", ["entered-in-error", "refuted"])
def test_refuted_or_erroneous_conditions_are_ignored(kb, verification):
    assert record(kb, condition(verificationStatus=status(verification))).problems == ()


def test_onset_age_is_not_used(kb):
    problem = record(kb, condition(onsetAge={"value": 60, "unit": "a"})).problems[0]
    assert problem.onset is None


def test_completed_procedure_is_an_active_problem(kb):
    done = {"resourceType": "Procedure", "id": "p1", "status": "completed",
            "code": {"coding": [{"system": SCT, "code": "53442002"}]}, "performedPeriod": {"start": "2015-03-02"}}
    planned = dict(done, id="p2", status="preparation")
    rec = record(kb, done, planned)
    assert len(rec.problems) == 1
    assert rec.problems[0].classes == {"gastric-surgery"} and rec.problems[0].is_active
    assert rec.problems[0].onset == datetime(2015, 3, 2, tzinfo=UTC)


# --- medications -----------------------------------------------------------------------------------
def test_product_code_with_timing_gives_daily_dose_and_oral_route(kb):
    res = med(codings=[(RX, "310410", "folic acid 1 MG Oral Tablet")], dosageInstruction=[{
        "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
        "doseAndRate": [{"doseQuantity": {"value": 5, "unit": "mg"}}],
    }])
    exposure = record(kb, res).medications[0]
    assert exposure.classes == {"folic-acid"} and exposure.matched_by == "code"
    assert exposure.daily_dose_mg == 5 and exposure.route == "oral" and exposure.is_active
    assert exposure.start == datetime(2026, 9, 1, tzinfo=UTC)


def test_tablet_count_times_strength_times_frequency(kb):
    res = med(codings=[(RX, "861007", "metformin hydrochloride 500 MG Oral Tablet")], dosageInstruction=[{
        "timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}},
        "doseAndRate": [{"doseQuantity": {"value": 2, "unit": "tablet"}}],
    }])
    assert record(kb, res).medications[0].daily_dose_mg == 2000


def test_microgram_dose_with_timing_code(kb):
    res = med(codings=[(RX, "11248", "cyanocobalamin")], dosageInstruction=[{
        "timing": {"code": {"coding": [{"code": "QD"}]}},
        "doseAndRate": [{"doseQuantity": {"value": 1000, "unit": "ug"}}],
        "route": {"coding": [{"system": SCT, "code": "26643006", "display": "Oral route"}]},
    }])
    exposure = record(kb, res).medications[0]
    assert exposure.daily_dose_mg == 1.0 and exposure.route == "oral"


def test_dose_without_timing_is_not_computable(kb):
    res = med(codings=[(RX, "4511", "folic acid")], dosageInstruction=[{"doseAndRate": [{"doseQuantity": {
        "value": 5, "unit": "mg"}}]}])
    assert record(kb, res).medications[0].daily_dose_mg is None


def test_injection_route_from_product_form_and_ml_dose(kb):
    res = med(codings=[(RX, "309594", "Vitamin B 12 1 MG/ML Injectable Solution")], dosageInstruction=[{
        "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "mo"}},
        "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "mL"}}],
    }])
    exposure = record(kb, res).medications[0]
    assert exposure.route == "parenteral"
    assert exposure.daily_dose_mg == pytest.approx(1 / 30, abs=1e-5)


def test_intramuscular_route_text(kb):
    res = med(codings=[(RX, "5514", "hydroxocobalamin")], dosageInstruction=[{"route": {"text": "IM"}}])
    assert record(kb, res).medications[0].route == "parenteral"


def test_combination_product_has_both_classes(kb):
    res = med(codings=[(RX, "309596", "folic acid / liver extract / vitamin B12 Injectable Solution")])
    assert record(kb, res).medications[0].classes == {"folic-acid", "b12-replacement"}


def test_text_only_medication_is_flagged_as_matched_by_name(kb):
    res = med(codings=[("urn:local:drug", "FA5", "FOLIC ACID 5MG TABS")])
    exposure = record(kb, res).medications[0]
    assert exposure.matched_by == "text" and exposure.classes == {"folic-acid"}
    assert exposure.code is not None and exposure.code.code == "FA5"


def test_text_combination_gives_both_classes(kb):
    res = med(text="Folic acid 400 microgram + cyanocobalamin 2 mg tablet")
    exposure = record(kb, res).medications[0]
    assert exposure.classes == {"folic-acid", "b12-replacement"} and exposure.matched_by == "text"


def test_product_name_adds_classes_the_codes_miss_and_flags_the_match(kb):
    res = med(codings=[(RX, "1025342", "levomefolic acid")],
              text="Drospirenone 3 mg / ethinyl estradiol 0.02 mg / levomefolate calcium 0.451 mg tablet")
    exposure = record(kb, res).medications[0]
    assert exposure.classes == {"levomefolate", "hormonal-contraceptive"}
    assert exposure.matched_by == "text" and exposure.code.code == "1025342"


def test_product_name_that_agrees_with_the_code_keeps_code_match(kb):
    res = med(codings=[(RX, "310410", "folic acid 1 MG Oral Tablet")], text="Folic acid 1 mg tablet")
    exposure = record(kb, res).medications[0]
    assert exposure.classes == {"folic-acid"} and exposure.matched_by == "code"


def test_unrelated_medication_is_skipped(kb):
    assert record(kb, med(codings=[(RX, "197361", "alprazolam")], text="alprazolam 0.25 mg")).medications == ()


@pytest.mark.parametrize(
    ("rt", "status", "active"),
    [("MedicationRequest", "active", True), ("MedicationRequest", "on-hold", True),
     ("MedicationRequest", "completed", False), ("MedicationRequest", "stopped", False),
     ("MedicationRequest", "draft", False), ("MedicationStatement", "active", True),
     ("MedicationStatement", "intended", True), ("MedicationStatement", "completed", False)],
)
def test_medication_status_decides_activity(kb, rt, status, active):
    res = med(rt=rt, status=status, codings=[(RX, "6809", "metformin")])
    assert record(kb, res).medications[0].is_active is active


@pytest.mark.parametrize(("rt", "status"), [("MedicationRequest", "entered-in-error"),
                                            ("MedicationStatement", "not-taken"),
                                            ("MedicationAdministration", "not-done")])
def test_erroneous_or_not_taken_medications_are_dropped(kb, rt, status):
    assert record(kb, med(rt=rt, status=status, codings=[(RX, "6809", "metformin")])).medications == ()


def test_completed_statement_keeps_its_period(kb):
    res = med(rt="MedicationStatement", status="completed", codings=[(RX, "5514", "hydroxocobalamin")],
              effectivePeriod={"start": "2026-06-01", "end": "2026-09-15"})
    exposure = record(kb, res).medications[0]
    assert (exposure.start, exposure.end) == (datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 9, 15, tzinfo=UTC))


def test_administration_is_a_point_in_time_with_its_dose(kb):
    res = med(rt="MedicationAdministration", status="completed", codings=[(RX, "5514", "hydroxocobalamin")],
              effectiveDateTime="2026-10-20T10:00:00Z",
              dosage={"dose": {"value": 1, "unit": "mg"}, "route": {"text": "intramuscular"}})
    exposure = record(kb, res).medications[0]
    assert exposure.start == exposure.end == datetime(2026, 10, 20, 10, tzinfo=UTC)
    assert exposure.daily_dose_mg == 1 and exposure.route == "parenteral" and not exposure.is_active


def test_medication_reference_resolved_from_contained_and_bundle(kb):
    contained = med(codings=[], medicationReference={"reference": "#m"}, contained=[
        {"resourceType": "Medication", "id": "m", "code": {"coding": [{"system": RX, "code": "7646"}]}}])
    del contained["medicationCodeableConcept"]
    shared = med(mid="m2", codings=[], medicationReference={"reference": "Medication/ppi"})
    del shared["medicationCodeableConcept"]
    medication = {"resourceType": "Medication", "id": "ppi", "code": {"coding": [{"system": RX, "code": "40790"}]},
                  "form": {"text": "Delayed Release Oral Tablet"}}
    unresolved = med(mid="m3", codings=[], medicationReference={"reference": "Medication/zzz", "display": "Metformin"})
    del unresolved["medicationCodeableConcept"]
    meds = record(kb, contained, shared, medication, unresolved).medications
    assert [m.classes for m in meds] == [{"proton-pump-inhibitor"}, {"proton-pump-inhibitor"}, {"metformin"}]
    assert meds[1].route == "oral"
    assert meds[2].matched_by == "text"


# --- draft orders, service requests, patient, dedup ------------------------------------------------
def test_draft_orders_are_parsed_leniently(kb):
    drafts = [
        {"resourceType": "MedicationRequest", "id": "d1", "status": "draft", "category": {"text": "outpatient"},
         "medicationCodeableConcept": {"coding": [{"system": RX, "code": "4511"}]}},
        {"resourceType": "MedicationRequest", "id": "d2", "status": "draft"},  # no medication[x]: skipped
        {"resourceType": "ServiceRequest", "id": "d3", "code": {"coding": [{"system": LOINC, "code": "2132-9"}]}},
        {"resourceType": "MedicationRequest", "id": "d4", "medicationCodeableConcept": "folic acid"},
        {"resourceType": "NutritionOrder", "id": "d5"},
        "not a resource",
    ]
    rec = record(kb, drafts=drafts, selections=["MedicationRequest/d1"])
    assert [(m.source_ref, m.is_draft, m.is_active) for m in rec.medications] == [("MedicationRequest/d1", True, True)]
    assert [(o.source_ref, o.concepts, o.is_draft, o.status) for o in rec.orders] == [
        ("ServiceRequest/d3", {"b12-total"}, True, "draft")]
    assert rec.subject_refs == ("MedicationRequest/d1",)


def test_draft_orders_inside_a_bundle(kb):
    bundle = {"resourceType": "Bundle", "entry": [{"resource": med(mid="d1", status="draft",
                                                                   codings=[(RX, "4511", "folic acid")])}]}
    assert record(kb, drafts=[bundle]).medications[0].is_draft


def test_open_service_requests_become_order_facts(kb):
    sr = {"resourceType": "ServiceRequest", "id": "s1", "status": "active", "intent": "order",
          "code": {"coding": [{"system": LOINC, "code": "13964-2"}]}, "authoredOn": "2026-10-30"}
    done = dict(sr, id="s2", status="completed")
    rec = record(kb, sr, done)
    assert [(o.source_ref, o.concepts, o.is_draft) for o in rec.orders] == [("ServiceRequest/s1", {"mma"}, False)]
    assert rec.orders[0].authored == datetime(2026, 10, 30, tzinfo=UTC)


def test_patient_demographics_and_unavailable_inputs(kb):
    patient = {"resourceType": "Patient", "id": "p1", "birthDate": "1950-06-15", "gender": "female"}
    rec = record(kb, patient, unavailable_inputs=["labs"])
    assert rec.birth_date == date(1950, 6, 15) and rec.sex == "female" and rec.age_years == 76
    assert rec.unavailable_inputs == ("labs",)


def test_duplicates_by_type_and_id_are_removed(kb):
    rec = record(kb, obs(), obs(), obs(oid="o2"), {"resourceType": "Bundle", "entry": [{"resource": obs()}]})
    assert [lab.source_ref for lab in rec.labs] == ["Observation/o1", "Observation/o2"]


def test_naive_as_of_is_taken_as_utc(kb):
    rec = build_patient_record([], kb, patient_id="p1", as_of=datetime(2026, 11, 1, 12, 0))
    assert rec.as_of.tzinfo is not None
