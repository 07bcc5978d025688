"""Dose and timing arithmetic for medication exposures (daily dose in mg).

Why a daily dose at all: clinical-reference 4.1 counts oral B12 as replacement only at >= 1 mg/day
(NICE NG239, S) and folic acid <= 1 mg/day in pregnancy as prophylaxis (design choice). Anything that
cannot be computed returns None; rules then treat the dose as unknown rather than guessing.

Laboratory unit conversion lives in the knowledge base (`Knowledge.to_canonical`), not here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal, Protocol

# Mass units a dose is written in (UCUM codes and the spellings EHRs put in Quantity.unit).
_MASS_TO_MG: dict[str, float] = {
    "mg": 1.0, "milligram": 1.0, "milligrams": 1.0,
    "g": 1000.0, "gram": 1000.0, "grams": 1000.0,
    "ug": 0.001, "mcg": 0.001, "\u00b5g": 0.001, "\u03bcg": 0.001, "microgram": 0.001, "micrograms": 0.001,
}
_VOLUME_ML = frozenset({"ml", "milliliter", "millilitre", "milliliters", "millilitres"})
# Count units: one tablet/capsule/unit of the product (UCUM annotations lose their braces first).
_COUNT = frozenset({"tablet", "tablets", "tab", "tabs", "capsule", "capsules", "cap", "caps", "1", "each", "ea"})
_PERIOD_DAYS: dict[str, float] = {
    "s": 1 / 86400, "min": 1 / 1440, "h": 1 / 24, "d": 1.0, "wk": 7.0, "mo": 30.0, "a": 365.0,
}
# HL7 timing abbreviations (FHIR Timing.code, GTSAbbreviation) -> administrations per day.
_TIMING_CODES: dict[str, float] = {
    "QD": 1.0, "AM": 1.0, "PM": 1.0, "BID": 2.0, "TID": 3.0, "QID": 4.0, "QOD": 0.5,
    "Q4H": 6.0, "Q6H": 4.0, "Q8H": 3.0, "WK": 1 / 7, "MO": 1 / 30,
}


class StrengthInfo(Protocol):
    """What the dose arithmetic needs from a product (knowledge.ProductInfo satisfies it)."""

    strength_mg: float | None
    strength_per: str


@dataclass(frozen=True)
class Strength:
    """Strength of one unit (tablet, capsule, ampoule) or of one mL, read from the record itself."""

    strength_mg: float | None
    strength_per: Literal["unit", "mL"]


_MASS_WORDS = r"mg|mcg|ug|\u00b5g|\u03bcg|micrograms?|milligrams?|g"
# "1000 MCG", "0.4 MG", "1 MG/ML", "5mg/mL", "1,000 mcg", "1000 micrograms": a mass, optionally per mL.
_NAME_STRENGTH = re.compile(
    rf"(?<![\w.\-])(\d{{1,3}}(?:,\d{{3}})+|\d+(?:\.\d+)?)\s*({_MASS_WORDS})\b(\s*/\s*(?:1\s*)?ml\b)?",
    re.IGNORECASE,
)
# "0.025-1 mg", "0.5-2.5-25 mg": one strength per hyphen-joined ingredient of a combination name.
_HYPHENATED_STRENGTHS = re.compile(
    rf"(?<![\w.])(\d+(?:\.\d+)?(?:-\d+(?:\.\d+)?)+)\s*({_MASS_WORDS})\b", re.IGNORECASE
)


def _mg(value: str, unit: str) -> float:
    return float(value.replace(",", "")) * _MASS_TO_MG[unit.lower()]


def hyphenated_strengths(text: str | None) -> list[float] | None:
    """The strengths of "cyanocobalamin-folic acid 0.025-1 mg tablet", in ingredient order (mg)."""
    match = _HYPHENATED_STRENGTHS.search(text or "")
    if match is None:
        return None
    return [_mg(v, match.group(2)) for v in match.group(1).split("-")]


def strength_from_name(text: str | None) -> Strength | None:
    """The one strength an RxNorm-style product name states ("cyanocobalamin 1000 MCG Oral Tablet").

    Clinical-reference 4.6 D3: when the dosage instructions are missing, the name is read. A name with
    two different strengths (a combination, "folic acid 1 MG / cyanocobalamin 0.5 MG", or the
    hyphenated "0.025-1 mg" of a local combination name) or none is not guessed at: None.
    """
    if not text or _HYPHENATED_STRENGTHS.search(text):
        return None
    found = {(_mg(value, unit), "mL" if per_ml else "unit") for value, unit, per_ml in _NAME_STRENGTH.findall(text)}
    if len(found) != 1:
        return None
    mg, per = found.pop()
    return Strength(round(mg, 9), per)  # type: ignore[arg-type]


def strength_from_ratio(ratio: Any) -> Strength | None:
    """Medication.ingredient.strength (a Ratio) as mg per unit or per mL; None if not a mass ratio."""
    if not isinstance(ratio, dict):
        return None
    numerator, denominator = ratio.get("numerator"), ratio.get("denominator")
    if not isinstance(numerator, dict):
        return None
    value, unit = number(numerator.get("value")), _unit_word(numerator)
    if value is None or unit not in _MASS_TO_MG:
        return None
    mg = value * _MASS_TO_MG[unit]
    per_value, per_unit = 1.0, None
    if isinstance(denominator, dict):
        per_value = number(denominator.get("value")) or 1.0
        per_unit = _unit_word(denominator)
    if per_value <= 0:
        return None
    if per_unit in _VOLUME_ML:
        return Strength(round(mg / per_value, 9), "mL")
    if per_unit is None or per_unit in _COUNT:
        return Strength(round(mg / per_value, 9), "unit")
    return None


def format_mg(mg: float) -> str:
    """'1 mg', '50 micrograms': a dose as a prescriber writes it (below 1 mg in micrograms)."""
    if mg < 1:
        text = f"{mg / _MASS_TO_MG['microgram']:.3f}".rstrip("0").rstrip(".")
        return f"{text} micrograms"
    return f"{f'{mg:.3f}'.rstrip('0').rstrip('.')} mg"


def number(value: Any) -> float | None:
    """A JSON number (or numeric string) as float; None for bools, blanks and non-numbers."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _unit_word(quantity: dict[str, Any]) -> str | None:
    for key in ("code", "unit"):
        unit = quantity.get(key)
        if isinstance(unit, str) and unit.strip():
            return unit.strip().strip("{}").lower()
    return None


