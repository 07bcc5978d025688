"""The typed, validated knowledge base: value-set entries, units, thresholds, citations, orderables.

`Knowledge` is built once by `loader.load_knowledge` and then only read. Every lookup the request path
makes is a dict hit on tables prepared at load time (codes keyed by (system, normalised code); the
medication-name and route patterns compiled once), so classifying a resource costs microseconds.

Only entries with status V are active (clinical-reference.md: "a U code never ships as active
knowledge"); inactive entries stay listed so `b12-cds knowledge` can show what was left out and why.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from .explain import FamilyExplanation, UnitDisplay
    from .wording import Wording

from ..startup import StartupError
from .medication_names import BrandName, NameExclusion, NameMatch, NameMatcher, word_pattern

Status = Literal["V", "S", "U", "design"]
KeywordRoute = Literal["parenteral", "oral"]  # what a route or dose-form keyword (routes.json) can say
CODE_STATUSES: frozenset[str] = frozenset({"V", "S", "U"})
THRESHOLD_STATUSES: frozenset[str] = frozenset({"V", "S", "U", "design"})

ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"

# The contract (docs/contracts.md) fixes these keys; the loader refuses a knowledge directory that
# lacks any of them, so a rule can never ask for a threshold or orderable that silently is not there.
REQUIRED_THRESHOLD_KEYS: tuple[str, ...] = (
    "b12-total.deficient-below",
    "b12-total.normal-above",
    "b12-active.deficient-below",
    "b12-active.normal-above",
    "mma.uln",
    "mma.uln-age-65",
    "mma.strongly-raised",
    "homocysteine.uln",
    "folate-serum.deficient-below",
    "mcv.macrocytosis-above",
    "haemoglobin.anaemia-male-below",
    "haemoglobin.anaemia-female-below",
    "haemoglobin.anaemia-pregnancy-below",
    "egfr.mma-caution-below",
    "egfr.mma-uninterpretable-below",
    "age.risk-factor-years",
    "window.b12-lookback-days",
    "window.replacement-invalidates-days",
    "window.red-flag-days",
    "window.neuro-recent-days",
    "window.n2o-exposure-days",
    "window.egfr-recent-days",
    "window.mma-before-b12-days",
    "window.cover-recent-days",
    "dose.oral-b12-replacement-min-mg",
    "dose.folate-prophylaxis-max-mg",
    "policy.exclude-leucovorin",
    "policy.exclude-contraceptive-levomefolate",
    "policy.lab-offers-b12-with-metabolites",
    "dose.b12-cyanide-antidote-min-mg",
    "dose.b12-cyanide-antidote-min-mg-per-ml",
    "dose.parenteral-b12-trace-max-mg",
)
REQUIRED_CITATION_IDS: tuple[str, ...] = (
    "nice-ng239", "bsh-2014", "lindenbaum-1988", "paris-2023", "hashi-2025", "mhra-metformin-2022",
    "bnf-b12-dosing", "nhs-lothian-referral", "who-haemoglobin-2011", "pfeiffer-2016", "mayo-mma",
    "design-convention", "aan-2009",
)
REQUIRED_ORDERABLE_KEYS: tuple[str, ...] = (
    "b12-total", "b12-active", "mma", "homocysteine", "folate-serum", "fbc", "egfr", "creatinine",
    "intrinsic-factor-antibody", "hydroxocobalamin-im", "hydroxocobalamin-im-neuro", "cyanocobalamin-oral",
    "neurology-urgent", "neurology-urgent-neuropathy",
)

_WS = re.compile(r"\s+")


class KnowledgeError(StartupError):
    """A knowledge file is missing or invalid; the message names the file and the field or entry."""


class ThresholdOverrideError(KnowledgeError):
    """A site's threshold override (CDS_THRESHOLD_OVERRIDES) names no known key or holds no number."""


def code_key(system: str, code: str) -> str:
    """Normalise a code for lookup: ICD-10-CM is matched with or without its dot ('G62.9' == 'G629')."""
    code = code.strip()
    if system == ICD10CM:
        return code.upper().replace(".", "")
    return code


@dataclass(frozen=True)
class CodedEntry:
    """One (code, concept) mapping from a value set; a code with two concepts gives two entries."""

    valueset: str
    system: str
    code: str
    display: str
    concept: str
    status: str
    source: str
    active: bool
    match: Literal["exact", "descendants"] = "exact"


@dataclass(frozen=True)
class Strength:
    """Strength of one class's ingredient in a product: mg per unit (tablet, capsule) or per mL.

    Two ingredients of the same class in one unit are added up (mecobalamin + cyanocobalamin);
    `ingredient` then names both, so a card or reviewer can see where the number came from.
    """

    concept: str
    ingredient: str
    mg: float
    per: Literal["unit", "mL"]


