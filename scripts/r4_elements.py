"""Writes cds_service/fhir/r4_elements.json: the top-level elements of each used R4 resource type.

The read pass screens the fields no rule reads against this table (unknown element, wrong JSON
shape) to count defects without fhir.resources on the request path. The table is derived from the
fhir.resources R4B models, the same source `b12-cds check` validates with; rerun this after
upgrading fhir.resources: `.venv/bin/python scripts/r4_elements.py`.
"""

from __future__ import annotations

import json
from pathlib import Path

from fhir.resources.R4B import get_fhir_model_class

from cds_service.fhir.forms import USED_RESOURCE_TYPES

OUT = Path(__file__).resolve().parent.parent / "cds_service" / "fhir" / "r4_elements.json"


def shape(annotation: object) -> str:
    text = repr(annotation)
    if "List[" in text:
        return "array"
    if "abc." in text:
        return "object"
    return "primitive"


def main() -> None:
    table: dict[str, dict[str, str]] = {}
    for rtype in sorted(USED_RESOURCE_TYPES):
        model = get_fhir_model_class(rtype)
        elements: dict[str, str] = {}
        for name, info in model.model_fields.items():
            alias = info.alias or name
            if alias in ("fhir_comments", "resource_type"):
                continue
            elements[alias] = "extension" if alias.startswith("_") else shape(info.annotation)
        elements["resourceType"] = "primitive"
        table[rtype] = dict(sorted(elements.items()))
    OUT.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {OUT} ({sum(len(v) for v in table.values())} elements)")


if __name__ == "__main__":
    main()
