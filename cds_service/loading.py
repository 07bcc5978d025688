"""Everything the service reads from files, loaded and cross-checked once, at start-up, in one place.

The knowledge loader reads the knowledge directory (value sets, thresholds, units, citations,
orderables, the RxNorm product table, the explanation pages' data and the card wording) and checks
it against itself; here it is checked against the code that uses it, and the service files are read:
every rule family has wording and an explanation page, every service file names known families, and
every `CDS_SHADOW_SERVICES` id is a service. Anything wrong is a `StartupError` naming the file and
the field, so a broken deployment stops before the first request instead of failing on it.
"""

from __future__ import annotations

from dataclasses import dataclass

from .clinical.rules import FAMILIES
from .config import ConfigError, Settings
from .knowledge import Knowledge, ThresholdOverrideError, load_knowledge
from .knowledge.explain import check_families_documented
from .knowledge.wording import check_wording_covers
from .protocol.services import ServiceDefinition, load_service_definitions


@dataclass(frozen=True)
class Loaded:
    knowledge: Knowledge
    services: dict[str, ServiceDefinition]


def load_all(settings: Settings) -> Loaded:
    """Knowledge (with wording) and service files, cross-checked against the rule families."""
    try:
        kb = load_knowledge(settings.knowledge_dir, threshold_overrides=settings.threshold_overrides or None)
    except ThresholdOverrideError as exc:
        raise ConfigError(f"CDS_THRESHOLD_OVERRIDES: {exc}") from None
    check_wording_covers(kb.wording, FAMILIES)  # a family without wording would be a 500 on its first card
    check_families_documented(kb, FAMILIES)  # every card links to its family's /explain page
    services = load_service_definitions(settings.hooks_dir, FAMILIES)
    unknown_shadow = settings.shadow_services - set(services)
    if unknown_shadow:
        raise ConfigError(f"CDS_SHADOW_SERVICES: unknown service id(s) {', '.join(sorted(unknown_shadow))}")
    return Loaded(kb, services)
