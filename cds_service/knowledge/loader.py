"""Load and validate the knowledge files once at start-up.

Validation is strict because a wrong knowledge file fails silently at run time (a typo in a concept
id simply never matches). Every problem raises `KnowledgeError` naming the file and the field or
entry, e.g. ``valuesets/labs.json: compose.include[0].concept[3] (code '2132-9'): unknown concept id``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from cds_service.knowledge.concepts import ALL_CONCEPTS, LAB_ANALYTES, MEDICATION_CLASSES

from .explain import FAMILIES_FILE, knowledge_digest, load_families, load_unit_display
from .medication_names import NameExclusion
from .model import (
    CODE_STATUSES,
    REQUIRED_CITATION_IDS,
    REQUIRED_ORDERABLE_KEYS,
    REQUIRED_THRESHOLD_KEYS,
    THRESHOLD_STATUSES,
    Citation,
    CodedEntry,
    KeywordRoute,
    Knowledge,
    KnowledgeError,
    Orderable,
    ProductInfo,
    SiteAlias,
    Threshold,
    ThresholdOverrideError,
    UnitTable,
    code_key,
)
from .products import PRODUCT_FILE, PRODUCT_TTYS, RXNORM, load_product_table
from .validation import _concept_list, _field, _list, _number, _read, _strings
from .wording import Wording, load_wording

DEFAULT_DIRECTORY = Path(__file__).resolve().parent
EXT = "https://b12-neuro-cds.example.org/StructureDefinition/"
ORDERABLE_KINDS = frozenset({"lab", "medication", "referral"})


def load_knowledge(
    directory: str | Path | None = None,
    threshold_overrides: Mapping[str, float] | None = None,
) -> Knowledge:
    """Read every knowledge file under `directory` (default: the shipped package data) and validate it.

    `threshold_overrides` lets a site replace default values (BSH 2014: establish local reference
    ranges; clinical-reference preamble: every numeric threshold configurable). An overridden
    threshold is reported with status 'design' and citation 'design-convention', because the number
    shown on a card is then the site's choice, not the guideline's.
    """
    root = Path(directory) if directory is not None else DEFAULT_DIRECTORY
    citations = _load_citations(root)
    units, extra_units = _load_units(root)
    known_units = {t.canonical for t in units.values()} | extra_units
    thresholds = _load_thresholds(root, citations, known_units)
    defaults = dict(thresholds)
    _apply_overrides(thresholds, threshold_overrides)
    entries, products = _load_valuesets(root)
    table_entries, table, brands = load_product_table(root)
    for info in table:
        key = (RXNORM, code_key(RXNORM, info.code))
        if info.tty not in PRODUCT_TTYS:
            continue  # an ingredient (IN) or brand concept (BN): a code, but no strength or dose form
        if key in products:
            raise KnowledgeError(f"{PRODUCT_FILE}: product {info.code} is also a product in valuesets/ "
                                 "(each product has one source of truth)")
        if info.active:
            products[key] = info
    qualitative_codes, qualitative_texts = _load_qualitative(root)
    synonyms, exclusions = _load_synonyms(root, thresholds)
    kb = Knowledge(
        entries=entries + table_entries,
        products=products,
        product_table=table,
        brands=brands,
        exclusions=exclusions,
        lab_analytes=LAB_ANALYTES,
        units=units,
        thresholds=thresholds,
        citations=citations,
        orderables=_load_orderables(root, citations),
        aliases=_load_aliases(root),
        synonyms=synonyms,
        qualitative_codes=qualitative_codes,
        qualitative_texts=qualitative_texts,
        route_keywords=_load_routes(root),
    )
    # The explanation pages' data (knowledge/explain.py), cross-checked against what was just loaded.
    kb.unit_display = load_unit_display(root, _read(root, "units.json"), known_units)
    kb.families = MappingProxyType(load_families(_read(root, FAMILIES_FILE), thresholds, citations))
    kb.wording = _load_checked_wording(root, thresholds, citations)
    kb.version = knowledge_digest(root)
    kb.site_overrides = MappingProxyType({key: defaults[key] for key in threshold_overrides or {}})
    return kb


def _load_checked_wording(
    root: Path, thresholds: Mapping[str, Threshold], citations: Mapping[str, Citation]
) -> Wording:
    """wording.json, cross-checked against the rest: every status tag a threshold carries has its words,
    and every family's source citation exists."""
    wording = load_wording(root / "wording.json")
    for key, threshold in thresholds.items():
        if threshold.status not in wording.status_tags:
            raise KnowledgeError(f"wording.json: status_tags: no words for status {threshold.status!r} "
                                 f"(used by threshold {key})")
    for code, family in wording.families.items():
        if family.source_citation not in citations:
            raise KnowledgeError(f"wording.json: families.{code}.source_citation: unknown citation "
                                 f"{family.source_citation!r}")
    return wording


