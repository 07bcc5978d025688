"""Knowledge base: loading and validation, code lookups, unit conversion, thresholds and overrides."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from fhir.resources.R4B.valueset import ValueSet

from cds_service.knowledge import DEFAULT_DIRECTORY, KnowledgeError, knowledge_table, load_knowledge
from cds_service.knowledge.concepts import ALL_CONCEPTS, LAB_ANALYTES, MEDICATION_CLASSES
from cds_service.knowledge.model import REQUIRED_CITATION_IDS, REQUIRED_ORDERABLE_KEYS, REQUIRED_THRESHOLD_KEYS

LOINC = "http://loinc.org"
SCT = "http://snomed.info/sct"
ICD = "http://hl7.org/fhir/sid/icd-10-cm"
RX = "http://www.nlm.nih.gov/research/umls/rxnorm"
ATC = "http://www.whocc.no/atc"
EXT = "https://b12-neuro-cds.example.org/StructureDefinition/"


@pytest.fixture()
def kb_copy(tmp_path: Path) -> Path:
    target = tmp_path / "knowledge"
    shutil.copytree(DEFAULT_DIRECTORY, target, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return target


def _edit(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _ext(concept: dict, name: str) -> dict:
    return next(e for e in concept["extension"] if e["url"] == EXT + name)


# --- loading and validation ------------------------------------------------------------------------
def test_shipped_knowledge_loads_and_covers_every_contract_key(kb):
    assert set(REQUIRED_THRESHOLD_KEYS) <= set(kb.thresholds)
    assert set(REQUIRED_CITATION_IDS) <= set(kb.citations)
    assert set(REQUIRED_ORDERABLE_KEYS) <= set(kb.orderables)


def test_value_set_files_are_valid_r4b_value_sets():
    for path in sorted((DEFAULT_DIRECTORY / "valuesets").glob("*.json")):
        ValueSet.model_validate(json.loads(path.read_text()))


def test_every_active_entry_is_status_v_and_no_u_entry_is_active(kb):
    assert all(e.status == "V" for e in kb.active_entries())
    assert all(e.status in {"S", "U"} for e in kb.inactive_entries())
    assert {e.concept for e in kb.active_entries()} <= ALL_CONCEPTS


def test_every_medication_class_and_lab_analyte_has_an_active_code(kb):
    concepts = {e.concept for e in kb.active_entries()}
    missing = (MEDICATION_CLASSES | LAB_ANALYTES) - concepts
    assert missing == set()


def test_broken_json_names_the_file(kb_copy):
    (kb_copy / "thresholds.json").write_text("{not json")
    with pytest.raises(KnowledgeError, match=r"thresholds\.json: cannot read JSON"):
        load_knowledge(kb_copy)


def test_non_numeric_threshold_names_file_and_field(kb_copy):
    def change(data):
        data["thresholds"][0]["value"] = "133"

    _edit(kb_copy / "thresholds.json", change)
    expected = r"thresholds\.json: thresholds\[0\] \(b12-total\.deficient-below\)\.value"
    with pytest.raises(KnowledgeError, match=expected):
        load_knowledge(kb_copy)


def test_missing_threshold_key_is_an_error(kb_copy):
    _edit(kb_copy / "thresholds.json", lambda d: d["thresholds"].pop())
    missing = "policy.lab-offers-b12-with-metabolites"
    with pytest.raises(KnowledgeError, match=f"required threshold key '{missing}' missing"):
        load_knowledge(kb_copy)


def test_unknown_citation_in_threshold_is_an_error(kb_copy):
    def change(data):
        data["thresholds"][1]["citation"] = "nice-ng999"

    _edit(kb_copy / "thresholds.json", change)
    with pytest.raises(KnowledgeError, match=r"thresholds\.json: .*citation: unknown citation id 'nice-ng999'"):
        load_knowledge(kb_copy)


def test_u_entry_marked_active_is_an_error(kb_copy):
    def change(data):
        concept = next(c for c in data["compose"]["include"][0]["concept"] if c["code"] == "16695-9")
        _ext(concept, "kb-active")["valueBoolean"] = True

    _edit(kb_copy / "valuesets" / "labs.json", change)
    expected = r"valuesets/labs\.json: .*\(code '16695-9'\): status U entry marked active"
    with pytest.raises(KnowledgeError, match=expected):
        load_knowledge(kb_copy)


def test_unknown_concept_id_is_an_error(kb_copy):
    def change(data):
        _ext(data["compose"]["include"][0]["concept"][0], "kb-concept")["valueCode"] = "b12-totl"

    _edit(kb_copy / "valuesets" / "labs.json", change)
    with pytest.raises(KnowledgeError, match=r"valuesets/labs\.json: compose\.include\[0\]\.concept\[0\] .*'b12-totl'"):
        load_knowledge(kb_copy)


def test_bad_status_tag_is_an_error(kb_copy):
    def change(data):
        _ext(data["compose"]["include"][0]["concept"][0], "kb-status")["valueCode"] = "X"

    _edit(kb_copy / "valuesets" / "conditions.json", change)
    with pytest.raises(KnowledgeError, match=r"conditions\.json: .*kb-status 'X'"):
        load_knowledge(kb_copy)


def test_unknown_threshold_unit_is_an_error(kb_copy):
    def change(data):
        data["thresholds"][0]["unit"] = "pmol/ml"

    _edit(kb_copy / "thresholds.json", change)
    with pytest.raises(KnowledgeError, match=r"thresholds\.json: .*unit: unknown unit 'pmol/ml'"):
        load_knowledge(kb_copy)


def test_site_alias_maps_local_code_and_wins_over_shipped_mapping(kb_copy):
    aliases = [
        {"system": LOINC, "code": "26582-7", "analyte": "homocysteine", "source": "site lab sends it for serum Hcy"},
        {"system": "urn:site:lab", "code": "VB12", "analyte": "b12-total", "source": "local code"},
    ]
    _edit(kb_copy / "aliases.json", lambda d: d.__setitem__("aliases", aliases))
    site = load_knowledge(kb_copy)
    assert site.lab_analyte(LOINC, "26582-7") == "homocysteine"
    assert site.lab_analyte("urn:site:lab", "VB12") == "b12-total"


def test_alias_to_unknown_analyte_is_an_error(kb_copy):
    alias = [{"system": "urn:site:lab", "code": "X", "analyte": "vitamin-d", "source": "x"}]
    _edit(kb_copy / "aliases.json", lambda d: d.__setitem__("aliases", alias))
    with pytest.raises(KnowledgeError, match=r"aliases\.json: aliases\[0\]\.analyte"):
        load_knowledge(kb_copy)


# --- lookups ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("system", "code", "expected"),
    [
        (LOINC, "2132-9", {"b12-total"}),
        (LOINC, "14685-2", {"b12-total"}),
        (LOINC, "59260-0", {"haemoglobin"}),
        (SCT, "44077006", {"neuro-sensory"}),
        (SCT, "424736006", {"neuro-sensory", "diabetic-neuropathy"}),
        (SCT, "420920007", {"neuro-optic"}),
        (SCT, "26544005", {"neuro-weakness"}),
        (SCT, "53442002", {"gastric-surgery"}),
        (SCT, "51346007", {"ileal-resection-or-disease"}),
        (ICD, "G62.9", {"neuro-sensory"}),
        (ICD, "G629", {"neuro-sensory"}),
        (ICD, "g32.0", {"neuro-scd-myelopathy"}),
        (ICD, "E11.42", {"neuro-sensory", "diabetic-neuropathy"}),
        (ICD, "R26.81", {"neuro-gait"}),
        (ICD, "R25.2", {"neuro-cramp"}),
        (ICD, "D51.0", {"pernicious-anaemia", "b12-deficiency"}),
        (ICD, "Z34.83", {"pregnancy"}),  # category Z34 matches its descendants
        (ICD, "E10.9", {"autoimmune-endocrine"}),
        (RX, "6809", {"metformin"}),
        (RX, "860975", {"metformin"}),
        (RX, "198051", {"proton-pump-inhibitor"}),
        (RX, "309596", {"folic-acid", "b12-replacement"}),
        (RX, "5514", {"b12-replacement"}),
        (ATC, "N01AX13", {"nitrous-oxide"}),
        (ATC, "G03AA12", {"hormonal-contraceptive"}),
    ],
)
def test_concepts_for_known_codes(kb, system, code, expected):
    assert kb.concepts_for(system, code) == frozenset(expected)


@pytest.mark.parametrize(
    ("system", "code"),
    [
        (LOINC, "16695-9"),  # U: conflicts with 14685-2
        (LOINC, "30428-7"),  # S: method-less MCV
        (RX, "11256"),  # U: "vitamin B 12" recollection only
        (ATC, "A02BC06"),  # U: dexlansoprazole ATC
        (ICD, "D75.89"),  # U: macrocytosis index mapping
        (ATC, "V03AB33"),  # cyanide antidote hydroxocobalamin: deliberately unmapped
        (SCT, "398987004"),  # post-LP headache, not hypoaesthesia
        (ICD, "Z3"),  # shorter than the Z34 category: no match
        (ICD, "Z35.0"),  # a sibling category of Z34: no match
        (None, "2132-9"),
        (LOINC, None),
    ],
)
def test_inactive_or_unknown_codes_map_to_nothing(kb, system, code):
    assert kb.concepts_for(system, code) == frozenset()


def test_lab_analyte_only_for_lab_codes(kb):
    assert kb.lab_analyte(LOINC, "13964-2") == "mma"
    assert kb.lab_analyte(LOINC, " 72160-5 ") == "b12-active"
    assert kb.lab_analyte(SCT, "44077006") is None
    assert kb.lab_analyte(LOINC, "26582-7") is None  # urine Hcy/creatinine: only via a site alias


def test_product_strength_for_daily_dose(kb):
    folic = kb.product(RX, "310410")
    assert folic is not None and folic.strength_mg == 1 and folic.strength_per == "unit"
    b12 = kb.product(RX, "309594")  # Vitamin B 12 1 MG/ML Injectable Solution
    assert b12 is not None and b12.strength_mg == 1 and b12.strength_per == "mL"
    # 2001499 (Vitamin B12 5 MG/ML) is seen only in Synthea: status S, an inactive candidate, no strength
    assert kb.product(RX, "2001499") is None and kb.concepts_for(RX, "2001499") == frozenset()
    assert kb.product(RX, "4511") is None  # ingredient, no strength


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Folic Acid 5mg tablets", {"folic-acid"}),
        ("FOLATE supplement", {"folic-acid"}),
        ("L-methylfolate 15 mg", {"levomefolate"}),
        ("folic acid 400 mcg / cyanocobalamin 1 mg", {"folic-acid", "b12-replacement"}),
        ("Vitamin  B12 1000 micrograms", {"b12-replacement"}),
        ("calcium folinate (folinic acid) rescue", {"leucovorin"}),
        ("Entonox 50/50", {"nitrous-oxide"}),
        ("omeprazole 20 mg", {"proton-pump-inhibitor"}),
        ("levomefolate calcium / drospirenone", {"levomefolate", "hormonal-contraceptive"}),  # not folic-acid
        ("Paracetamol 500 mg", set()),
        ("", set()),
    ],
)
def test_medication_classes_for_text_matches_whole_words(kb, text, expected):
    assert kb.medication_classes_for_text(text) == frozenset(expected)


def test_route_for_text(kb):
    assert kb.route_for_text("Intramuscular route") == "parenteral"
    assert kb.route_for_text("Injectable Solution") == "parenteral"
    assert kb.route_for_text("Oral Tablet") == "oral"
    assert kb.route_for_text("oral or IM") is None  # contradictory
    assert kb.route_for_text("Gas for Inhalation") is None


# --- units -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("analyte", "value", "unit", "expected"),
    [
        ("b12-total", 349, "pg/mL", 257.5),
        ("b12-total", 351, "pg/mL", 259.0),
        ("b12-total", 351, "ng/L", 259.0),
        ("b12-total", 200, "pmol/l", 200.0),
        ("b12-total", 150, "pmol/L", 150.0),
        ("folate-serum", 3, "ng/mL", 6.8),
        ("folate-serum", 3, "\u00b5g/L", 6.8),
        ("folate-serum", 12, "nmol/L", 12.0),
        ("mma", 400, "nmol/L", 0.4),
        ("mma", 0.52, "nmol/mL", 0.52),
        ("homocysteine", 22, "\u00b5mol/L", 22.0),
        ("haemoglobin", 12.5, "g/dL", 125.0),
        ("haemoglobin", 7.5, "mmol/L", 120.8),
        ("mcv", 104, "fL", 104.0),
        ("egfr", 45, "mL/min/1.73m2", 45.0),
    ],
)
def test_to_canonical(kb, analyte, value, unit, expected):
    assert kb.to_canonical(analyte, value, unit) == pytest.approx(expected, abs=0.05)


def test_b12_band_edges_fall_either_side_of_258(kb):
    assert kb.to_canonical("b12-total", 349, "pg/mL") < kb.value("b12-total.normal-above")
    assert kb.to_canonical("b12-total", 351, "pg/mL") > kb.value("b12-total.normal-above")


def test_400_nmol_per_litre_mma_is_not_above_the_limit(kb):
    assert not kb.to_canonical("mma", 400, "nmol/L") > kb.value("mma.uln")


@pytest.mark.parametrize("unit", [None, "", "pg", "PG/ML", "mg/dL"])
def test_missing_or_unknown_unit_returns_none(kb, unit):
    assert kb.to_canonical("b12-total", 150, unit) is None


def test_canonical_units(kb):
    assert kb.canonical_unit("b12-total") == "pmol/L"
    assert kb.canonical_unit("mma") == "umol/L"
    assert kb.canonical_unit("haemoglobin") == "g/L"
    assert kb.is_qualitative("intrinsic-factor-antibody") and not kb.is_qualitative("mma")


# --- thresholds, citations, orderables -------------------------------------------------------------
def test_threshold_metadata(kb):
    t = kb.threshold("b12-total.deficient-below")
    assert (t.value, t.unit, t.status, t.citation) == (133, "pmol/L", "S", "nice-ng239")
    assert kb.threshold("egfr.mma-caution-below").status == "design"
    assert kb.threshold("egfr.mma-caution-below").citation == "design-convention"
    assert kb.value("mma.uln-age-65") == 0.46
    with pytest.raises(KeyError):
        kb.threshold("b12-total.nonsense")


def test_threshold_override_changes_value_and_marks_it_local():
    site = load_knowledge(threshold_overrides={"b12-total.deficient-below": 148.0})
    t = site.threshold("b12-total.deficient-below")
    assert t.value == 148.0
    assert (t.status, t.citation) == ("design", "design-convention")
    assert "default 133" in t.source
    assert load_knowledge().value("b12-total.deficient-below") == 133  # defaults untouched


@pytest.mark.parametrize("overrides", [{"b12-total.unknown": 1.0}, {"mma.uln": "high"}, {"mma.uln": True}])
def test_bad_override_is_an_error(overrides):
    with pytest.raises(KnowledgeError, match="threshold_overrides"):
        load_knowledge(threshold_overrides=overrides)


def test_citations_and_orderables(kb):
    assert kb.citations["nice-ng239"].url == "https://www.nice.org.uk/guidance/ng239"
    neuro = kb.orderables["hydroxocobalamin-im-neuro"]
    assert (neuro.kind, neuro.code) == ("medication", "5514")
    assert "alternate days" in neuro.dosage_text
    assert kb.orderables["cyanocobalamin-oral"].code == "11248"
    referral = kb.orderables["neurology-urgent"]
    assert referral.kind == "referral" and referral.code is None and referral.text
    assert kb.orderables["mma"].code == "13964-2"


def test_knowledge_table_lists_active_codes_and_thresholds(kb):
    text = knowledge_table(kb)
    assert "2132-9" in text and "b12-total" in text
    assert "16695-9" not in text  # U entries are not listed as active
    assert "egfr.mma-caution-below" in text and "design-convention" in text
    assert "16695-9" in knowledge_table(kb, include_inactive=True)


def test_a_folate_antagonist_named_in_text_is_not_folate():
    kb = load_knowledge()
    assert kb.medication_classes_for_text("Methotrexate 2.5 mg tablet (folate antagonist)") == {"methotrexate"}
    assert kb.medication_classes_for_text("anti-folate agent") == frozenset()
    assert kb.medication_classes_for_text("Folate 400 microgram tablet") == {"folic-acid"}
