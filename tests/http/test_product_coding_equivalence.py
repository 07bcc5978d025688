"""Real EHRs name a medication by product code, by ingredient code or only by name (issue 14).

Property: for every fixture patient, rewriting any medication's coding among those three forms
(any product of its class from the shipped RxNorm table; the ingredient codes of its classes; the
product's RxNorm name or brand as text only) gives the same cards, by topic and indicator, as the
fixture as written. Only the "matched by name / brand name" caveat may differ. Requests go
through the HTTP API with the evaluation time pinned, as in tests/http/test_scenarios.py.

Where the record itself gives no mass dose ("1 tablet daily"), a product's strength is real
information an ingredient code lacks; products are then drawn only among those whose strength
cannot change a dose-dependent answer (oral B12 below the replacement minimum), so the property
claims what it should and no more.

Scenario: a patient on Janumet and Nexium, named only by brand, with a normal B12 and new
paraesthesia has two risk factors and gets the discordant-normal MMA card (R1 trigger B).
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from functools import cache, lru_cache
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cds_service.clinical.normalize import build_patient_record
from cds_service.clinical.record import MedicationExposure
from cds_service.knowledge import ProductInfo, load_knowledge
from fixtures.build_requests import build_request
from tests.support.project import EVALUATION_TIME, FIXTURES
from tests.support.scenarios import card_multiset, describe_cards, service_url

RX = "http://www.nlm.nih.gov/research/umls/rxnorm"
HOOK = "patient-view"
MASS_UNITS = frozenset({"mg", "ug", "mcg", "g", "microgram", "micrograms", "milligram", "milligrams"})
MEDICATION_TYPES = ("MedicationRequest", "MedicationStatement", "MedicationAdministration")
DOSE_CLASSES = frozenset({"b12-replacement", "folic-acid"})  # the classes whose dose decides an answer (D3)
KB = load_knowledge()
AS_OF = datetime.fromisoformat(EVALUATION_TIME.replace("Z", "+00:00"))


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory):
    from cds_service import create_app

    db = tmp_path_factory.mktemp("coding-forms") / "t.db"
    app = create_app({"TESTING": True, "EVALUATION_TIME": EVALUATION_TIME, "DATABASE_URL": f"sqlite:///{db}"})
    return app.test_client()


def cards_for(client, bundle: dict[str, Any]) -> list[dict[str, Any]]:
    response = client.post(service_url(HOOK), json=build_request(bundle, HOOK))
    assert response.status_code == 200, response.get_data(as_text=True)[:2000]
    return response.get_json()["cards"]


# --- the three coding forms, from the shipped knowledge -------------------------------------------
@lru_cache(maxsize=1)
def ingredient_codes() -> dict[str, tuple[str, str]]:
    """class -> (RxNorm ingredient code, display): the hand-curated IN entries (clinical-reference 3.2)."""
    out: dict[str, tuple[str, str]] = {}
    for entry in KB.active_entries():
        if entry.system == RX and entry.valueset == "b12-medications" and KB.product(RX, entry.code) is None:
            out.setdefault(entry.concept, (entry.code, entry.display))
    return out


def exposure_of(resource: dict[str, Any]) -> MedicationExposure | None:
    record = build_patient_record([resource], KB, patient_id="p", as_of=AS_OF)
    return record.medications[0] if record.medications else None


def mass_dosed(resource: dict[str, Any]) -> bool:
    dosages = resource.get("dosageInstruction") or resource.get("dosage") or []
    if isinstance(dosages, dict):
        dosages = [dosages]
    for dosage in dosages:
        for rate in dosage.get("doseAndRate") or []:
            quantity = rate.get("doseQuantity") or {}
            if str(quantity.get("unit") or quantity.get("code") or "").lower() in MASS_UNITS:
                return True
    return False


@dataclass(frozen=True)
class Target:
    """One fixture medication to rewrite: its classes, the products it may become, the text to keep.

    When the dose decides an answer (B12, folic acid) and the record gives no mass dose, the unit
    strength is information: products must have the record's strength (and route), and the
    ingredient form keeps the record's text, which is where that strength was read (D3). With an
    unknown strength no product can stand in for it, and only the ingredient form is used.
    """

    index: int
    classes: frozenset[str]
    products: tuple[ProductInfo, ...]
    keep_text: str | None


def target_for(index: int, resource: dict[str, Any]) -> Target | None:
    exposure = exposure_of(resource)
    if exposure is None:
        return None
    classes = exposure.classes
    candidates = [p for p in KB.product_table() if p.active and p.tty not in ("IN", "BN") and p.classes == classes]
    dose_decides = bool(classes & DOSE_CLASSES) and not mass_dosed(resource)
    keep_text = None
    if "b12-replacement" in classes:  # parenteral B12 counts at any dose: the route must not change
        candidates = [p for p in candidates
                      if p.route == exposure.route or (exposure.route == "unknown" and p.route != "parenteral")]
    if dose_decides:
        if exposure.unit_strength_mg is None:
            candidates = []
        else:
            candidates = [p for p in candidates if p.strength_mg == pytest.approx(exposure.unit_strength_mg)
                          and p.strength_per == exposure.strength_per]
            keep_text = resource["medicationCodeableConcept"].get("text")
    if not candidates and not all(c in ingredient_codes() for c in classes):
        return None
    return Target(index, classes, tuple(candidates), keep_text)


def brand_text(product: ProductInfo) -> str | None:
    """'Janumet 1000 mg' style text, when the brand of this product is one the name matcher knows."""
    if not product.brand:
        return None
    known = {t.lower() for b in KB.brand_names() for t in b.terms}
    if product.brand.lower() not in known:
        return None
    strength = f" {product.strength_mg:g} mg" if product.strength_mg is not None else ""
    return f"{product.brand}{strength} {product.dose_form or ''}".strip()


@lru_cache(maxsize=1)
def rewritable() -> dict[str, tuple[Target, ...]]:
    """fixture slug -> the medications (coded concepts of one of our classes) that can be rewritten."""
    out: dict[str, tuple[Target, ...]] = {}
    for path in sorted((FIXTURES / "patients").glob("*.json")):
        bundle = json.loads(path.read_text(encoding="utf-8"))
        targets = []
        for i, entry in enumerate(bundle["entry"]):
            resource = entry["resource"]
            if resource["resourceType"] in MEDICATION_TYPES and "medicationCodeableConcept" in resource:
                target = target_for(i, resource)
                if target is not None:
                    targets.append(target)
        if targets:
            out[path.stem] = tuple(targets)
    return out


def rewrite(resource: dict[str, Any], form: str, target: Target, product: ProductInfo | None,
            use_brand: bool) -> dict[str, Any] | None:
    """The resource with its medicationCodeableConcept in one form; None when the form does not exist.

    The product form carries the code alone when `use_brand` is false, so the code must resolve by
    itself (its display would otherwise be matched by name); with `use_brand` it carries the display.
    """
    resource = copy.deepcopy(resource)
    if form in ("product", "name") and product is None:
        return None
    if form == "product":
        assert product is not None
        coding = {"system": RX, "code": product.code} | ({"display": product.display} if use_brand else {})
        concept: dict[str, Any] = {"coding": [coding]}
    elif form == "ingredient":
        codes = [ingredient_codes().get(c) for c in sorted(target.classes)]
        if any(c is None for c in codes):
            return None  # e.g. hormonal contraceptives: no RxNorm ingredient code in the knowledge
        concept = {"coding": [{"system": RX, "code": code, "display": display} for code, display in codes if code]}
        if target.keep_text:
            concept["text"] = target.keep_text
    else:
        assert product is not None
        concept = {"text": (brand_text(product) if use_brand else None) or product.display}
    resource["medicationCodeableConcept"] = concept
    return resource


@cache
def fixture(slug: str) -> str:
    return (FIXTURES / "patients" / f"{slug}.json").read_text(encoding="utf-8")


_BASELINE: dict[str, Counter] = {}


def baseline(client, slug: str) -> Counter:
    if slug not in _BASELINE:
        _BASELINE[slug] = card_multiset(cards_for(client, json.loads(fixture(slug))))
    return _BASELINE[slug]


@st.composite
def rewritten_charts(draw: st.DrawFn) -> tuple[str, dict[str, Any], list[str]]:
    slug = draw(st.sampled_from(sorted(rewritable())))
    bundle = json.loads(fixture(slug))
    changes = []
    for target in rewritable()[slug]:
        original = bundle["entry"][target.index]["resource"]
        product = draw(st.sampled_from(target.products)) if target.products else None
        forms = [f for f in ("product", "ingredient", "name")
                 if rewrite(original, f, target, product, use_brand=False) is not None]
        form = draw(st.sampled_from(forms))
        new = rewrite(original, form, target, product, use_brand=draw(st.booleans()))
        assert new is not None
        bundle["entry"][target.index]["resource"] = new
        changes.append(f"{new['id']}: {form} {json.dumps(new['medicationCodeableConcept'])}")
    return slug, bundle, changes


def test_most_fixture_medications_can_be_rewritten():
    """Guard for the property below: it must actually exercise the risk, folate and B12 classes."""
    targets = [t for targets in rewritable().values() for t in targets]
    classes = {c for t in targets if t.products for c in t.classes}
    assert {"metformin", "proton-pump-inhibitor", "folic-acid", "b12-replacement", "levomefolate"} <= classes
    assert len(rewritable()) >= 30
    assert sum(1 for t in targets if t.keep_text) >= 2  # strength-deciding records (D3 fixtures) included


@given(chart=rewritten_charts())
@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_product_code_ingredient_code_or_name_give_the_same_cards(client, chart):
    slug, bundle, changes = chart
    cards = cards_for(client, bundle)
    assert card_multiset(cards) == baseline(client, slug), (
        f"{slug}: rewriting\n  " + "\n  ".join(changes) + f"\nchanged the cards to:\n{describe_cards(cards)}"
    )


@pytest.mark.parametrize("form", ["product", "ingredient", "name"])
def test_each_form_alone_over_every_rewritable_fixture(client, form):
    """Every fixture with every medication in one form (first product of its class): a fixed sweep."""
    for slug, meds in sorted(rewritable().items()):
        bundle = json.loads(fixture(slug))
        for target in meds:
            product = target.products[0] if target.products else None
            new = rewrite(bundle["entry"][target.index]["resource"], form, target, product, use_brand=form == "name")
            if new is not None:
                bundle["entry"][target.index]["resource"] = new
        cards = cards_for(client, bundle)
        assert card_multiset(cards) == baseline(client, slug), f"{slug} ({form}):\n{describe_cards(cards)}"


# --- Janumet and Nexium by name only ----------------------------------------------------------------
def _brand_only_chart(*texts: str) -> dict[str, Any]:
    """r1-normal-neuro-one-risk (B12 300 pmol/L, paraesthesia since June) with its metformin replaced."""
    bundle = json.loads(fixture("r1-normal-neuro-one-risk"))
    entries = [e for e in bundle["entry"] if e["resource"]["resourceType"] != "MedicationRequest"]
    (template,) = [e for e in bundle["entry"] if e["resource"]["resourceType"] == "MedicationRequest"]
    for n, text in enumerate(texts):
        entry = copy.deepcopy(template)
        entry["resource"]["id"] = f"brand-only-{n}"
        entry["fullUrl"] = entry["fullUrl"].rsplit("/", 1)[0] + f"/brand-only-{n}"
        entry["resource"]["medicationCodeableConcept"] = {"text": text}
        entry["resource"].pop("dosageInstruction", None)
        entries.append(entry)
    bundle["entry"] = entries
    return bundle


def test_janumet_and_nexium_by_name_are_two_risk_factors_for_the_discordant_normal_mma_card(client):
    cards = cards_for(client, _brand_only_chart("JANUMET 50-1000 MG tablet", "NexIUM 40 MG capsule"))
    assert card_multiset(cards) == Counter({("mma-testing", "warning"): 1}), describe_cards(cards)
    detail = cards[0]["detail"]
    assert "JANUMET 50-1000 MG tablet" in detail and "NexIUM 40 MG capsule" in detail
    assert "matched by brand name" in detail and "recognised by brand name" in detail


@pytest.mark.parametrize(
    "texts",
    [
        ("JANUMET 50-1000 MG tablet",),  # one risk factor: trigger B needs two
        ("JANUVIA 100 MG tablet", "NexIUM 40 MG capsule"),  # Januvia is sitagliptin alone, not metformin
    ],
)
def test_one_brand_risk_factor_alone_stays_silent(client, texts):
    cards = cards_for(client, _brand_only_chart(*texts))
    assert cards == [], describe_cards(cards)