# --- value sets ------------------------------------------------------------------------------------
def _load_valuesets(root: Path) -> tuple[list[CodedEntry], dict[tuple[str, str], ProductInfo]]:
    folder = root / "valuesets"
    files = sorted(folder.glob("*.json")) if folder.is_dir() else []
    if not files:
        raise KnowledgeError(f"valuesets/: no value set files in {folder}")
    entries: list[CodedEntry] = []
    products: dict[tuple[str, str], ProductInfo] = {}
    for path in files:
        name = f"valuesets/{path.name}"
        vs = _read(root, name)
        if not isinstance(vs, dict) or vs.get("resourceType") != "ValueSet":
            raise KnowledgeError(f"{name}: resourceType: expected 'ValueSet'")
        vs_id = _field(vs, "id", str, name, "ValueSet")
        includes = _list(vs.get("compose"), "include", name + " compose")
        for i, include in enumerate(includes):
            where = f"compose.include[{i}]"
            system = _field(include, "system", str, name, where)
            for j, concept in enumerate(_list(include, "concept", f"{name} {where}")):
                new, product = _parse_concept(concept, vs_id, system, name, f"{where}.concept[{j}]")
                entries.extend(new)
                if product is not None:
                    products[(system, code_key(system, product.code))] = product
    return entries, products


def _parse_concept(
    concept: Any, vs_id: str, system: str, file: str, where: str
) -> tuple[list[CodedEntry], ProductInfo | None]:
    code = _field(concept, "code", str, file, where)
    where = f"{where} (code {code!r})"
    display = concept.get("display") or code
    ext: dict[str, list[Any]] = {}
    for item in concept.get("extension") or []:
        url = item.get("url", "") if isinstance(item, dict) else ""
        if not url.startswith(EXT):
            continue
        value = next((v for k, v in item.items() if k.startswith("value")), None)
        ext.setdefault(url[len(EXT):], []).append(value)
    concepts = ext.get("kb-concept") or []
    if not concepts:
        raise KnowledgeError(f"{file}: {where}: no kb-concept extension")
    for cid in concepts:
        if cid not in ALL_CONCEPTS:
            raise KnowledgeError(f"{file}: {where}: unknown concept id {cid!r} (not in concepts.ALL_CONCEPTS)")
    status = _single(ext, "kb-status", file, where)
    if status not in CODE_STATUSES:
        raise KnowledgeError(f"{file}: {where}: kb-status {status!r} not one of V/S/U")
    active = _single(ext, "kb-active", file, where)
    if not isinstance(active, bool):
        raise KnowledgeError(f"{file}: {where}: kb-active must be true or false")
    if active and status == "U":
        raise KnowledgeError(f"{file}: {where}: status U entry marked active (a U code never ships active)")
    source = _single(ext, "kb-source", file, where)
    if not isinstance(source, str) or not source.strip():
        raise KnowledgeError(f"{file}: {where}: kb-source missing")
    match = (ext.get("kb-match") or ["exact"])[0]
    if match not in ("exact", "descendants"):
        raise KnowledgeError(f"{file}: {where}: kb-match {match!r} not 'exact' or 'descendants'")
    entries = [
        CodedEntry(vs_id, system, code, display, cid, status, source, active, match) for cid in concepts
    ]
    product = None
    strength = (ext.get("kb-strength-mg") or [None])[0]
    form = (ext.get("kb-dose-form") or [None])[0]
    if strength is not None or form is not None:
        per = (ext.get("kb-strength-per") or ["unit"])[0]
        if per not in ("unit", "mL"):
            raise KnowledgeError(f"{file}: {where}: kb-strength-per {per!r} not 'unit' or 'mL'")
        mg = _number(strength, file, f"{where} kb-strength-mg") if strength is not None else None
        if active:
            product = ProductInfo(code, display, mg, per, form, frozenset(concepts), status=status, sources=(source,))
    return entries, product


def _single(ext: dict[str, list[Any]], name: str, file: str, where: str) -> Any:
    values = ext.get(name) or []
    if len(values) != 1:
        raise KnowledgeError(f"{file}: {where}: expected exactly one {name} extension, found {len(values)}")
    return values[0]


# --- thresholds, citations, orderables -------------------------------------------------------------
def _load_citations(root: Path) -> dict[str, Citation]:
    file = "citations.json"
    out: dict[str, Citation] = {}
    for i, item in enumerate(_list(_read(root, file), "citations", file)):
        where = f"citations[{i}]"
        cid = _field(item, "id", str, file, where)
        status = _field(item, "status", str, file, where)
        if status not in THRESHOLD_STATUSES:
            raise KnowledgeError(f"{file}: {where} ({cid}): status {status!r} not one of V/S/U/design")
        out[cid] = Citation(
            cid,
            _field(item, "label", str, file, where),
            _field(item, "url", str, file, where, optional=True),
            status,
            _field(item, "note", str, file, where, optional=True),
        )
    for cid in REQUIRED_CITATION_IDS:
        if cid not in out:
            raise KnowledgeError(f"{file}: required citation id {cid!r} missing")
    return out


