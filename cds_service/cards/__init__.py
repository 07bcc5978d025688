"""Finding -> CDS Hooks card: summary, detail with evidence, suggestions, links, overrideReasons."""

from __future__ import annotations

from .builder import CardBuildError, build_card, build_cards

__all__ = ["CardBuildError", "build_card", "build_cards"]
