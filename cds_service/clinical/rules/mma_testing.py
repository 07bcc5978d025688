"""R1 (`mma-testing`): recommend MMA when B12 is borderline, misleadingly normal, or N2O was used.

NICE NG239: consider MMA with symptoms/signs and an indeterminate total or active B12; with suspected
nitrous oxide use test homocysteine or MMA because the B12 level may be normal. BSH 2014: MMA is the
second-line test, and where results and strong clinical features disagree do not be reassured by a
normal level (assay interference by intrinsic factor antibodies; Lindenbaum 1988: B12 above
150 pmol/L in neurological deficiency). Clinical-reference 4.2 and edge cases 1-4, 6, 7, 10, 11.

Triggers: A indeterminate B12 with neuro symptoms, macrocytosis/anaemia or a risk factor (the
risk-factor-only path is a local extension, info); B normal B12, a neuro symptom with onset within
12 months, and N2O, a positive IF antibody or >= 2 risk factors (age not counted); C nitrous oxide
within 12 months, any or no B12; P (edge case 3) total B12 deficient or indeterminate in pregnancy
(no active B12 from this pregnancy): info, active B12 first because total B12 falls physiologically,
then MMA if still borderline. `b12-untreated` stays silent on that case unless there are neuro
symptoms or an MMA, so one result never yields two competing cards.
"""

from __future__ import annotations

from ..concepts import (
    ATROPHIC_GASTRITIS,
    AUTOIMMUNE_ENDOCRINE,
    B12_ACTIVE,
    EGFR,
    HOMOCYSTEINE,
    IF_ANTIBODY,
    METFORMIN,
    MMA,
    PERNICIOUS_ANAEMIA,
    PREGNANCY,
)
from ..findings import EvidenceItem, Finding, Indicator, ProposedAction
from ..record import PatientRecord
from .b12_status import B12Assessment, b12_summary_text, classify_b12
from .common import (
    KnowledgeView,
    absence,
    active_problems,
    analyte_label,
    applied,
    has_open_order,
    iso_date,
    join_words,
    lab_evidence,
    problem_evidence,
    record_caveats,
    since,
    summary,
    unique,
    usable_results,
    window_text,
)
from .cover import b12_cover, replacement_since
from .haematology import assess_haematology
from .mma import mma_for_b12, renal_context
from .neuro import assess_neuro, neuro_thresholds
from .orderables import CREATININE
from .risk import assess_risk

FAMILY = "mma-testing"


def evaluate(record: PatientRecord, kb: KnowledgeView) -> list[Finding]:
    b12 = classify_b12(record, kb)
    pregnant_total = b12.pregnant and b12.index_is_total
    if b12.status == "deficient" and not pregnant_total:
        return []  # diagnosis made: MMA adds nothing, `b12-untreated` speaks instead
    if b12_cover(record, kb).any:
        return []  # MMA falls on treatment (edge case 1)
    if b12.index is not None and b12.index.effective and replacement_since(record, kb, b12.index.effective):
        return []
    if has_open_order(record, MMA) or mma_for_b12(record, kb, b12.index) is not None:
        return []  # already ordered, or already resulted after (or shortly before) the index B12

    neuro = assess_neuro(record, kb)
    risk = assess_risk(record, kb)
    haem = assess_haematology(record, kb)
    if_positive = [r for r in usable_results(record, [IF_ANTIBODY]) if r.positive]

    triggers: list[str] = []
    if risk.n2o_exposed:
        triggers.append("R1-C")
    if pregnant_total and b12.status in ("deficient", "indeterminate"):
        triggers.append("R1-P")
    elif b12.status == "indeterminate" and (neuro.any or haem.abnormal or risk.any):
        triggers.append("R1-A")
    recent = neuro.recent_symptoms()
    if b12.status == "normal" and recent and (risk.n2o_exposed or if_positive or risk.count_without_age >= 2):
        triggers.append("R1-B")
    if not triggers:
        return []

    renal = renal_context(record, kb)
    warning = "R1-C" in triggers or (neuro.any and not b12.pregnant)
    indicator = Indicator.WARNING if warning else Indicator.INFO

    evidence: list[EvidenceItem] = list(b12.evidence(kb))
    start = b12.index.effective if b12.index is not None else None
    evidence.append(
        absence(
            analyte_label(kb, MMA),
            f"no MMA result since {iso_date(start)} (around the B12 sample)"
            if start
            else f"no MMA result in the last {window_text(kb, 'window.b12-lookback-days')}",
        )
    )
    evidence.append(absence("B12 replacement", "none on record since the B12 sample"))
    evidence.extend(neuro.evidence(recent if "R1-B" in triggers and "R1-A" not in triggers else None))
    evidence.extend(haem.evidence)
    evidence.extend(risk.evidence())
    evidence.extend(lab_evidence(kb, r, "positive: can falsely normalise B12") for r in if_positive[:1])
    evidence.extend(renal.evidence(kb))
    if b12.pregnant:
        evidence.extend(problem_evidence(p, "pregnancy") for p in active_problems(record, [PREGNANCY]))

    thresholds = list(b12.thresholds)
    thresholds.append(applied(kb, "window.b12-lookback-days", "B12 result look-back", "<="))
    thresholds.append(
        applied(kb, "window.mma-before-b12-days", "MMA counts if drawn before the B12 by at most", "<=")
    )
    thresholds.extend(neuro_thresholds(kb, recent="R1-B" in triggers))
    thresholds.extend(haem.thresholds)
    thresholds.extend(risk.thresholds)
    thresholds.extend(renal.thresholds(kb))
    thresholds.append(applied(kb, "window.egfr-recent-days", "eGFR counts if measured within", "<="))

    citations = ["nice-ng239", "bsh-2014"]
    if "R1-B" in triggers:
        citations.append("lindenbaum-1988")
    if risk.n2o_exposed:
        citations.append("paris-2023")
    if any(f.label == METFORMIN for f in risk.factors):
        citations.append("mhra-metformin-2022")
    if renal.level in ("caution", "severe"):
        citations.extend(["mayo-mma", "design-convention"])

    return [
        Finding(
            family=FAMILY,
            trigger="+".join(triggers),
            indicator=indicator,
            summary=summary(_summary(triggers, b12_summary_text(b12), b12.status, neuro.any, haem.abnormal)),
            rationale=_rationale(triggers, b12.status, if_positive != [], risk.count_without_age),
            evidence=unique(evidence),
            thresholds=unique(thresholds),
            citations=unique(citations),
            actions=_actions(record, kb, triggers, b12.status, pregnant_total, renal.level, risk.labels()),
            caveats=_caveats(record, b12, renal.caveats(kb), evidence, risk.n2o_exposed),
        )
    ]


