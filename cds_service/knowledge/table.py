"""Plain-text rendering of the knowledge base for the `b12-cds knowledge` command.

Lets a clinical safety officer see, without reading JSON, exactly which codes are live, with their
status tag and source, every product code of the shared RxNorm table with its class, strength,
route, status and sources (inactive candidates included, marked), the brand names the name matcher
knows, and every threshold with its status and citation.
"""

from __future__ import annotations

from collections.abc import Sequence

from .concepts import CODE_SYSTEM_LABELS
from .model import CodedEntry, Knowledge, ProductInfo
from .products import PRODUCT_VALUESET  # its entries are listed in their own section, not twice


def knowledge_table(kb: Knowledge, *, include_inactive: bool = False, width: int = 60) -> str:
    """Active value-set entries, product codes, brands, then thresholds (and inactive entries when asked)."""
    lines: list[str] = []
    active = [e for e in kb.active_entries() if e.valueset != PRODUCT_VALUESET]
    lines.append(f"Active value-set entries ({len(active)})")
    lines.extend(_entry_rows(active, width))
    if include_inactive:
        inactive = [e for e in kb.inactive_entries() if e.valueset != PRODUCT_VALUESET]
        lines.append("")
        lines.append(f"Inactive entries, listed but never matched ({len(inactive)})")
        lines.extend(_entry_rows(inactive, width))
    lines.append("")
    lines.extend(product_rows(kb.product_table(), width))
    lines.append("")
    lines.extend(brand_rows(kb, width))
    lines.append("")
    lines.append(f"Thresholds ({len(kb.thresholds)})")
    rows = [("key", "value", "unit", "status", "citation", "source")]
    for t in sorted(kb.thresholds.values(), key=lambda t: t.key):
        rows.append((t.key, f"{t.value:g}", t.unit, t.status, t.citation, _cut(t.source, width)))
    lines.extend(_columns(rows))
    return "\n".join(lines) + "\n"


def product_rows(products: Sequence[ProductInfo], width: int = 60) -> list[str]:
    """One row per RxNorm code of the shared table: what it is, what it counts as, and where it came from.

    Inactive candidates (status S or U) are always listed, marked, so a reviewer sees what was left
    out; only status V codes are matched.
    """
    active = sum(1 for p in products if p.active)
    header = (f"RxNorm product codes from the shared table ({active} active; "
              f"{len(products) - active} inactive candidates listed but never matched)")
    rows = [("code", "tty", "name", "classes", "strength", "route", "status", "sources")]
    for p in sorted(products, key=lambda p: (not p.active, sorted(p.classes), p.tty or "", p.code)):
        strength = "; ".join(f"{s.concept} {s.mg:g} mg/{s.per}" for s in p.strengths) or "-"
        more = f" (+{len(p.sources) - 1} more)" if len(p.sources) > 1 else ""
        status = p.status if p.active else f"{p.status} (inactive candidate)"
        rows.append((
            p.code, p.tty or "", _cut(p.display, 48), ",".join(sorted(p.classes)), strength, p.route, status,
            _cut(p.sources[0], width) + more if p.sources else "",
        ))
    return [header, *_columns(rows)]


def brand_rows(kb: Knowledge, width: int = 60) -> list[str]:
    brands = kb.brand_names()
    rows = [("brand", "matched as", "classes", "source")]
    for b in sorted(brands, key=lambda b: b.brand.lower()):
        classes = ",".join(sorted(b.classes)) or "-"
        if b.excludes:
            classes += f" (never counts as {','.join(sorted(b.excludes))})"
        rows.append((b.brand, " | ".join(b.terms), classes, _cut(b.source, width)))
    return [f"Brand names for the name matcher ({len(brands)})", *_columns(rows)]


def _entry_rows(entries: Sequence[CodedEntry], width: int) -> list[str]:
    rows = [("value set", "system", "code", "display", "concept", "status", "source")]
    for e in sorted(entries, key=lambda e: (e.valueset, e.system, e.code, e.concept)):
        code = e.code + ("*" if e.match == "descendants" else "")
        rows.append((
            e.valueset, CODE_SYSTEM_LABELS.get(e.system, e.system), code, _cut(e.display, 40),
            e.concept, e.status, _cut(e.source, width),
        ))
    return _columns(rows)


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _columns(rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    out.insert(1, "  ".join("-" * w for w in widths))
    return out
