"""A cheap screen of the fields no rule reads: count their defects, never refuse for them.

The typed read (`fhir.forms`) checks only the fields the rules use. For the resources it reads, this
screen looks at every other top-level element once, against the R4 element table of the type
(`r4_elements.json`, generated from the fhir.resources R4B models by scripts/r4_elements.py): an
element R4 does not define, a JSON shape R4 does not allow (a string where `note` is an array), an
extension without a `url`, a `meta.lastUpdated` that is not an instant. Each is counted in metrics
and logged at debug level by resource type and element name, never by value; the resource is still
read. It is a screen, not validation: nested content is not walked (`b12-cds check` does that).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from .forms import INSTANT_RE

_TABLE: dict[str, dict[str, str]] = json.loads((Path(__file__).with_name("r4_elements.json")).read_text("utf-8"))
_INSTANT = re.compile(INSTANT_RE)
UNKNOWN_ELEMENT = "(unknown element)"
SCREENED_FIELDS = frozenset({name for elements in _TABLE.values() for name in elements} |
                            {UNKNOWN_ELEMENT, "meta.lastUpdated"})
_SHAPES: dict[str, tuple[type, ...]] = {
    "array": (list,),
    "object": (dict,),
    "primitive": (str, int, float, bool),
    "extension": (dict, list),
}


def unread_defects(resource: dict[str, Any], resource_type: str, read: frozenset[str]) -> list[str]:
    """Names of the top-level elements (not in `read`) whose content R4 does not allow."""
    elements = _TABLE.get(resource_type, {})
    out: list[str] = []
    for key, value in resource.items():
        if key in read:
            continue
        shape = elements.get(key)
        if shape is None:
            out.append(UNKNOWN_ELEMENT)
        elif not isinstance(value, _SHAPES[shape]) or (shape == "array" and not value):
            out.append(key)
        elif key in ("extension", "modifierExtension") and not all(
            isinstance(e, dict) and isinstance(e.get("url"), str) for e in value
        ):
            out.append(key)
        elif key == "meta":
            updated = value.get("lastUpdated")
            if updated is not None and not (isinstance(updated, str) and _INSTANT.match(updated)):
                out.append("meta.lastUpdated")
    return out
