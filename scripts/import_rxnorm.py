"""Build cds_service/knowledge/rxnorm_products.json from the shared RxNorm tables (issue 14).

Why a generator and a committed output: the service must run where ../shared is absent (CI, users),
so the knowledge ships inside the package; and a clinical reviewer should read a diff of plain JSON,
not trust a script. The output is a pure function of the three TSV files in ../shared/rxnorm and of
the ingredient names in cds_service/knowledge/medication_text.json, so tests can regenerate it and
compare (tests/unit/test_rxnorm_products.py).

Nothing is invented here: every code, name, strength, route, source and status is copied from
rxnorm-products.tsv (and its evidence file); brand names from brand-names.tsv. What the script adds
is only derived from those strings and written next to them so a reviewer can check it:
- `classes`: the table's ingredient_class mapped to the service's concept ids, plus classes the
  RxNorm name itself states (e.g. 'hormonal-contraceptive' for a drospirenone/levomefolate pack,
  so that a contraceptive coded only by product code is never read as folate therapy);
- `strengths`: strength_text parsed into mg per unit (tablet, capsule) or per mL, per class;
- `dose_form`: the RxNorm dose form of the unit that carries the relevant ingredient;
- `active`: status V only (clinical-reference: only verified codes ship active; S rows are listed
  as inactive candidates).

Usage:  .venv/bin/python scripts/import_rxnorm.py [--source ../shared/rxnorm] [--check]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import re
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = PROJECT.parent / "shared" / "rxnorm"
OUTPUT = PROJECT / "cds_service" / "knowledge" / "rxnorm_products.json"
SYNONYMS = PROJECT / "cds_service" / "knowledge" / "medication_text.json"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
PRODUCTS_TSV = "rxnorm-products.tsv"
EVIDENCE_TSV = "rxnorm-products-evidence.tsv"
BRANDS_TSV = "brand-names.tsv"

# The table's ingredient_class -> service concept ids (cds_service/knowledge/concepts.py). The
# combination class gets its folate part from the ingredient names (folic acid or levomefolate).
TABLE_CLASSES: dict[str, tuple[str, ...]] = {
    "metformin": ("metformin",),
    "proton-pump-inhibitor": ("proton-pump-inhibitor",),
    "h2-receptor-antagonist": ("h2-receptor-antagonist",),
    "folic-acid": ("folic-acid",),
    "levomefolate": ("levomefolate",),
    "leucovorin": ("leucovorin",),
    "b12-replacement": ("b12-replacement",),
    "combination-folate-b12": ("b12-replacement",),
    "b12-cyanide-antidote": (),  # never B12 replacement (clinical-reference 3.2): an exclusion, not a class
    "nitrous-oxide": ("nitrous-oxide",),
}
EXCLUDES: dict[str, tuple[str, ...]] = {"b12-cyanide-antidote": ("b12-replacement",)}
FOLATE_CLASSES = ("folic-acid", "levomefolate")
PRODUCT_TTYS = frozenset({"SCD", "SBD", "GPCK", "BPCK"})
STATUSES = frozenset({"V", "S", "U"})
ROUTES = frozenset({"oral", "parenteral", "nasal", "unknown"})

# "Vitamin B 12 1 MG/ML (=1000 MCG/ML)", "Folic Acid 0.4 MG", "Vitamin B 12 0.004 MG (=4 MCG)/MG"
_STRENGTH = re.compile(
    r"^(?P<ingredient>.+?)\s+(?P<value>\d+(?:\.\d+)?)\s+(?P<unit>MG|MCG|G)(?:/(?P<per>[A-Z]+))?"
    r"(?:\s*\(=[^)]*\)(?:/(?P<per2>[A-Z]+))?)?$",
    re.IGNORECASE,
)
_TO_MG = {"mg": 1.0, "mcg": 0.001, "g": 1000.0}
# The dose form closes an RxNorm clinical drug name: "... 500 MG Extended Release Oral Tablet [Brand]".
_DOSE_FORM = re.compile(
    r"\d(?:[\d.]*)\s+(?:MG|MCG|UNT|MEQ|ML|G|%)(?:/(?:ML|MG|ACTUAT|HR))?\s+(?P<form>[A-Za-z][A-Za-z ]*?)\s*"
    r"(?:\[[^\]]*\])?\s*$"
)
_BRAND_SUFFIX = re.compile(r"\[(?P<brand>[^\]]+)\]\s*$")
# RxNorm brand strings that carry a formulation date or a pack size EHRs leave out.
_BRAND_QUALIFIER = re.compile(r"\s+(?:Reformulated\s+[A-Z][a-z]{2}\s+\d{4}|\d+\s+Day)$")


class ImportError_(ValueError):
    """The shared table has a row this importer cannot represent faithfully; the message names it."""


def read_tsv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return [dict(row) for row in csv.DictReader(handle, delimiter="\t")]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class NameClassifier:
    """Classes named in a string, using the service's own ingredient names (medication_text.json).

    Only the hand-written generic names are used, never brand names or an earlier output, so the
    generated file never depends on itself.
    """

    def __init__(self, synonyms_file: Path = SYNONYMS) -> None:
        data = json.loads(synonyms_file.read_text(encoding="utf-8"))
        self._terms: dict[str, set[str]] = {}
        for item in data["synonyms"]:
            for term in item["terms"]:
                self._terms.setdefault(" ".join(term.lower().split()), set()).update(item["concepts"])
        parts = [re.escape(t).replace(r"\ ", r"\s+") for t in sorted(self._terms, key=len, reverse=True)]
        self._pattern = re.compile(r"(?<!\w)(?:" + "|".join(parts) + r")(?!\w)", re.IGNORECASE)

    def classes(self, text: str) -> set[str]:
        found: set[str] = set()
        for match in self._pattern.findall(text):
            found |= self._terms.get(" ".join(match.lower().split()), set())
        return found


def split_sources(text: str) -> list[str]:
    """The `sources` cell as a list: split at ';' outside brackets (a source's own note may hold ';')."""
    parts: list[str] = []
    depth, start = 0, 0
    for i, char in enumerate(text):
        if char in "([":
            depth += 1
        elif char in ")]":
            depth = max(0, depth - 1)
        elif char == ";" and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def parse_strengths(text: str, names: NameClassifier, where: str) -> tuple[list[dict[str, Any]], list[str]]:
    """strength_text -> [{concept, ingredient, mg, per}], one per class; notes say what was left out.

    Two ingredients of one class in the same unit are added up (mecobalamin 0.6 mg + vitamin B12
    0.6 mg is 1.2 mg cobalamin per tablet). The same ingredient listed twice with different
    strengths is a pack of different units: no single strength per unit exists, so none is given
    (an unknown strength is never cover, clinical-reference 4.6 D3).
    """
    per_class: dict[str, dict[str, Any]] = {}
    seen: dict[tuple[str, str], float] = {}
    ambiguous: set[str] = set()
    notes: list[str] = []
    for part in (p.strip() for p in text.split(";")):
        if not part:
            continue
        match = _STRENGTH.match(part)
        if match is None:
            raise ImportError_(f"{where}: strength_text part {part!r} not understood")
        ingredient = match["ingredient"].strip()
        concepts = names.classes(ingredient)
        if len(concepts) != 1:
            raise ImportError_(f"{where}: ingredient {ingredient!r} maps to {sorted(concepts)}, not one class")
        concept = next(iter(concepts))
        per_raw = (match["per"] or match["per2"] or "").upper()
        if per_raw not in ("", "ML"):
            notes.append(f"{ingredient}: strength per {per_raw} is not per unit or per mL, left out")
            ambiguous.add(concept)
            continue
        mg = round(float(match["value"]) * _TO_MG[match["unit"].lower()], 9)
        per = "mL" if per_raw == "ML" else "unit"
        key = (concept, ingredient.lower())
        if key in seen:
            if seen[key] != mg:
                notes.append(f"{ingredient}: different strengths in different units of a pack, left out")
                ambiguous.add(concept)
            continue  # the same ingredient and strength named again (another unit of a pack): once
        seen[key] = mg
        entry = per_class.get(concept)
        if entry is None:
            per_class[concept] = {"concept": concept, "ingredient": ingredient, "mg": mg, "per": per}
        elif entry["per"] != per:
            notes.append(f"{concept}: strengths per unit and per mL mixed, left out")
            ambiguous.add(concept)
        else:
            entry["ingredient"] = f"{entry['ingredient']} + {ingredient}"
            entry["mg"] = round(entry["mg"] + mg, 9)
    strengths = [per_class[c] for c in sorted(per_class) if c not in ambiguous]
    for item in strengths:
        item["mg"] = _tidy(item["mg"])
    return strengths, notes


def _tidy(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def dose_form(name: str, tty: str, strengths: list[dict[str, Any]]) -> str | None:
    """The RxNorm dose form of the unit that carries the product's relevant ingredient."""
    if tty in ("GPCK", "BPCK"):
        # "{4 (amoxicillin 500 MG Oral Capsule) / 2 (lansoprazole 30 MG Delayed Release Oral Capsule) } Pack"
        units = re.findall(r"\(([^()]*(?:\[[^\]]*\][^()]*)?)\)", name)
        wanted = [s["ingredient"].split(" + ")[0].lower() for s in strengths]
        for unit in units:
            if any(w in unit.lower() for w in wanted):
                found = _DOSE_FORM.search(unit)
                if found:
                    return found["form"]
        return None
    found = _DOSE_FORM.search(name)
    return found["form"] if found else None


def brand_of(name: str) -> str | None:
    match = _BRAND_SUFFIX.search(name)
    return match["brand"] if match else None


def classes_for(row: Mapping[str, str], names: NameClassifier, where: str) -> tuple[list[str], list[str]]:
    """(classes, classes found only in the RxNorm name) for one product row."""
    table_class = row["ingredient_class"]
    if table_class not in TABLE_CLASSES:
        raise ImportError_(f"{where}: unknown ingredient_class {table_class!r}")
    named = names.classes(row["name"]) | names.classes(row["strength_text"])
    classes = set(TABLE_CLASSES[table_class])
    if table_class == "combination-folate-b12":
        folate = named & set(FOLATE_CLASSES)
        if not folate:
            raise ImportError_(f"{where}: combination product names no folate ingredient")
        classes |= folate
    if row["contains_b12"] == "yes":
        classes.add("b12-replacement")
    extra = named - classes - set().union(*EXCLUDES.values())
    return sorted(classes | extra), sorted(extra)


def build_products(source: Path, names: NameClassifier) -> list[dict[str, Any]]:
    evidence = {r["rxcui"]: r for r in read_tsv(source / EVIDENCE_TSV)}
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, row in enumerate(read_tsv(source / PRODUCTS_TSV), start=2):
        code = row["rxcui"].strip()
        where = f"{PRODUCTS_TSV}:{i} (rxcui {code})"
        if not code.isdigit():
            raise ImportError_(f"{where}: rxcui is not numeric")
        if code in seen:
            raise ImportError_(f"{where}: duplicate rxcui")
        seen.add(code)
        status = row["status"].strip()
        if status not in STATUSES:
            raise ImportError_(f"{where}: status {status!r} not V/S/U")
        route = row["route"].strip()
        if route not in ROUTES:
            raise ImportError_(f"{where}: route {route!r} not one of {sorted(ROUTES)}")
        classes, from_name = classes_for(row, names, where)
        strengths, notes = parse_strengths(row["strength_text"], names, where)
        for item in strengths:
            if item["concept"] not in classes:
                raise ImportError_(f"{where}: strength of {item['concept']} but the product is {classes}")
        ev = evidence.get(code, {})
        entry: dict[str, Any] = {
            "code": code,
            "tty": row["tty"],
            "name": row["name"],
            "table_class": row["ingredient_class"],
            "classes": classes,
            "route": route,
            "status": status,
            "active": status == "V",
            "sources": split_sources(row["sources"]),
        }
        if from_name:
            entry["classes_from_name"] = from_name
        if row["tty"] in PRODUCT_TTYS:
            entry["dose_form"] = dose_form(row["name"], row["tty"], strengths)
            entry["strength_text"] = row["strength_text"]
            entry["strengths"] = strengths
        brand = brand_of(row["name"])
        if brand:
            entry["brand"] = brand
        if notes:
            entry["strength_notes"] = notes
        if ev:
            entry["evidence"] = {
                "source_kinds": ev.get("source_kinds", ""),
                "independent_groups": int(ev["independent_groups"]) if ev.get("independent_groups") else 0,
                "newest_source_year": int(ev["newest_source_year"]) if ev.get("newest_source_year") else None,
            }
            if ev.get("notes"):
                entry["evidence"]["notes"] = ev["notes"]
        out.append(entry)
    out.sort(key=lambda e: (e["table_class"], e["tty"], int(e["code"])))
    return out


def brand_terms(brand: str) -> list[str]:
    """The brand as listed, and without a RxNorm formulation date or pack size ('Beyaz 28 Day' -> 'Beyaz')."""
    short = _BRAND_QUALIFIER.sub("", brand).strip()
    return [brand] if short == brand or not short else [brand, short]


def build_brands(source: Path, products: list[dict[str, Any]], names: NameClassifier) -> list[dict[str, Any]]:
    by_brand: dict[str, set[str]] = {}
    for product in products:
        if product.get("brand") and product["active"]:
            by_brand.setdefault(product["brand"].lower(), set()).update(product["classes"])
    out: list[dict[str, Any]] = []
    for i, row in enumerate(read_tsv(source / BRANDS_TSV), start=2):
        brand = row["brand"].strip()
        where = f"{BRANDS_TSV}:{i} ({brand})"
        table_class = row["ingredient_class"]
        if table_class not in TABLE_CLASSES:
            raise ImportError_(f"{where}: unknown ingredient_class {table_class!r}")
        classes = set(TABLE_CLASSES[table_class]) | by_brand.get(brand.lower(), set())
        if table_class == "combination-folate-b12" and not classes & set(FOLATE_CLASSES):
            raise ImportError_(f"{where}: no product of this brand names its folate ingredient")
        if not classes and table_class not in EXCLUDES:
            raise ImportError_(f"{where}: brand maps to no class")
        entry: dict[str, Any] = {
            "brand": brand,
            "terms": brand_terms(brand),
            "table_class": table_class,
            "classes": sorted(classes),
            "example": row["example_rxcui"].strip(),
            "source": row["source"].strip(),
        }
        if table_class in EXCLUDES:
            entry["excludes"] = list(EXCLUDES[table_class])
        generic = [t for t in entry["terms"] if names.classes(t)]
        if generic:
            entry["also_a_generic_name"] = generic
        out.append(entry)
    out.sort(key=lambda e: (e["table_class"], e["brand"].lower()))
    return out


def build(source: Path = DEFAULT_SOURCE, synonyms_file: Path = SYNONYMS) -> dict[str, Any]:
    """The knowledge file's content for the tables in `source` (see the module docstring)."""
    names = NameClassifier(synonyms_file)
    products = build_products(source, names)
    brands = build_brands(source, products, names)
    return {
        "_format": (
            "Generated by scripts/import_rxnorm.py from the shared RxNorm tables; do not edit by hand, "
            "rerun the script. Each product keeps the table's sources and status; only status V is "
            "active. 'classes' are service concept ids (the table class, plus any class the RxNorm name "
            "states: 'classes_from_name'). 'strengths' are mg per unit (tablet, capsule) or per mL of the "
            "relevant ingredient of each class. Brands feed the name matcher (whole words, case-insensitive)."
        ),
        "system": RXNORM,
        "inputs": {name: sha256(source / name) for name in (PRODUCTS_TSV, EVIDENCE_TSV, BRANDS_TSV)},
        "counts": _counts(products, brands),
        "products": products,
        "brands": brands,
    }


def _counts(products: Iterable[dict[str, Any]], brands: list[dict[str, Any]]) -> dict[str, int]:
    rows = list(products)
    return {
        "rows": len(rows),
        "active_V": sum(1 for p in rows if p["active"]),
        "inactive_S": sum(1 for p in rows if p["status"] == "S"),
        "inactive_U": sum(1 for p in rows if p["status"] == "U"),
        "brands": len(brands),
    }


def render(content: Mapping[str, Any]) -> str:
    """Stable text: one key per line, so a changed strength or status is a one-line diff."""
    return json.dumps(content, indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="folder with the RxNorm TSV files")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed file is out of date")
    args = parser.parse_args(argv)
    text = render(build(args.source))
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.is_file() else ""
        if current != text:
            print(f"{args.output} is out of date: rerun scripts/import_rxnorm.py", file=sys.stderr)
            return 1
        print(f"{args.output} is up to date")
        return 0
    args.output.write_text(text, encoding="utf-8")
    counts = json.loads(text)["counts"]
    print(f"wrote {args.output}: {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
