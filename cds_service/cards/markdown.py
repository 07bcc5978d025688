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
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlparse

from ..clinical.findings import EvidenceItem, Finding, ThresholdApplied

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


def _interpreted(item: EvidenceItem) -> str | None:
    parts = [p for p in (item.converted, item.note) if p]
    return "; ".join(parts) if parts else None


def _code(item: EvidenceItem) -> str | None:
    parts = [p for p in (item.code, f"({item.reference})" if item.reference else None) if p]
    return " ".join(parts) if parts else None


def evidence_table(items: Iterable[EvidenceItem]) -> list[str]:
    lines = ["| What | As received | Interpreted | Date | Code |", "| --- | --- | --- | --- | --- |"]
    for item in items:
        cells = (item.label, item.as_received, _interpreted(item), item.date, _code(item))
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return lines


def threshold_lines(
    thresholds: Iterable[ThresholdApplied], citations: Mapping[str, Any], status_tags: Mapping[str, str]
) -> list[str]:
    lines = []
    for t in thresholds:
        source = citations[t.citation].label if t.citation in citations else t.citation
        tag = status_tags.get(t.status, t.status)
        lines.append(f"- {escape(t.name)}: {escape(t.value)} (status {escape(tag)}; {escape(source)})")
    return lines


def citation_lines(citation_ids: Iterable[str], citations: Mapping[str, Any]) -> list[str]:
    lines = []
    for cid in citation_ids:
        citation = citations[cid]
        label = escape(citation.label)
        url = getattr(citation, "url", None)
        lines.append(f"- [{label}]({url})" if is_web_url(url) else f"- {label}")
    return lines


def render_detail(
    finding: Finding,
    citation_ids: Iterable[str],
    citations: Mapping[str, Any],
    status_tags: Mapping[str, str],
    advice: Iterable[str] = (),
) -> str:
    """The card detail: rationale, advice, evidence table, thresholds, caveats, guidelines."""
    blocks: list[str] = []
    if finding.rationale:
        blocks.append(" ".join(escape(line) for line in finding.rationale))
    advice = [a for a in advice if a]
    if advice:
        blocks.append("**Advice**\n\n" + "\n".join(f"- {escape(a)}" for a in advice))
    if finding.evidence:
        blocks.append("**Evidence**\n\n" + "\n".join(evidence_table(finding.evidence)))
    if finding.thresholds:
        blocks.append(
            "**Thresholds applied**\n\n"
            + "\n".join(threshold_lines(finding.thresholds, citations, status_tags))
        )
    if finding.caveats:
        blocks.append("**Caveats**\n\n" + "\n".join(f"- {escape(c)}" for c in finding.caveats))
    guideline = citation_lines(citation_ids, citations)
    if guideline:
        blocks.append("**Guidelines**\n\n" + "\n".join(guideline))
    return "\n\n".join(blocks)