@dataclass(frozen=True)
class ProductInfo:
    """What a product code says about dose: strength per unit, route, classes (clinical-reference 4.6 D3).

    `strength_mg`/`strength_per` are the strength that decides the product's dose-dependent rule:
    the B12 content when the product contains B12 (replacement strength, D3; a multivitamin with
    6 mcg B12 is not replacement), otherwise its one relevant ingredient (folic acid 0.4 mg is
    prophylaxis strength). `strengths` keeps every class's own ingredient strength for callers that
    need another one (`strength_for`). `route` is the product table's route (oral, parenteral,
    nasal, unknown); `dose_form` is the RxNorm dose form the route keywords read.
    """

    code: str
    display: str
    strength_mg: float | None
    strength_per: Literal["unit", "mL"]
    dose_form: str | None
    classes: frozenset[str] = frozenset()
    route: str = "unknown"
    strengths: tuple[Strength, ...] = ()
    tty: str | None = None
    brand: str | None = None
    status: str = "V"
    active: bool = True
    sources: tuple[str, ...] = ()

    def strength_for(self, concept: str) -> Strength | None:
        """The strength of this class's ingredient, or None when the product table gives none."""
        return next((s for s in self.strengths if s.concept == concept), None)


@dataclass(frozen=True)
class Threshold:
    key: str
    value: float
    unit: str
    status: str
    citation: str
    source: str
    description: str


@dataclass(frozen=True)
class Citation:
    id: str
    label: str
    url: str | None
    status: str
    note: str | None = None


@dataclass(frozen=True)
class Orderable:
    key: str
    kind: Literal["lab", "medication", "referral"]
    system: str | None
    code: str | None
    display: str | None
    text: str
    dosage_text: str | None
    status: str
    source: str
    citation: str | None = None


@dataclass(frozen=True)
class UnitTable:
    """Accepted unit strings for one analyte with their factor to the canonical unit."""

    analyte: str
    canonical: str
    factors: Mapping[str, float]
    qualitative: bool
    source: str


@dataclass(frozen=True)
class SiteAlias:
    system: str
    code: str
    analyte: str
    source: str
    note: str | None = None