def dose_mg(quantity: Any, product: StrengthInfo | None) -> float | None:
    """One dose in mg from a Quantity: mass units directly, mL or a tablet count via product strength."""
    if not isinstance(quantity, dict):
        return None
    value = number(quantity.get("value"))
    if value is None:
        return None
    unit = _unit_word(quantity)
    if unit is not None and unit in _MASS_TO_MG:
        return value * _MASS_TO_MG[unit]
    if product is None or product.strength_mg is None:
        return None
    if unit in _VOLUME_ML and product.strength_per == "mL":
        return value * product.strength_mg
    if (unit is None or unit in _COUNT) and product.strength_per == "unit":
        return value * product.strength_mg
    return None


def per_day(timing: Any) -> float | None:
    """Administrations per day from Timing.repeat (frequency/period/periodUnit) or Timing.code."""
    if not isinstance(timing, dict):
        return None
    repeat = timing.get("repeat")
    if isinstance(repeat, dict):
        period = number(repeat.get("period"))
        unit = repeat.get("periodUnit")
        if period and period > 0 and isinstance(unit, str) and unit in _PERIOD_DAYS:
            frequency = number(repeat.get("frequency")) or 1.0
            return frequency / (period * _PERIOD_DAYS[unit])
    code = timing.get("code")
    codings = code.get("coding") if isinstance(code, dict) else None
    for coding in codings if isinstance(codings, list) else []:
        if isinstance(coding, dict) and isinstance(coding.get("code"), str):
            hit = _TIMING_CODES.get(coding["code"].upper())
            if hit is not None:
                return hit
    return None


def daily_dose_mg(dosage: Any, product: StrengthInfo | None, *, single_event: bool = False) -> float | None:
    """Daily dose in mg from a Dosage (MedicationRequest/Statement) or MedicationAdministration.dosage.

    The dose is doseAndRate[0].doseQuantity (or `dose` for an administration), else one unit of a
    product of known strength; it is multiplied by the administrations per day. For a single
    administration (`single_event`) the amount given is returned as that day's dose.
    """
    if not isinstance(dosage, dict):
        return None
    quantity = dosage.get("dose")
    rates = dosage.get("doseAndRate")
    if isinstance(rates, list) and rates and isinstance(rates[0], dict):
        quantity = rates[0].get("doseQuantity")
    if quantity is not None:
        one = dose_mg(quantity, product)
    elif product is not None and product.strength_mg is not None and product.strength_per == "unit":
        one = product.strength_mg
    else:
        one = None
    if one is None:
        return None
    if single_event:
        return round(one, 6)
    times = per_day(dosage.get("timing"))
    return None if times is None else round(one * times, 6)
