"""Medication names: ingredient names, brand names and exclusions, matched as whole words.

Why a module of its own: the name is the fallback when an EHR sends no code we know, and the only
source for brand-only entries ("NexIUM 40 MG capsule", issue 14). Matching must tell a brand match
from an ingredient-name match (cards flag both, differently), and must keep products that are
named like B12 but are not replacement (cyanide-antidote hydroxocobalamin, clinical-reference 3.2)
out of the B12 class however they are coded. Everything is compiled once at load.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

_WS = re.compile(r"\s+")


@dataclass(frozen=True)
class BrandName:
    """A brand from the shared table, as the name matcher uses it (whole words, case-insensitive)."""

    brand: str
    terms: tuple[str, ...]
    classes: frozenset[str]
    excludes: frozenset[str]
    source: str


@dataclass(frozen=True)
class NameExclusion:
    """Text that rules a class out although an ingredient name matches it (cyanide-antidote hydroxocobalamin).

    Either by `terms` (whole words), or by one of `ingredient_terms` followed, within a few words,
    by a strength of at least `min_mg` that is not per volume; a gram strength always counts.
    """

    excludes: frozenset[str]
    terms: tuple[str, ...]
    ingredient_terms: tuple[str, ...]
    min_mg: float | None
    source: str


@dataclass(frozen=True)
class NameMatch:
    """What a medication name says: classes (exclusions applied), and how they were named.

    `by_ingredient` holds the classes some ingredient (generic) name stated; a class in `classes`
    but not there was named only by a brand, so the caller can flag the match as 'brand'.
    """

    classes: frozenset[str] = frozenset()
    by_ingredient: frozenset[str] = frozenset()
    brands: frozenset[str] = frozenset()
    excluded: frozenset[str] = frozenset()


class NameMatcher:
    """One whole-word, case-insensitive pattern over ingredient names, brands and excluding terms."""

    def __init__(
        self,
        synonyms: Mapping[str, frozenset[str]],
        brands: tuple[BrandName, ...] = (),
        exclusions: tuple[NameExclusion, ...] = (),
    ) -> None:
        self._synonyms = dict(synonyms)
        self.brands = brands
        self._brand_terms: dict[str, frozenset[str]] = {}
        self._excluding_terms: dict[str, frozenset[str]] = {}
        for brand in brands:
            for term in brand.terms:
                key = _key(term)
                self._brand_terms[key] = self._brand_terms.get(key, frozenset()) | brand.classes
                if brand.excludes:
                    self._excluding_terms[key] = self._excluding_terms.get(key, frozenset()) | brand.excludes
        for rule in exclusions:
            for term in rule.terms:
                key = _key(term)
                self._excluding_terms[key] = self._excluding_terms.get(key, frozenset()) | rule.excludes
        self._pattern = word_pattern({**self._synonyms, **self._brand_terms, **self._excluding_terms})
        # A brand that spells out an ingredient ('Slow Fe with Folic Acid') names it as well.
        generic_only = word_pattern(self._synonyms)
        self._brand_generic = {
            key: frozenset().union(*(self._synonyms[_key(m)] for m in generic_only.findall(key)))
            for key in self._brand_terms
        } if generic_only is not None else {}
        self._strength_rules = tuple((r, _strength_pattern(r.ingredient_terms)) for r in exclusions
                                     if r.ingredient_terms and r.min_mg is not None)

    def match(self, text: str | None) -> NameMatch:
        """Classes the text names, which of them an ingredient name stated, brands found, exclusions.

        Where terms overlap the longest wins ('folate antagonist' masks 'folate'). Exclusions remove
        their class from the result however it was named.
        """
        if not text or self._pattern is None:
            return NameMatch()
        generic: frozenset[str] = frozenset()
        branded: frozenset[str] = frozenset()
        brands: set[str] = set()
        excluded: frozenset[str] = frozenset()
        for found in self._pattern.findall(text):
            key = _key(found)
            if key in self._synonyms:
                generic = generic | self._synonyms[key]
            elif key in self._brand_terms:
                branded = branded | self._brand_terms[key]
                generic = generic | self._brand_generic.get(key, frozenset())
                brands.add(found)
            excluded = excluded | self._excluding_terms.get(key, frozenset())
        for rule, pattern in self._strength_rules:
            if _names_strength_at_least(pattern, text, rule.min_mg or 0.0):
                excluded = excluded | rule.excludes
        return NameMatch((generic | branded) - excluded, generic - excluded, frozenset(brands), excluded)


def _key(term: str) -> str:
    return _WS.sub(" ", term.lower())


def word_pattern(terms: Mapping[str, object]) -> re.Pattern[str] | None:
    """One case-insensitive alternation of whole-word terms, longest first, compiled once at load."""
    if not terms:
        return None
    parts = [re.escape(t).replace(r"\ ", r"\s+") for t in sorted(terms, key=len, reverse=True)]
    return re.compile(r"(?<!\w)(?:" + "|".join(parts) + r")(?!\w)", re.IGNORECASE)


_MASS_MG = {"g": 1000.0, "gm": 1000.0, "gram": 1000.0, "grams": 1000.0, "mg": 1.0, "milligram": 1.0,
            "milligrams": 1.0}


def _strength_pattern(ingredients: tuple[str, ...]) -> re.Pattern[str]:
    """'<ingredient> [up to 3 words] <number> <mass unit>' or '<number> <gram unit> [of] <ingredient>'."""
    names = "|".join(re.escape(t).replace(r"\ ", r"\s+") for t in sorted(ingredients, key=len, reverse=True))
    amount = r"(\d+(?:[.,]\d+)?)\s*(g|gm|grams?|mg|milligrams?)(?!\w)(\s*/)?"
    return re.compile(
        rf"(?<!\w)(?:{names})(?!\w)(?:\W+[A-Za-z]+){{0,3}}?\W+{amount}"
        rf"|(?<![\w.,])(\d+(?:[.,]\d+)?)\s*(g|gm|grams?)\s+(?:of\s+)?(?:{names})(?!\w)",
        re.IGNORECASE,
    )


def _names_strength_at_least(pattern: re.Pattern[str], text: str, min_mg: float) -> bool:
    """True when the text gives the ingredient a gram strength, or a mg strength >= min_mg not per volume."""
    for m in pattern.finditer(text):
        if m.group(1) is not None:
            value, unit, per_volume = m.group(1), m.group(2).lower(), m.group(3) is not None
        else:
            value, unit, per_volume = m.group(4), m.group(5).lower(), False
        thousands = re.fullmatch(r"\d{1,3}(?:,\d{3})+", value) is not None  # '5,000 mg'; '2,5 g' is a decimal comma
        mg = float(value.replace(",", "") if thousands else value.replace(",", ".")) * _MASS_MG[unit]
        if _MASS_MG[unit] >= 1000 or (mg >= min_mg and not per_volume):
            return True
    return False
