"""Between findings and the response: identity, suppression, shadow mode, and the record of each card.

Every finding gets its stable identity; recently overridden ones are suppressed per policy; in a
shadow service nothing is returned; and every card (shown, suppressed or shadowed) is recorded so
feedback and the report can be joined to it. Reads and writes go through storage.cards_store.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Engine as DbEngine

from .alerting import Decision, IdentifiedFinding, SuppressionPolicy, decide
from .cards.identity import card_identity, evidence_hash
from .clinical.findings import Finding
from .storage.cards_store import IssuedCard, overrides_since, record_issued

log = logging.getLogger("cds_service.alerting")


def identify(findings: Sequence[Finding], patient_id: str) -> list[IdentifiedFinding]:
    items = []
    for finding in findings:
        evidence = evidence_hash(finding)
        items.append(IdentifiedFinding(finding, card_identity(finding, patient_id, evidence), evidence))
    return items


class CardGate:
    def __init__(self, db: DbEngine, policy: SuppressionPolicy, shadow_services: frozenset[str]) -> None:
        self.db = db
        self.policy = policy
        self.shadow_services = shadow_services

    def decide(self, service_id: str, items: Sequence[IdentifiedFinding], now: datetime) -> list[Decision]:
        overrides = {}
        if items and self.policy.longest.days > 0:
            overrides = overrides_since(self.db, (i.identity for i in items), now - self.policy.longest)
        decisions = decide(items, overrides, self.policy, now, shadow=service_id in self.shadow_services)
        for d in decisions:
            if d.disposition == "suppressed":
                log.info("card suppressed", extra={"fields": {"service_id": service_id,
                                                              "topics": [d.item.finding.family],
                                                              "error_code": "suppressed-after-override"}})
        return decisions

    def record(
        self,
        *,
        service_id: str,
        hook: str,
        patient_id: str,
        decisions: Sequence[Decision],
        card_uuids: dict[str, str],
        now: datetime,
    ) -> None:
        """Store one row per decision; shown cards under the uuid the EHR will echo in feedback."""
        record_issued(
            self.db,
            [
                IssuedCard(
                    card_uuid=card_uuids.get(d.item.identity) or str(uuid.uuid4()),
                    identity=d.item.identity,
                    evidence_hash=d.item.evidence_hash,
                    family=d.item.finding.family,
                    service_id=service_id,
                    hook=hook,
                    indicator=d.item.finding.indicator.value,
                    patient_id=patient_id,
                    disposition=d.disposition,
                    reason=d.reason,
                    issued_at=now,
                )
                for d in decisions
            ],
        )
