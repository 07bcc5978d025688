"""Clinical knowledge: value sets, unit factors, thresholds, citations and orderables as data.

Loaded and validated once at start-up (`load_knowledge`); see docs/contracts.md for the API and
/work/shared/clinical-reference.md for where every code and number comes from. A code ending in
`*` in `knowledge_table` output matches every code below it (ICD-10-CM category, ATC group).
"""

from __future__ import annotations

from .loader import DEFAULT_DIRECTORY, load_knowledge
from .model import (
    BrandName,
    Citation,
    CodedEntry,
    Knowledge,
    KnowledgeError,
    NameMatch,
    Orderable,
    ProductInfo,
    SiteAlias,
    Strength,
    Threshold,
    ThresholdOverrideError,
    UnitTable,
)
from .table import knowledge_table

__all__ = [
    "DEFAULT_DIRECTORY",
    "BrandName",
    "Citation",
    "CodedEntry",
    "Knowledge",
    "KnowledgeError",
    "NameMatch",
    "Orderable",
    "ProductInfo",
    "SiteAlias",
    "Strength",
    "Threshold",
    "ThresholdOverrideError",
    "UnitTable",
    "knowledge_table",
    "load_knowledge",
]
