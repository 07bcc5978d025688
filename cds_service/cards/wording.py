"""Per-family card wording (source label, topic display, override reasons, action labels), from data.

The wording lives in `wording.json` next to this module so that a clinical reviewer can change what a
card says without touching code, and so the override reasons of every family sit side by side.
Loaded and checked once; a broken file fails at import of the first card, naming the field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

WORDING_FILE = Path(__file__).with_name("wording.json")


class WordingError(ValueError):
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


def parse_wording(data: dict[str, Any]) -> Wording:
    systems = _texts(data, "code_systems")
    families: dict[str, FamilyWording] = {}
    for code, block in (data.get("families") or {}).items():
        where = f"families.{code}"
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


@lru_cache(maxsize=1)
def load_wording() -> Wording:
    with WORDING_FILE.open(encoding="utf-8") as handle:
        return parse_wording(json.load(handle))
