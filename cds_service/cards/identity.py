"""Stable card identity: the same finding on the same data has the same identity across calls and hooks.

identity = sha256(family | patient id | evidence hash); the evidence hash covers what the finding
rests on (each evidence item's kind, value as received, date, code and FHIR reference), not wording
or the indicator, so a re-worded card keeps its identity and a new B12 result gives a new one.
Hashes, not values, are stored: the database never holds the clinical data itself.
"""

from __future__ import annotations

import hashlib

import orjson

from ..clinical.findings import Finding

IDENTITY_EXTENSION = "org.b12-neuro-cds.card-identity"


def evidence_hash(finding: Finding) -> str:
    items = sorted(
        (e.kind, e.as_received, e.date or "", e.code or "", e.reference or "") for e in finding.evidence
    )
    return hashlib.sha256(orjson.dumps([finding.family, items])).hexdigest()


def card_identity(finding: Finding, patient_id: str, evidence: str | None = None) -> str:
    evidence = evidence or evidence_hash(finding)
    return hashlib.sha256(f"{finding.family}|{patient_id}|{evidence}".encode()).hexdigest()


def identity_extension(identity: str, evidence: str, finding: Finding) -> dict[str, dict[str, object]]:
    """Carried on the card (CDS Hooks `extension`) so EHR logs and our feedback can be joined to it.

    `evidence` lists the FHIR reference of every evidence row, in the card table's order, so a safety
    officer can trace each row of the card to the resource it was read from.
    """
    refs = list(dict.fromkeys(e.reference for e in finding.evidence if e.reference))
    return {IDENTITY_EXTENSION: {"identity": identity, "evidenceHash": evidence, "trigger": finding.trigger,
                                 "evidence": refs}}
