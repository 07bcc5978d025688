"""Field checks shared by the knowledge loaders: every problem names the file and the field or entry.

Strict because a wrong knowledge file fails silently at run time (a typo in a concept id simply
never matches); see loader.py.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from cds_service.knowledge.concepts import MEDICATION_CLASSES

from .model import KnowledgeError


def _read(root: Path, name: str, *, optional: bool = False) -> Any:
    path = root / name
    if not path.is_file():
        if optional:
            return None
        raise KnowledgeError(f"{name}: file missing in {root}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise KnowledgeError(f"{name}: cannot read JSON: {exc}") from exc


def _field(obj: Any, key: str, kind: type | tuple[type, ...], file: str, where: str, *, optional: bool = False) -> Any:
    if not isinstance(obj, dict):
        raise KnowledgeError(f"{file}: {where}: expected an object")
    value = obj.get(key)
    if value is None and optional:
        return None
    if value is None or not isinstance(value, kind) or (kind is str and isinstance(value, str) and not value.strip()):
        raise KnowledgeError(f"{file}: {where}.{key}: missing or not a {_kind_name(kind)}")
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(k.__name__ for k in kinds)


def _number(value: Any, file: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise KnowledgeError(f"{file}: {where}: not a finite number ({value!r})")
    return float(value)


def _list(obj: Any, key: str, file: str) -> list[Any]:
    value = obj.get(key) if isinstance(obj, dict) else None
    if not isinstance(value, list):
        raise KnowledgeError(f"{file}: '{key}' missing or not a list")
    return value


def _strings(item: Any, key: str, file: str, where: str) -> tuple[str, ...]:
    values = item.get(key) if isinstance(item, dict) else None
    if values is None:
        return ()
    if not isinstance(values, list) or not all(isinstance(v, str) and v.strip() for v in values):
        raise KnowledgeError(f"{file}: {where}.{key}: expected a list of non-empty strings")
    return tuple(" ".join(v.split()) for v in values)


def _concept_list(item: Any, key: str, file: str, where: str, *, allow_empty: bool = False) -> frozenset[str]:
    values = _strings(item, key, file, where)
    if not values and not allow_empty:
        raise KnowledgeError(f"{file}: {where}.{key}: missing or empty")
    for cid in values:
        if cid not in MEDICATION_CLASSES:
            raise KnowledgeError(f"{file}: {where}.{key}: {cid!r} is not a medication class")
    return frozenset(values)