def _summary(triggers: list[str], b12_text: str, status: str, neuro: bool, haem: bool) -> str:
    if "R1-C" in triggers:
        return "Nitrous oxide exposure: B12 level may look normal; check MMA and homocysteine"
    if "R1-P" in triggers:
        low = "Low" if status == "deficient" else "Borderline"
        return f"{low} {b12_text} in pregnancy: check active B12 first (total B12 falls in pregnancy)"
    if "R1-A" in triggers:
        why = (
            "neurological symptoms" if neuro else ("macrocytosis or anaemia" if haem else "B12 risk factors")
        )
        return f"Borderline {b12_text} with {why}: check MMA to confirm deficiency"
    return "Normal B12 but new neurological symptoms and high pre-test risk: check MMA"


def _rationale(triggers: list[str], status: str, if_positive: bool, risk_count: int) -> tuple[str, ...]:
    lines = []
    if "R1-A" in triggers:
        lines.append(
            "The latest valid B12 is in the indeterminate band, where deficiency is possible but unproven."
        )
        lines.append("NICE NG239 recommends MMA when B12 is indeterminate and symptoms or signs are present.")
    if "R1-P" in triggers:
        lines.append(
            f"The latest total B12 is in the {status} band, but total B12 falls physiologically in "
            "pregnancy; NICE NG239 prefers active B12 in pregnancy."
        )
        if status == "indeterminate":
            lines.append("If active B12 is also borderline, MMA can confirm deficiency.")
    if "R1-B" in triggers:
        why = [
            w
            for w, ok in (
                ("a positive intrinsic factor antibody (can falsely normalise B12)", if_positive),
                (f"{risk_count} risk factors", risk_count >= 2),
            )
            if ok
        ]
        lines.append(
            "B12 is normal, but new neurological symptoms with "
            + (join_words(why) or "recent nitrous oxide use")
            + " make a misleadingly normal level possible (BSH 2014; Lindenbaum 1988)."
        )
    if "R1-C" in triggers:
        lines.append(
            "Nitrous oxide inactivates B12: the serum level is often normal, so NICE NG239 and Paris 2023 "
            "advise MMA and homocysteine."
        )
    if status == "none":
        lines.append("No valid B12 in the look-back: a B12 level is also worth measuring.")
    return tuple(lines)


def _actions(
    record: PatientRecord,
    kb: KnowledgeView,
    triggers: list[str],
    status: str,
    pregnant_total: bool,
    renal: str,
    risks: list[str],
) -> tuple[ProposedAction, ...]:
    keys: list[str] = []
    if pregnant_total or renal == "severe":
        has_active = usable_results(record, [B12_ACTIVE], since(record, kb, "window.b12-lookback-days"))
        if not has_active:
            keys.append(B12_ACTIVE)
    if not ("R1-P" in triggers and status == "deficient") or "R1-C" in triggers:
        keys.append(MMA)
    if "R1-C" in triggers:
        keys.append(HOMOCYSTEINE)
    if renal == "unknown":
        keys.extend([EGFR, CREATININE])
    autoimmune = {ATROPHIC_GASTRITIS, AUTOIMMUNE_ENDOCRINE} & set(risks)
    if autoimmune and PERNICIOUS_ANAEMIA not in risks and not usable_results(record, [IF_ANTIBODY]):
        keys.append(IF_ANTIBODY)
    return tuple(
        ProposedAction("order-lab", key)
        for key in dict.fromkeys(keys)
        if key in kb.orderables and not has_open_order(record, key)
    )


def _caveats(
    record: PatientRecord,
    b12: B12Assessment,
    renal_caveats: tuple[str, ...],
    evidence: list[EvidenceItem],
    n2o: bool,
) -> tuple[str, ...]:
    caveats = list(renal_caveats)
    if b12.pregnant and b12.index_is_total:
        caveats.append(
            "Pregnancy: total B12 falls physiologically; active B12 is the preferred test (NICE NG239)."
        )
    if b12.uninterpretable:
        caveats.append(
            "A B12 result could not be interpreted (unit missing or not recognised): see evidence."
        )
    if n2o:
        caveats.append(
            "Nitrous oxide given as procedural analgesia cannot be told apart from misuse in coded data."
        )
    return tuple(caveats) + record_caveats(record, evidence)
