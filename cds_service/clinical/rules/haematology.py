"""Macrocytosis and anaemia, one of the R1 Trigger A co-conditions (clinical-reference 1.6, 4.2).

Macrocytosis: latest MCV within the B12 look-back above mcv.macrocytosis-above, or an active
macrocytosis condition. Anaemia: latest haemoglobin within the look-back below the WHO 2011 cut-off
for the patient (pregnancy 110, female 120, male 130 g/L; edge case 3 uses the pregnancy value).
When sex is unknown the lowest non-pregnant cut-off (female) is used, so "anaemia" is only claimed
when it would be anaemia for any adult.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...knowledge.concepts import HAEMOGLOBIN, MACROCYTOSIS, MCV
from ..findings import EvidenceItem, ThresholdApplied
from ..record import PatientRecord
from .common import (
    KnowledgeView,
    active_problems,
    applied,
    is_pregnant,
    lab_evidence,
    latest_interpretable,
    problem_evidence,
    since,
)
from .mma import below, exceeds


@dataclass(frozen=True)
class Haematology:
    evidence: tuple[EvidenceItem, ...]  # only the abnormal findings
    thresholds: tuple[ThresholdApplied, ...]
    macrocytosis: bool = False  # MCV above the cut-off, or macrocytosis / macrocytic anaemia coded

    @property
    def abnormal(self) -> bool:
        return bool(self.evidence)


def anaemia_key(record: PatientRecord) -> str:
    if is_pregnant(record):
        return "haemoglobin.anaemia-pregnancy-below"
    if record.sex == "male":
        return "haemoglobin.anaemia-male-below"
    return "haemoglobin.anaemia-female-below"


def assess_haematology(record: PatientRecord, kb: KnowledgeView) -> Haematology:
    start = since(record, kb, "window.b12-lookback-days")
    evidence: list[EvidenceItem] = []
    thresholds: list[ThresholdApplied] = []
    mcv = latest_interpretable(record, MCV, start)
    high_mcv = mcv is not None and exceeds(mcv, kb.value("mcv.macrocytosis-above"))
    if mcv is not None and high_mcv:
        evidence.append(lab_evidence(kb, mcv, "macrocytosis"))
        thresholds.append(applied(kb, "mcv.macrocytosis-above", "Macrocytosis: MCV above", ">"))
    coded = active_problems(record, [MACROCYTOSIS])
    evidence.extend(problem_evidence(p, "macrocytosis") for p in coded)
    hb = latest_interpretable(record, HAEMOGLOBIN, start)
    key = anaemia_key(record)
    if hb is not None and below(hb, kb.value(key)):
        evidence.append(lab_evidence(kb, hb, "anaemia"))
        thresholds.append(applied(kb, key, "Anaemia: haemoglobin below", "<"))
    return Haematology(tuple(evidence), tuple(thresholds), macrocytosis=high_mcv or bool(coded))
