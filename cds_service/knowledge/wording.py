"""Per-family card wording (source label, topic display, override reasons, action labels), from data.

The wording is knowledge like the thresholds (`wording.json` in the knowledge directory, so a site's
reviewed copy under CDS_KNOWLEDGE_DIR carries its wording too): a clinical reviewer changes what a
card says without touching code, and the override reasons of every family sit side by side. The
knowledge loader reads it with everything else and cross-checks it (status tags, citations);
start-up checks it covers every rule family (cds_service/startup.py). A broken file stops start-up
with one line naming the file and the field.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..startup import StartupError

WORDING_FILE = Path(__file__).with_name("wording.json")  # the shipped default, in the knowledge directory


class WordingError(StartupError):
    """wording.json is missing a field or holds an empty value."""


@dataclass(frozen=True)
class Coding:
    system: str
    code: str
    display: str

    def as_json(self) -> dict[str, str]:
        return {"system": self.system, "code": self.code, "display": self.display}


@dataclass(frozen=True)
class FamilyWording:
    code: str
    display: str
    source_label: str
    source_citation: str
    group_labs: bool
    override_reasons: tuple[Coding, ...]


@dataclass(frozen=True)
class Wording:
    topic_system: str
    action_labels: dict[str, str]
    action_descriptions: dict[str, str]
    referral_priority: str
    advice: dict[str, str]
    status_tags: dict[str, str]
    link_labels: dict[str, str]
    families: dict[str, FamilyWording]

    def family(self, code: str) -> FamilyWording:
        try:
            return self.families[code]
        except KeyError:
            raise WordingError(f"{WORDING_FILE.name}: no wording for family '{code}'") from None


def _text(data: dict[str, Any], key: str, where: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise WordingError(f"{WORDING_FILE.name}: {where}.{key} must be a non-empty string")
    return value


def _texts(data: dict[str, Any], key: str) -> dict[str, str]:
    block = data.get(key)
    if not isinstance(block, dict) or not block:
        raise WordingError(f"{WORDING_FILE.name}: {key} must be a non-empty object")
    return {k: _text(block, k, key) for k in block}


def parse_wording(data: Any) -> Wording:
    if not isinstance(data, dict):
        raise WordingError(f"{WORDING_FILE.name}: must be a JSON object")
    systems = _texts(data, "code_systems")
    families: dict[str, FamilyWording] = {}
    blocks = data.get("families")
    if not isinstance(blocks, dict) or not blocks:
        raise WordingError(f"{WORDING_FILE.name}: families must be a non-empty object")
    for code, block in blocks.items():
        where = f"families.{code}"
        if not isinstance(block, dict):
            raise WordingError(f"{WORDING_FILE.name}: {where} must be an object")
        reasons = []
        for index, item in enumerate(block.get("override_reasons") or []):
            if not (isinstance(item, list) and len(item) == 3 and item[0] in systems and all(item)):
                raise WordingError(f"{WORDING_FILE.name}: {where}.override_reasons[{index}] is malformed")
            reasons.append(Coding(systems[item[0]], item[1], item[2]))
        if not reasons:
            raise WordingError(f"{WORDING_FILE.name}: {where}.override_reasons must not be empty")
        families[code] = FamilyWording(
            code=code,
            display=_text(block, "display", where),
            source_label=_text(block, "source_label", where),
            source_citation=_text(block, "source_citation", where),
            group_labs=bool(block.get("group_labs", False)),
            override_reasons=tuple(reasons),
        )
    return Wording(
        topic_system=_text(data, "topic_system", "(root)"),
        action_labels=_texts(data, "action_labels"),
        action_descriptions=_texts(data, "action_descriptions"),
        referral_priority=_text(data, "referral_priority", "(root)"),
        advice=_texts(data, "advice"),
        status_tags=_texts(data, "status_tags"),
        link_labels=_texts(data, "link_labels"),
        families=families,
    )


def load_wording(path: Path = WORDING_FILE) -> Wording:
    """Read and validate a wording file (the knowledge loader calls this for its directory)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise WordingError(f"{path}: cannot read ({exc.strerror or type(exc).__name__})") from None
    except ValueError as exc:
        raise WordingError(f"{WORDING_FILE.name}: not valid JSON ({exc})") from None
    return parse_wording(data)


def check_wording_covers(wording: Wording, families: Iterable[str]) -> None:
    """Every rule family has its wording (source label, topic, override reasons) before any card is built."""
    missing = sorted(set(families) - set(wording.families))
    if missing:
        raise WordingError(f"{WORDING_FILE.name}: families.{missing[0]}: no wording for rule family "
                           f"'{missing[0]}'" + (f" (nor {', '.join(missing[1:])})" if missing[1:] else ""))