def _load_thresholds(root: Path, citations: Mapping[str, Citation], known_units: set[str]) -> dict[str, Threshold]:
    file = "thresholds.json"
    out: dict[str, Threshold] = {}
    for i, item in enumerate(_list(_read(root, file), "thresholds", file)):
        key = _field(item, "key", str, file, f"thresholds[{i}]")
        where = f"thresholds[{i}] ({key})"
        value = _number(item.get("value") if isinstance(item, dict) else None, file, f"{where}.value")
        unit = _field(item, "unit", str, file, where)
        if unit not in known_units:
            raise KnowledgeError(f"{file}: {where}.unit: unknown unit {unit!r}")
        status = _field(item, "status", str, file, where)
        if status not in THRESHOLD_STATUSES:
            raise KnowledgeError(f"{file}: {where}.status: {status!r} not one of V/S/U/design")
        citation = _field(item, "citation", str, file, where)
        if citation not in citations:
            raise KnowledgeError(f"{file}: {where}.citation: unknown citation id {citation!r}")
        out[key] = Threshold(
            key, value, unit, status, citation,
            _field(item, "source", str, file, where), _field(item, "description", str, file, where),
        )
    for key in REQUIRED_THRESHOLD_KEYS:
        if key not in out:
            raise KnowledgeError(f"{file}: required threshold key {key!r} missing")
    return out


def _apply_overrides(thresholds: dict[str, Threshold], overrides: Mapping[str, float] | None) -> None:
    for key, value in (overrides or {}).items():
        if key not in thresholds:
            raise ThresholdOverrideError(f"threshold_overrides: unknown threshold key {key!r}")
        try:
            number = _number(value, "threshold_overrides", key)
        except KnowledgeError as exc:
            raise ThresholdOverrideError(str(exc)) from None
        old = thresholds[key]
        thresholds[key] = Threshold(
            key, number, old.unit, "design", "design-convention",
            f"site override of default {old.value:g} {old.unit} ({old.status}, {old.citation}: {old.source})",
            old.description,
        )


def _load_orderables(root: Path, citations: Mapping[str, Citation]) -> dict[str, Orderable]:
    file = "orderables.json"
    out: dict[str, Orderable] = {}
    for i, item in enumerate(_list(_read(root, file), "orderables", file)):
        key = _field(item, "key", str, file, f"orderables[{i}]")
        where = f"orderables[{i}] ({key})"
        kind = _field(item, "kind", str, file, where)
        status = _field(item, "status", str, file, where)
        if kind not in ORDERABLE_KINDS:
            raise KnowledgeError(f"{file}: {where}.kind: {kind!r} not lab/medication/referral")
        if status not in THRESHOLD_STATUSES:
            raise KnowledgeError(f"{file}: {where}.status: {status!r} not one of V/S/U/design")
        citation = _field(item, "citation", str, file, where, optional=True)
        if citation is not None and citation not in citations:
            raise KnowledgeError(f"{file}: {where}.citation: unknown citation id {citation!r}")
        system = _field(item, "system", str, file, where, optional=True)
        code = _field(item, "code", str, file, where, optional=True)
        if kind != "referral" and (system is None or code is None):
            raise KnowledgeError(f"{file}: {where}: a {kind} orderable needs system and code")
        out[key] = Orderable(
            key, kind, system, code, _field(item, "display", str, file, where, optional=True),
            _field(item, "text", str, file, where), _field(item, "dosage_text", str, file, where, optional=True),
            status, _field(item, "source", str, file, where), citation,
        )
    for key in REQUIRED_ORDERABLE_KEYS:
        if key not in out:
            raise KnowledgeError(f"{file}: required orderable key {key!r} missing")
    return out


