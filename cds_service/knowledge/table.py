"""Plain-text rendering of the knowledge base for the `b12-cds knowledge` command.

Lets a clinical safety officer see, without reading JSON, exactly which codes are live, with their
status tag and source, and every threshold with its status and citation.
"""

from __future__ import annotations

from collections.abc import Sequence

from .model import Knowledge

_SYSTEM_LABELS = {
    "http://loinc.org": "LOINC",
    "http://snomed.info/sct": "SNOMED CT",
    "http://hl7.org/fhir/sid/icd-10-cm": "ICD-10-CM",
    "http://www.nlm.nih.gov/research/umls/rxnorm": "RxNorm",
    "http://www.whocc.no/atc": "ATC",
}


def knowledge_table(kb: Knowledge, *, include_inactive: bool = False, width: int = 60) -> str:
    """Active value-set entries, then thresholds (and inactive entries when asked)."""
    lines: list[str] = []
    active = kb.active_entries()
    lines.append(f"Active value-set entries ({len(active)})")
    lines.extend(_entry_rows(active, width))
    if include_inactive:
        inactive = kb.inactive_entries()
        lines.append("")
        lines.append(f"Inactive entries, listed but never matched ({len(inactive)})")
        lines.extend(_entry_rows(inactive, width))
    lines.append("")
    lines.append(f"Thresholds ({len(kb.thresholds)})")
    rows = [("key", "value", "unit", "status", "citation", "source")]
    for t in sorted(kb.thresholds.values(), key=lambda t: t.key):
        rows.append((t.key, f"{t.value:g}", t.unit, t.status, t.citation, _cut(t.source, width)))
    lines.extend(_columns(rows))
    return "\n".join(lines) + "\n"


def _entry_rows(entries: Sequence, width: int) -> list[str]:
    rows = [("value set", "system", "code", "display", "concept", "status", "source")]
    for e in sorted(entries, key=lambda e: (e.valueset, e.system, e.code, e.concept)):
        code = e.code + ("*" if e.match == "descendants" else "")
        rows.append((
            e.valueset, _SYSTEM_LABELS.get(e.system, e.system), code, _cut(e.display, 40),
            e.concept, e.status, _cut(e.source, width),
        ))
    return _columns(rows)


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _columns(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    out.insert(1, "  ".join("-" * w for w in widths))
    return out
