"""What the rule explanation pages are built from: families.json, unit display names, a version digest.

Kept apart from `loader.py` (codes, thresholds, units) because it changes for a different reason:
which thresholds and guidelines a family *uses* is documentation of the rules, reviewed with them,
while the thresholds themselves are clinical data. It is still knowledge, not code, so a clinical
reviewer can read and correct it, and it is cross-checked at start-up against the thresholds and
citations it names (a key that does not exist would make an explanation page silently incomplete).

Units: cards and pages show units as people write them (mL/min/1.73 m², µmol/L), never raw UCUM
codes with braces. The display names are a column of the unit table (units.json "display").
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .model import Citation, Knowledge, KnowledgeError, Threshold

FAMILIES_FILE = "families.json"
UNITS_FILE = "units.json"


@dataclass(frozen=True)
class FamilyExplanation:
    """One rule family as its explanation page presents it (no patient data, only knowledge)."""

    code: str  # card source.topic.code
    title: str
    rule: tuple[str, ...]  # the rule in plain words, one paragraph each
    thresholds: tuple[str, ...]  # keys of thresholds.json
    citations: tuple[str, ...]  # ids of citations.json


class UnitDisplay:
    """UCUM code -> the unit as people write it, and a rewriter for text that quotes codes.

    Only a code right after a number is rewritten ("60 mL/min/{1.73_m2}", "365 d"), so a one-letter
    code such as `d` never touches ordinary words; codes with braces are rewritten wherever they
    appear, because braces never belong in clinical prose.
    """

    def __init__(self, names: Mapping[str, str]) -> None:
        self.names = dict(names)
        changed = sorted((c for c, n in self.names.items() if c != n), key=len, reverse=True)
        self._after_number = (
            re.compile(r"(?<=\d)(\s?)(" + "|".join(re.escape(c) for c in changed) + r")(?![\w/{])")
            if changed else None
        )
        braced = [c for c in changed if "{" in c]
        self._braced = re.compile("|".join(re.escape(c) for c in braced)) if braced else None

    def name(self, code: str) -> str:
        """The display name of a unit code; an unknown code is returned as it is."""
        return self.names.get(code, code)

    def rewrite(self, text: str, *, braces_only: bool = False) -> str:
        """`text` with every unit code written as people write it.

        `braces_only` rewrites only codes with braces: for values as the lab sent them ("0.43 umol/L"
        stays as sent, "58 mL/min/{1.73_m2}" still loses its braces).
        """
        if not text:
            return text
        if self._after_number is not None and not braces_only:
            text = self._after_number.sub(lambda m: (m.group(1) or " ") + self.names[m.group(2)], text)
        if self._braced is not None:
            text = self._braced.sub(lambda m: self.names[m.group(0)], text)
        return text


def load_unit_display(root: Path, data: Any, known_units: set[str]) -> UnitDisplay:
    """The "display" column of units.json; every unit a threshold or table can carry must have one."""
    block = data.get("display") if isinstance(data, dict) else None
    units = block.get("units") if isinstance(block, dict) else None
    if not isinstance(units, dict) or not units:
        raise KnowledgeError(f"{UNITS_FILE}: display.units: missing or not an object (unit code -> display)")
    for code, name in units.items():
        if not isinstance(name, str) or not name.strip():
            raise KnowledgeError(f"{UNITS_FILE}: display.units[{code!r}]: must be a non-empty string")
        if "{" in name or "}" in name:
            raise KnowledgeError(f"{UNITS_FILE}: display.units[{code!r}]: {name!r} still holds UCUM braces")
    missing = sorted(known_units - units.keys())
    if missing:
        raise KnowledgeError(f"{UNITS_FILE}: display.units: no display for {', '.join(missing)}")
    return UnitDisplay(units)


def load_families(
    data: Any, thresholds: Mapping[str, Threshold], citations: Mapping[str, Citation]
) -> dict[str, FamilyExplanation]:
    """families.json -> {family: explanation}; every threshold key and citation id must exist."""
    families = data.get("families") if isinstance(data, dict) else None
    if not isinstance(families, dict) or not families:
        raise KnowledgeError(f"{FAMILIES_FILE}: 'families' missing or not an object")
    out: dict[str, FamilyExplanation] = {}
    for code, entry in families.items():
        where = f"{FAMILIES_FILE}: families.{code}"
        if not isinstance(entry, dict):
            raise KnowledgeError(f"{where}: expected an object")
        title = entry.get("title")
        if not isinstance(title, str) or not title.strip():
            raise KnowledgeError(f"{where}.title: missing or empty")
        rule = _strings(entry, "rule", where)
        keys = _strings(entry, "thresholds", where)
        cites = _strings(entry, "citations", where)
        unknown = [k for k in keys if k not in thresholds]
        if unknown:
            raise KnowledgeError(f"{where}.thresholds: unknown threshold key(s) {', '.join(unknown)}")
        unknown = [c for c in cites if c not in citations]
        if unknown:
            raise KnowledgeError(f"{where}.citations: unknown citation id(s) {', '.join(unknown)}")
        for name, items in (("thresholds", keys), ("citations", cites)):
            if len(set(items)) != len(items):
                raise KnowledgeError(f"{where}.{name}: listed more than once")
        out[code] = FamilyExplanation(code, title.strip(), rule, keys, cites)
    return out


def _strings(entry: dict[str, Any], name: str, where: str) -> tuple[str, ...]:
    value = entry.get(name)
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise KnowledgeError(f"{where}.{name}: must be a non-empty list of non-empty strings")
    return tuple(value)


def knowledge_digest(root: Path) -> str:
    """A short content hash of every knowledge file: the knowledge version an explanation page names.

    A site running a reviewed copy (CDS_KNOWLEDGE_DIR) gets its own digest, so a page, a card and an
    audit can be tied to the exact files that were in force, without a hand-kept version number.
    """
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*.json") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return "sha256:" + digest.hexdigest()[:16]


def check_families_documented(kb: Knowledge, families: Iterable[str]) -> None:
    """Start-up check: every rule family the service can answer with has an explanation page.

    A card links to /explain/<family>; a family missing from families.json would be a dead link on
    every such card, so it stops start-up instead.
    """
    missing = sorted(set(families) - set(kb.families))
    if missing:
        raise KnowledgeError(f"families.json: no entry for rule family(ies) {', '.join(missing)}")