# --- units, aliases, name matching -----------------------------------------------------------------
def _load_units(root: Path) -> tuple[dict[str, UnitTable], set[str]]:
    file = "units.json"
    data = _read(root, file)
    analytes = _field(data, "analytes", dict, file, "units")
    out: dict[str, UnitTable] = {}
    for analyte, spec in analytes.items():
        where = f"analytes.{analyte}"
        if analyte not in LAB_ANALYTES:
            raise KnowledgeError(f"{file}: {where}: unknown analyte concept id")
        canonical = _field(spec, "canonical", str, file, where)
        factors = _field(spec, "units", dict, file, where)
        qualitative = bool(spec.get("qualitative", False))
        parsed = {u: _number(f, file, f"{where}.units[{u!r}]") for u, f in factors.items()}
        if any(f <= 0 for f in parsed.values()):
            raise KnowledgeError(f"{file}: {where}.units: factors must be positive")
        if not qualitative and parsed.get(canonical) != 1.0:
            raise KnowledgeError(f"{file}: {where}: canonical unit {canonical!r} must be listed with factor 1")
        out[analyte] = UnitTable(analyte, canonical, parsed, qualitative, _field(spec, "source", str, file, where))
    missing = sorted(LAB_ANALYTES - out.keys())
    if missing:
        raise KnowledgeError(f"{file}: analytes without a unit table: {', '.join(missing)}")
    extra = data.get("extra_units") or []
    return out, {str(u) for u in extra}


def _load_aliases(root: Path) -> list[SiteAlias]:
    file = "aliases.json"
    data = _read(root, file, optional=True)
    if data is None:
        return []
    out = []
    for i, item in enumerate(_list(data, "aliases", file)):
        where = f"aliases[{i}]"
        analyte = _field(item, "analyte", str, file, where)
        if analyte not in LAB_ANALYTES:
            raise KnowledgeError(f"{file}: {where}.analyte: unknown analyte concept id {analyte!r}")
        out.append(SiteAlias(
            _field(item, "system", str, file, where), _field(item, "code", str, file, where), analyte,
            _field(item, "source", str, file, where), _field(item, "note", str, file, where, optional=True),
        ))
    return out


def _load_synonyms(
    root: Path, thresholds: Mapping[str, Threshold]
) -> tuple[dict[str, frozenset[str]], tuple[NameExclusion, ...]]:
    file = "medication_text.json"
    data = _read(root, file)
    out: dict[str, set[str]] = {}
    for i, item in enumerate(_list(data, "synonyms", file)):
        where = f"synonyms[{i}]"
        concepts = _field(item, "concepts", list, file, where)
        for cid in concepts:
            if cid not in MEDICATION_CLASSES:
                raise KnowledgeError(f"{file}: {where}.concepts: {cid!r} is not a medication class")
        for term in _field(item, "terms", list, file, where):
            if not isinstance(term, str) or not term.strip():
                raise KnowledgeError(f"{file}: {where}.terms: empty term")
            out.setdefault(" ".join(term.lower().split()), set()).update(concepts)
    exclusions: list[NameExclusion] = []
    for i, item in enumerate(data.get("exclusions") or []):
        where = f"exclusions[{i}]"
        excludes = _concept_list(item, "excludes", file, where)
        terms = _strings(item, "terms", file, where)
        ingredients = _strings(item, "ingredient_terms", file, where)
        threshold_key = item.get("min_mg_threshold") if isinstance(item, dict) else None
        if threshold_key is not None and threshold_key not in thresholds:
            raise KnowledgeError(f"{file}: {where}.min_mg_threshold: {threshold_key!r} is not a threshold key")
        min_mg = thresholds[threshold_key].value if threshold_key is not None else None
        if ingredients and min_mg is None:
            raise KnowledgeError(f"{file}: {where}: ingredient_terms need min_mg_threshold")
        if not terms and not ingredients:
            raise KnowledgeError(f"{file}: {where}: neither terms nor ingredient_terms")
        exclusions.append(NameExclusion(
            excludes, terms, ingredients, min_mg,
            _field(item, "source", str, file, where),
        ))
    return {t: frozenset(c) for t, c in out.items()}, tuple(exclusions)


def _load_qualitative(root: Path) -> tuple[dict[tuple[str, str], bool], dict[str, bool]]:
    file = "qualitative.json"
    data = _read(root, file)
    codes: dict[tuple[str, str], bool] = {}
    for i, item in enumerate(_list(data, "codes", file)):
        where = f"codes[{i}]"
        result = _field(item, "result", bool, file, where)
        codes[(_field(item, "system", str, file, where), _field(item, "code", str, file, where))] = result
    texts = _field(data, "texts", dict, file, "qualitative")
    if not all(isinstance(v, bool) for v in texts.values()):
        raise KnowledgeError(f"{file}: texts: every value must be true or false")
    return codes, {k.strip().lower(): v for k, v in texts.items()}


def _load_routes(root: Path) -> dict[str, KeywordRoute]:
    file = "routes.json"
    keywords = _field(_read(root, file), "keywords", dict, file, "routes")
    routes: dict[str, KeywordRoute] = {}
    for word, route in keywords.items():
        match route:
            case "parenteral" | "oral":
                routes[" ".join(word.lower().split())] = route
            case _:
                raise KnowledgeError(f"{file}: keywords[{word!r}]: route {route!r} not parenteral/oral")
    return routes
