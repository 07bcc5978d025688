"""The shared RxNorm product table and brand names in the knowledge (issue 14).

What must hold: every V code of ../shared/rxnorm resolves to its class; S codes are inactive
candidates; product codes give strength per unit, route and class for the dose logic
(clinical-reference 4.6 D3); brand names are found as whole words in any lettering and flagged as
brand matches; cyanide-antidote hydroxocobalamin never counts as B12 replacement; and the committed
knowledge file is exactly what scripts/import_rxnorm.py makes of the shared tables.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pytest

from cds_service.clinical.normalize import build_patient_record
from cds_service.clinical.rules.common import medication_evidence, record_caveats
from cds_service.clinical.rules.cover import is_replacement_strength
from cds_service.knowledge import DEFAULT_DIRECTORY, KnowledgeError, knowledge_table, load_knowledge
from tests.support.project import PROJECT

SHARED = PROJECT.parent / "shared" / "rxnorm"
PRODUCT_FILE = DEFAULT_DIRECTORY / "rxnorm_products.json"
RX = "http://www.nlm.nih.gov/research/umls/rxnorm"
AS_OF = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
needs_shared = pytest.mark.skipif(not (SHARED / "rxnorm-products.tsv").is_file(),
                                  reason=f"shared RxNorm tables not present at {SHARED}")

# The table's ingredient_class -> the classes a code of it must resolve to, written here
# independently of the generator (combination products: B12 and one folate).
EXPECTED = {
    "metformin": {"metformin"},
    "proton-pump-inhibitor": {"proton-pump-inhibitor"},
    "h2-receptor-antagonist": {"h2-receptor-antagonist"},
    "folic-acid": {"folic-acid"},
    "levomefolate": {"levomefolate"},
    "leucovorin": {"leucovorin"},
    "b12-replacement": {"b12-replacement"},
}


def shipped() -> dict:
    return json.loads(PRODUCT_FILE.read_text(encoding="utf-8"))


def table_rows() -> list[dict[str, str]]:
    """The shared table when present, else the rows as the committed knowledge file keeps them."""
    if (SHARED / "rxnorm-products.tsv").is_file():
        with (SHARED / "rxnorm-products.tsv").open(encoding="utf-8", newline="") as handle:
            return list(csv.DictReader(handle, delimiter="\t"))
    return [{"rxcui": p["code"], "ingredient_class": p["table_class"], "status": p["status"], "name": p["name"]}
            for p in shipped()["products"]]


def importer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("import_rxnorm", PROJECT / "scripts" / "import_rxnorm.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def record(kb, *resources):
    return build_patient_record(list(resources), kb, patient_id="p1", as_of=AS_OF)


def med(mid="m1", codings=(), text=None, dosage=None):
    concept: dict = {"coding": [{"system": s, "code": c, "display": d} for s, c, d in codings]}
    if text:
        concept["text"] = text
    res = {"resourceType": "MedicationStatement", "id": mid, "status": "active", "subject": {"reference": "Patient/p1"},
           "medicationCodeableConcept": concept, "effectiveDateTime": "2026-09-01"}
    if dosage:
        res["dosage"] = [dosage]
    return res


ONE_A_DAY = {"timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}}


# --- the committed file is the generator's output ------------------------------------------------
@needs_shared
def test_committed_knowledge_file_is_what_the_generator_makes_of_the_shared_tables():
    module = importer()
    expected = module.render(module.build(SHARED))
    assert PRODUCT_FILE.read_text(encoding="utf-8") == expected, (
        "cds_service/knowledge/rxnorm_products.json is out of date: run .venv/bin/python scripts/import_rxnorm.py"
    )


def test_every_shipped_code_keeps_its_sources_and_only_v_is_active():
    data = shipped()
    assert data["counts"] == {"rows": 563, "active_V": 561, "inactive_S": 2, "inactive_U": 0, "brands": 110}
    for product in data["products"]:
        assert product["sources"], product["code"]
        assert product["active"] == (product["status"] == "V"), product["code"]


# --- codes -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("row", [r for r in table_rows() if r["status"] == "V"], ids=lambda r: r["rxcui"])
def test_every_v_code_of_the_table_resolves_to_its_class(kb, row):
    found = kb.concepts_for(RX, row["rxcui"])
    if row["ingredient_class"] == "combination-folate-b12":
        assert "b12-replacement" in found and found & {"folic-acid", "levomefolate"}, row["name"]
    else:
        assert EXPECTED[row["ingredient_class"]] <= found, row["name"]
    assert found <= EXPECTED.get(row["ingredient_class"], set()) | {
        "b12-replacement", "folic-acid", "levomefolate", "hormonal-contraceptive"}, row["name"]


@pytest.mark.parametrize("row", [r for r in table_rows() if r["status"] != "V"], ids=lambda r: r["rxcui"])
def test_s_codes_are_inactive_candidates_listed_but_never_matched(kb, row):
    assert kb.concepts_for(RX, row["rxcui"]) == frozenset()
    assert kb.product(RX, row["rxcui"]) is None
    assert any(e.code == row["rxcui"] and e.status == row["status"] for e in kb.inactive_entries())


@pytest.mark.parametrize(
    ("code", "classes"),
    [
        ("860975", {"metformin"}),  # 24 HR ... 500 MG *Extended Release*: commonly mislabelled as IR
        ("861007", {"metformin"}),  # the IR 500 mg tablet
        ("314200", {"proton-pump-inhibitor"}),  # pantoprazole 40 mg, labelled with eight wrong codes elsewhere
        ("310274", {"h2-receptor-antagonist"}),  # famotidine 8 mg/mL suspension, NOT pantoprazole
        ("582620", {"h2-receptor-antagonist"}),  # nizatidine 15 mg/mL [Axid], NOT pantoprazole
        ("310273", {"h2-receptor-antagonist"}),  # famotidine 20 mg tablet
        ("284799", {"proton-pump-inhibitor"}),  # BN Nexium
        ("1013630", {"levomefolate", "hormonal-contraceptive"}),  # Beyaz pack: a contraceptive, not folate therapy
        ("1298310", {"folic-acid", "b12-replacement"}),  # multivitamin: contains B12, so not folate-only
        ("309596", {"folic-acid", "b12-replacement"}),
    ],
)
def test_codes_public_repositories_mislabel_resolve_as_nlm_sources_say(kb, code, classes):
    assert kb.concepts_for(RX, code) == frozenset(classes)


def test_860975_is_the_extended_release_500_mg_tablet(kb):
    er, ir = kb.product(RX, "860975"), kb.product(RX, "861007")
    assert er is not None and ir is not None
    assert er.dose_form == "Extended Release Oral Tablet" and er.strength_mg == 500
    assert ir.dose_form == "Oral Tablet" and ir.strength_mg == 500


# --- strength, route and class for the dose logic (D3) ---------------------------------------------
def test_product_gives_strength_per_unit_route_and_class(kb):
    janumet = kb.product(RX, "861771")  # metformin 1000 MG / sitagliptin 50 MG [Janumet]
    assert janumet is not None and janumet.classes == {"metformin"} and janumet.route == "oral"
    assert (janumet.strength_mg, janumet.strength_per, janumet.brand) == (1000, "unit", "Janumet")
    injection = kb.product(RX, "309594")
    assert injection is not None and injection.route == "parenteral"
    assert (injection.strength_mg, injection.strength_per) == (1, "mL")
    assert kb.product(RX, "6809") is None and kb.product(RX, "284799") is None  # IN and BN: no strength


def test_multi_ingredient_product_keeps_each_class_strength_and_b12_decides(kb):
    multivitamin = kb.product(RX, "1298310")  # ... Folic Acid 0.4 MG ... Vitamin B 12 0.012 MG Oral Tablet
    assert multivitamin is not None
    assert multivitamin.strength_for("folic-acid").mg == 0.4
    assert multivitamin.strength_for("b12-replacement").mg == 0.012
    assert multivitamin.strength_mg == 0.012  # the B12 content decides replacement strength


def test_two_cobalamins_in_one_tablet_add_up(kb):
    both = kb.product(RX, "259711")  # mecobalamin 0.6 MG / Vitamin B 12 0.6 MG Sublingual Tablet
    assert both is not None and both.strength_mg == pytest.approx(1.2)


@pytest.mark.parametrize(
    ("code", "why"),
    [("309611", "nasal gel: mg per mg of gel"), ("995864", "pack with folic acid 2 mg and 0.5 mg units")],
)
def test_strength_that_is_not_per_unit_or_per_ml_is_left_unknown(kb, code, why):
    product = kb.product(RX, code)
    assert product is not None and product.strength_mg is None and product.strengths == (), why


def test_table_route_is_what_the_route_keywords_read_from_the_dose_form(kb):
    """normalize reads the route from the product's dose form: it must agree with the table's route."""
    for product in kb.product_table():
        if not product.active or product.tty in ("IN", "BN"):
            continue
        expected = product.route if product.route in ("oral", "parenteral") else None
        if product.dose_form is None:
            assert not product.strengths, product.code  # only the two packs without one strength
            continue
        assert kb.route_for_text(product.dose_form) == expected, (product.code, product.dose_form)


def _exposure(kb, code: str, dosage: dict | None = ONE_A_DAY):
    (product,) = [p for p in kb.product_table() if p.code == code]
    (exposure,) = record(kb, med(codings=[(RX, code, product.display)], dosage=dosage)).medications
    return exposure


def test_b12_product_strength_decides_replacement_strength(kb):
    one_mg = _exposure(kb, "309593")  # Vitamin B 12 1 MG Oral Tablet, one a day
    assert one_mg.daily_dose_mg == 1 and is_replacement_strength(one_mg, kb)
    low = _exposure(kb, "309604")  # 0.25 MG tablet
    assert low.daily_dose_mg == 0.25 and not is_replacement_strength(low, kb)
    injection = _exposure(kb, "309594", dosage={"route": {"text": "intramuscular"}})
    assert injection.route == "parenteral" and is_replacement_strength(injection, kb)


def test_low_dose_multivitamin_with_b12_is_not_replacement(kb):
    multivitamin = _exposure(kb, "1298310")
    assert "b12-replacement" in multivitamin.classes  # contains B12: never 'folate-only'
    assert multivitamin.daily_dose_mg == pytest.approx(0.012) and not is_replacement_strength(multivitamin, kb)


def test_folic_acid_04_mg_tablet_is_prophylaxis_strength(kb):
    folic = _exposure(kb, "198640")  # Folic Acid 0.4 MG Oral Tablet
    assert folic.classes == {"folic-acid"}
    assert folic.daily_dose_mg == 0.4 <= kb.value("dose.folate-prophylaxis-max-mg")
    assert _exposure(kb, "199318").daily_dose_mg == 5 > kb.value("dose.folate-prophylaxis-max-mg")


# --- brand names ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "classes"),
    [
        ("JANUMET 50-1000 MG tablet", {"metformin"}),
        ("Glucophage XR 500mg", {"metformin"}),
        ("Prilosec 20 mg capsule", {"proton-pump-inhibitor"}),
        ("NexIUM 40 MG capsule", {"proton-pump-inhibitor"}),  # tall-man lettering
        ("PriLOSEC OTC 20 MG delayed release tablet", {"proton-pump-inhibitor"}),
        ("Synjardy 12.5-1000 mg", {"metformin"}),
        ("pepcid 20mg", {"h2-receptor-antagonist"}),
        ("Beyaz", {"levomefolate", "hormonal-contraceptive"}),
        ("Folgard tablet", {"folic-acid", "b12-replacement"}),
    ],
)
def test_brand_names_resolve_and_are_flagged_as_brand_matches(kb, text, classes):
    (exposure,) = record(kb, med(codings=[("urn:local:drug", "X1", text)])).medications
    assert exposure.classes == classes and exposure.matched_by == "brand"


@pytest.mark.parametrize("text", ["Nexiumx 40 mg", "Janumetformin", "Glucophagel", "ProtonixX"])
def test_brand_names_match_whole_words_only(kb, text):
    assert kb.medication_classes_for_text(text) == frozenset()


def test_every_brand_of_the_table_resolves(kb):
    for brand in kb.brand_names():
        for term in brand.terms:
            match = kb.medication_name_match(term.upper())
            assert match.classes == brand.classes - brand.excludes and match.excluded == brand.excludes, term


@pytest.mark.parametrize("text", ["Nexium (esomeprazole) 40 mg", "Slow Fe with Folic Acid tablet"])
def test_brand_and_ingredient_name_together_is_a_match_by_name(kb, text):
    (exposure,) = record(kb, med(text=text)).medications
    assert exposure.matched_by == "text"


def test_brand_in_the_display_of_a_known_product_code_stays_a_code_match(kb):
    (exposure,) = record(kb, med(codings=[(RX, "606731", "NexIUM 40 MG Delayed Release Oral Capsule")])).medications
    assert exposure.matched_by == "code" and exposure.classes == {"proton-pump-inhibitor"}


def test_brand_match_is_flagged_on_the_card_evidence(kb):
    rec = record(kb, med(text="NexIUM 40 MG capsule"))
    item = medication_evidence(rec.medications[0])
    assert item.note == "matched by brand name, not by code"
    assert any("brand name" in c for c in record_caveats(rec, [item]))
    assert not any("recognised by name" in c for c in record_caveats(rec, [item]))


# --- cyanide-antidote hydroxocobalamin -------------------------------------------------------------
@pytest.mark.parametrize(
    "resource",
    [
        med(text="Cyanokit 5 g injection"),
        med(text="CYANOKIT (hydroxocobalamin) for injection"),
        med(codings=[(RX, "5514", "hydroxocobalamin")], text="Cyanokit 5 g IV over 15 minutes"),
        med(text="Hydroxocobalamin 5 g IV for cyanide poisoning"),
        med(text="hydroxocobalamin for injection 2.5 g"),
        med(text="Hydroxocobalamin 5,000 mg vial"),
        med(text="5 g hydroxocobalamin"),
    ],
)
def test_cyanide_antidote_hydroxocobalamin_never_counts_as_b12(kb, resource):
    assert record(kb, resource).medications == ()


@pytest.mark.parametrize("text", ["Hydroxocobalamin 1 mg/mL injection", "hydroxocobalamin 1000 micrograms IM",
                                  "Hydroxocobalamin 1 mg IM every 3 months"])
def test_replacement_doses_of_hydroxocobalamin_still_count(kb, text):
    (exposure,) = record(kb, med(text=text)).medications
    assert exposure.classes == {"b12-replacement"}


# --- b12-cds knowledge -------------------------------------------------------------------------------
def test_knowledge_table_lists_product_codes_with_source_and_status(kb):
    text = knowledge_table(kb)
    row = next(line for line in text.splitlines() if line.startswith("861771 "))
    assert "SBD" in row and "metformin 1000 mg/unit" in row and " V " in row and "cqframework/" in row
    s_row = next(line for line in text.splitlines() if line.startswith("2001499 "))
    assert "S (inactive candidate)" in s_row and "synthea" in s_row
    assert "561 active; 2 inactive candidates" in text
    assert "Cyanokit" in text and "never counts as b12-replacement" in text


# --- validation ------------------------------------------------------------------------------------
@pytest.fixture()
def kb_copy(tmp_path: Path) -> Path:
    target = tmp_path / "knowledge"
    shutil.copytree(DEFAULT_DIRECTORY, target, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return target


def _edit_products(root: Path, change) -> None:
    path = root / "rxnorm_products.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _product(data: dict, code: str) -> dict:
    return next(p for p in data["products"] if p["code"] == code)


def test_an_s_code_marked_active_is_an_error(kb_copy):
    _edit_products(kb_copy, lambda d: _product(d, "2001499").update(active=True))
    with pytest.raises(KnowledgeError, match=r"rxnorm_products.json: .*2001499.*only V ships active"):
        load_knowledge(kb_copy)


def test_a_code_without_sources_is_an_error(kb_copy):
    _edit_products(kb_copy, lambda d: _product(d, "861771").update(sources=[]))
    with pytest.raises(KnowledgeError, match=r"861771.*sources"):
        load_knowledge(kb_copy)


def test_a_strength_of_a_class_the_product_lacks_is_an_error(kb_copy):
    _edit_products(kb_copy, lambda d: _product(d, "861771")["strengths"][0].update(concept="folic-acid"))
    with pytest.raises(KnowledgeError, match=r"861771.*not one of the product's classes"):
        load_knowledge(kb_copy)


def test_a_product_defined_twice_is_an_error(kb_copy):
    def add_copy(data: dict) -> None:
        data["products"].append(dict(_product(data, "861771"), code="104099"))  # 104099 lives in valuesets/
    _edit_products(kb_copy, add_copy)
    with pytest.raises(KnowledgeError, match="104099"):
        load_knowledge(kb_copy)


def test_a_brand_in_brackets_is_not_read_as_an_ingredient_of_the_name(kb):
    """'[Slow Fe with Folic Acid]' once split the name at 'with' and hid the folic acid strength (D3)."""
    name = "ferrous sulfate 160 MG / Folic Acid 0.4 MG Extended Release Tablet [Slow Fe with Folic Acid]"
    (by_name,) = record(kb, med(text=name)).medications
    (by_code,) = record(kb, med(codings=[(RX, "212973", None)])).medications
    assert (by_name.unit_strength_mg, by_name.strength_source) == (0.4, "product name")
    assert (by_code.unit_strength_mg, by_code.strength_source) == (0.4, "product table")
