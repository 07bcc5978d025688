"""Card detail as GitHub-flavoured markdown, with every piece of finding text escaped.

Finding text carries patient data (code displays, units, medication names as the EHR sent them), so
all of it goes through `escape`, which backslash-escapes exactly the characters that can open a GFM
construct: links and images (`[ ]`), raw HTML and autolinks (`<`), emphasis and strikethrough
(`* _ ~`), code (backtick), table cells (`|`), headings and block quotes (`# >`), entities (`&`),
e-mail autolinks (`@`) and backslash itself; it also breaks GFM's bare autolinks (`scheme://`,
`www.`) and a leading list marker, and collapses newlines so text cannot open a new block. Other
punctuation stays as it is, so "< 100 pg/mL" still reads as sent in a client that shows markdown raw.
Only the structure this module writes (headings, the table, list bullets, guideline links from
knowledge) is left unescaped. No raw HTML is emitted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlparse

from ..clinical.findings import EvidenceItem, Finding

_ALWAYS = frozenset("\\`*_[]<>|#~&@")
_SCHEME = re.compile(r"(?<=[A-Za-z0-9]):(?=//)")  # http://, https://, ftp:// -> http\://
_WWW = re.compile(r"(?i)(?<=\bwww)\.")  # www.example.org -> www\.example.org
_LIST_START = re.compile(r"^(\d{1,9})([.)])(?=\s|$)|^([-+])(?=\s|$)")  # "1. x", "2) x", "- x" leading


def escape(text: str) -> str:
    """Make arbitrary text inert in GFM: one line, construct-opening characters escaped."""
    flat = " ".join(str(text).split())
    out = "".join("\\" + ch if ch in _ALWAYS else ch for ch in flat)
    out = _SCHEME.sub("\\\\:", out)
    out = _WWW.sub("\\\\.", out)
    return _LIST_START.sub(lambda m: f"{m.group(1)}\\{m.group(2)}" if m.group(1) else f"\\{m.group(3)}", out)


def is_web_url(url: str | None) -> bool:
    """An absolute http(s) URL without spaces: the only kind a card links to."""
    if not url or any(ch.isspace() for ch in url) or any(ch in url for ch in "<>()[]\"'"):
        return False
    parsed = urlparse(url)
    return parsed.scheme in ("http", "https") and bool(parsed.netloc)


def _cell(value: str | None) -> str:
    return escape(value) if value else "–"


def _what(item: EvidenceItem) -> str:
    """The row's subject with what it counted as ("Serum vitamin B12 (total): deficient band")."""
    return f"{item.label}: {item.note}" if item.note else item.label


def _as_received(item: EvidenceItem) -> str:
    """The value as the record holds it; the interpreted value only when it adds something."""
    shown = item.as_received
    if shown == item.label and item.converted:
        return item.converted  # a condition or product named in "What" already: say what it is now
    if not item.converted or item.converted in ("active", "–"):
        return shown
    if item.kind == "lab":
        same_unit = item.converted.split(" ")[-1] == shown.split(" ")[-1]
        return shown if same_unit else f"{shown} (= {item.converted})"
    return f"{shown} ({item.converted})"


EVIDENCE_HEADER = ("What", "As received", "Date", "Code")


def evidence_table(items: Iterable[EvidenceItem]) -> list[str]:
    """At most four columns, so the table fits a 560 px card column (the reference sandbox's width).

    FHIR references are not a column (long ids cannot wrap and overflow the card); they travel in the
    card's identity extension, one per evidence row, for the safety officer tracing a card.
    """
    lines = ["| " + " | ".join(EVIDENCE_HEADER) + " |", "| " + " | ".join("---" for _ in EVIDENCE_HEADER) + " |"]
    for item in items:
        cells = (_what(item), _as_received(item), item.date, item.code)
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return lines


def render_detail(finding: Finding, advice: Iterable[str] = ()) -> str:
    """The card detail (conventions.md, card anatomy): why and what to do, the evidence, what to check.

    Thresholds, their status tags and the full source list are not repeated here: they are on the
    family's explanation page, which every card links to.
    """
    blocks: list[str] = []
    sentences = [*finding.rationale, *(a for a in advice if a)]
    if sentences:
        blocks.append(" ".join(escape(line) for line in sentences))
    if finding.evidence:
        blocks.append("\n".join(evidence_table(finding.evidence)))
    if finding.caveats:
        blocks.append("**Check:** " + " ".join(escape(c) for c in finding.caveats))
    return "\n\n".join(blocks)