class Knowledge:
    """Read-only lookups over the validated knowledge files (see docs/contracts.md)."""

    # Set by loader.load_knowledge (knowledge/explain.py): what the rule explanation pages show.
    families: Mapping[str, FamilyExplanation]  # family code -> plain words, threshold keys, citations
    unit_display: UnitDisplay  # UCUM code -> unit as people write it
    version: str  # content digest of the knowledge files in force
    site_overrides: Mapping[str, Threshold]  # CDS_THRESHOLD_OVERRIDES key -> the default it replaced
    wording: Wording  # card wording (wording.json), cross-checked with the thresholds and citations

    def __init__(
        self,
        *,
        entries: list[CodedEntry],
        products: dict[tuple[str, str], ProductInfo],
        lab_analytes: frozenset[str],
        units: dict[str, UnitTable],
        thresholds: dict[str, Threshold],
        citations: dict[str, Citation],
        orderables: dict[str, Orderable],
        aliases: list[SiteAlias],
        synonyms: dict[str, frozenset[str]],
        qualitative_codes: dict[tuple[str, str], bool],
        qualitative_texts: dict[str, bool],
        route_keywords: dict[str, KeywordRoute],
        product_table: tuple[ProductInfo, ...] = (),
        brands: tuple[BrandName, ...] = (),
        exclusions: tuple[NameExclusion, ...] = (),
    ) -> None:
        self._entries = tuple(entries)
        exact: dict[tuple[str, str], set[str]] = {}
        prefix: dict[tuple[str, str], set[str]] = {}
        for e in entries:
            if e.active:
                table = prefix if e.match == "descendants" else exact
                table.setdefault((e.system, code_key(e.system, e.code)), set()).add(e.concept)
        self._exact = {k: frozenset(v) for k, v in exact.items()}
        self._prefix = {k: frozenset(v) for k, v in prefix.items()}
        self._prefix_systems = frozenset(s for s, _ in self._prefix)
        self._analyte: dict[tuple[str, str], str] = {}
        for key, concepts in self._exact.items():
            found = sorted(concepts & lab_analytes)
            if found:
                self._analyte[key] = found[0]
        for alias in aliases:  # site knowledge wins over the shipped mapping (clinical-reference 4.5.9)
            self._analyte[(alias.system, code_key(alias.system, alias.code))] = alias.analyte
        self._aliases = tuple(aliases)
        self._products = products
        self._units = units
        self._thresholds = thresholds
        self.citations: Mapping[str, Citation] = MappingProxyType(citations)
        self.orderables: Mapping[str, Orderable] = MappingProxyType(orderables)
        self._product_table = product_table
        self._names = NameMatcher(synonyms, brands, exclusions)
        self._qual_codes = qualitative_codes
        self._qual_texts = qualitative_texts
        self._routes = route_keywords
        self._route_re = word_pattern(route_keywords)

    # --- codes -----------------------------------------------------------------------------------
    def concepts_for(self, system: str | None, code: str | None) -> frozenset[str]:
        """Concept ids of ACTIVE entries for this code, across all value sets (empty if none)."""
        if not system or not code or not isinstance(code, str):
            return frozenset()
        key = code_key(system, code)
        found = self._exact.get((system, key), frozenset())
        if system in self._prefix_systems:
            for n in range(len(key), 0, -1):
                hit = self._prefix.get((system, key[:n]))
                if hit:
                    found = found | hit
        return found

    def lab_analyte(self, system: str | None, code: str | None) -> str | None:
        """The analyte a lab code reports (site alias first, then the shipped LOINC mapping)."""
        if not system or not code or not isinstance(code, str):
            return None
        return self._analyte.get((system, code_key(system, code)))

    def product(self, system: str | None, code: str | None) -> ProductInfo | None:
        """Strength per unit, route, dose form and classes of an active (V) product code (SCD/SBD/pack).

        None for ingredient and brand concepts (no strength) and for inactive candidates; the dose
        logic then falls back as clinical-reference 4.6 D3 says (an unknown strength is never cover).
        """
        if not system or not code or not isinstance(code, str):
            return None
        return self._products.get((system, code_key(system, code)))

    def medication_classes_for_text(self, text: str | None) -> frozenset[str]:
        """Classes named in free text (whole words, case-insensitive); callers flag the match."""
        return self._names.match(text).classes

    def medication_name_match(self, text: str | None) -> NameMatch:
        """Classes a medication name states, split by how they were named, exclusions applied.

        Ingredient and brand names are whole words in any lettering ('NexIUM'); a cyanide-antidote
        kit or hydroxocobalamin at a gram strength removes B12 however it was named (NameMatcher).
        """
        return self._names.match(text)

    def route_for_text(self, text: str | None) -> KeywordRoute | None:
        """'parenteral' or 'oral' from route or dose-form text; None when absent or contradictory."""
        if not text or self._route_re is None:
            return None
        routes = {self._routes.get(_WS.sub(" ", m.lower())) for m in self._route_re.findall(text)}
        routes.discard(None)
        return routes.pop() if len(routes) == 1 else None

    def qualitative_result(self, system: str | None, code: str | None) -> bool | None:
        """True/False for a code stating a positive/negative result (antibodies), else None."""
        if not system or not code or not isinstance(code, str):
            return None
        return self._qual_codes.get((system, code.strip()))

    def qualitative_text(self, text: str | None) -> bool | None:
        if not text or not isinstance(text, str):
            return None
        return self._qual_texts.get(_WS.sub(" ", text.strip().lower()))

    # --- units -----------------------------------------------------------------------------------
    def canonical_unit(self, analyte: str) -> str:
        return self._units[analyte].canonical

    def is_qualitative(self, analyte: str) -> bool:
        table = self._units.get(analyte)
        return table is not None and table.qualitative

    def to_canonical(self, analyte: str, value: float, unit: str | None) -> float | None:
        """Value in the analyte's canonical unit; None if the unit is missing or not recognised.

        A missing unit is never guessed (clinical-reference 2). The product is rounded to 6 decimals
        so that, e.g., 400 nmol/L MMA equals the 0.40 umol/L limit instead of exceeding it by float noise.
        """
        table = self._units.get(analyte)
        if table is None or not unit or not isinstance(unit, str):
            return None
        factor = table.factors.get(unit.strip())
        if factor is None:
            return None
        return round(float(value) * factor, 6)


    def threshold(self, key: str) -> Threshold:
        try:
            return self._thresholds[key]
        except KeyError:
            raise KeyError(f"unknown threshold key {key!r}") from None

    def value(self, key: str) -> float:
        return self.threshold(key).value

    @property
    def thresholds(self) -> Mapping[str, Threshold]:
        return MappingProxyType(self._thresholds)

    @property
    def aliases(self) -> tuple[SiteAlias, ...]:
        return self._aliases

    # --- listings --------------------------------------------------------------------------------
    def active_entries(self) -> list[CodedEntry]:
        return [e for e in self._entries if e.active]

    def inactive_entries(self) -> list[CodedEntry]:
        return [e for e in self._entries if not e.active]

    def product_table(self) -> tuple[ProductInfo, ...]:
        """Every code of the shared RxNorm table (products, IN, BN), active (V) and inactive candidates."""
        return self._product_table

    def brand_names(self) -> tuple[BrandName, ...]:
        return self._names.brands
