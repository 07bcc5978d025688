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

Order hooks (4.6 D2, D9): the family speaks only when a total or active B12 test is among the orders
under review and the latest valid B12 is borderline with a neurological symptom: MMA confirms tissue
deficiency better than a repeat B12 (NICE NG239: MMA is the second-line test; BSH 2014). It never
speaks on unrelated orders. The risk-factor-only path of trigger A is named on the card as a local
extension of NICE, not as NICE's recommendation (4.6 D7).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...knowledge.concepts import (
    ATROPHIC_GASTRITIS,
    AUTOIMMUNE_ENDOCRINE,
    B12_ACTIVE,
    B12_TOTAL,
    EGFR,
    HOMOCYSTEINE,
    IF_ANTIBODY,
    METFORMIN,
    MMA,
    PERNICIOUS_ANAEMIA,
    PREGNANCY,
)
from ..findings import EvidenceItem, Finding, Indicator, ProposedAction
from .b12_status import b12_summary_text
from .common import (
    UNINTERPRETABLE_B12_CAVEAT,
    KnowledgeView,
    absence,
    active_problems,
    analyte_label,
    applied,
    has_open_order,
    iso_date,
    join_words,
    lab_evidence,
    order_evidence,
    problem_evidence,
    record_caveats,
    since,
    summary,
    unique,
    unique_evidence,
    usable_results,
    window_text,
)
from .cover import cover_evidence
from .mma import homocysteine_caveats
from .neuro import neuro_thresholds
from .orderables import CREATININE

if TYPE_CHECKING:
    from ..assessment import Assessment

FAMILY = "mma-testing"


def evaluate(a: Assessment, kb: KnowledgeView) -> list[Finding]:
    record, b12 = a.record, a.b12
    if a.order_hook and not a.subjects.b12_tests:
        return []  # 4.6 D2/D9: at order time only about a B12 test under review
    pregnant_total = b12.pregnant and b12.index_is_total
    if b12.status == "deficient" and not pregnant_total:
        return []  # diagnosis made: MMA adds nothing, `b12-untreated` speaks instead
    if a.cover.any or a.replacement_since_index:
        return []  # MMA falls on treatment (edge case 1)
    if has_open_order(record, MMA) or a.mma_for_index is not None:
        return []  # already ordered, or already resulted after (or shortly before) the index B12

    neuro, risk, haem = a.neuro, a.risk, a.haematology
    if_positive = list(a.antibodies.positive)
    triggers: list[str] = []
    if a.order_hook:
        if b12.status == "indeterminate" and neuro.any:
            triggers.append("R1-A")  # D9: the right test at order time
    else:
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

    renal = a.renal
    warning = "R1-C" in triggers or (neuro.any and not b12.pregnant)
    indicator = Indicator.WARNING if warning else Indicator.INFO
    risk_only = triggers == ["R1-A"] and not neuro.any and not haem.abnormal

    evidence: list[EvidenceItem] = [order_evidence(o, "test being ordered") for o in a.subjects.b12_tests]
    evidence.extend(b12.evidence(kb))
    start = b12.index.effective if b12.index is not None else None
    evidence.append(
        absence(
            analyte_label(kb, MMA),
            f"no MMA result since {iso_date(start)} (around the B12 sample)"
            if start
            else f"no MMA result in the last {window_text(kb, 'window.b12-lookback-days')}",
        )
    )
    evidence.extend(cover_evidence(a.cover, kb, drafts_reviewed=a.order_hook))
    only_recent = "R1-B" in triggers and "R1-A" not in triggers
    evidence.extend(neuro.evidence(neuro.recent_symptoms() if only_recent else None))
    evidence.extend(haem.evidence)
    evidence.extend(risk.evidence())
    evidence.extend(lab_evidence(kb, r, "positive: can falsely normalise B12") for r in if_positive[:1])
    evidence.extend(lab_evidence(kb, r) for r in a.antibodies.uninterpretable)
    evidence.extend(a.hcy_evidence(kb))
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
    if a.homocysteine is not None and a.homocysteine.raised and a.homocysteine.threshold is not None:
        thresholds.append(a.homocysteine.threshold)

    citations = ["nice-ng239", "bsh-2014"]
    if "R1-B" in triggers:
        citations.append("lindenbaum-1988")
    if risk.n2o_exposed and not a.order_hook:
        citations.append("paris-2023")
    if any(f.label == METFORMIN for f in risk.factors):
        citations.append("mhra-metformin-2022")
    if renal.level in ("caution", "severe"):
        citations.extend(["mayo-mma", "design-convention"])
    if risk_only:
        citations.append("design-convention")

    caveats = list(renal.caveats(kb))
    caveats.extend(homocysteine_caveats(a.homocysteine, renal, kb))
    if b12.pregnant and b12.index_is_total:
        caveats.append("Pregnancy: total B12 falls physiologically; active B12 is the preferred test (NICE NG239).")
    if b12.uninterpretable:
        caveats.append(UNINTERPRETABLE_B12_CAVEAT)
    if risk.n2o_exposed and not a.order_hook:
        caveats.append("Nitrous oxide given as procedural analgesia cannot be told apart from misuse in coded data.")

    return [
        Finding(
            family=FAMILY,
            trigger="+".join(triggers),
            indicator=indicator,
            summary=summary(_summary(a, triggers, b12_summary_text(b12))),
            rationale=_rationale(a, triggers, risk_only),
            evidence=unique_evidence(evidence),
            thresholds=unique(thresholds),
            citations=unique(citations),
            actions=_actions(a, kb, triggers, pregnant_total),
            caveats=tuple(caveats) + record_caveats(record, evidence),
            subject_refs=tuple(o.source_ref for o in a.subjects.b12_tests) if a.order_hook else (),
        )
    ]


def _summary(a: Assessment, triggers: list[str], b12_text: str) -> str:
    status = a.b12.status
    if a.order_hook:
        when = iso_date(a.b12.index.effective) if a.b12.index is not None else "recently"
        return f"B12 was borderline on {when}: MMA confirms tissue deficiency better than a repeat B12"
    if "R1-C" in triggers:
        return "Nitrous oxide exposure: B12 level may look normal; check MMA and homocysteine"
    if "R1-P" in triggers:
        low = "Low" if status == "deficient" else "Borderline"
        return f"{low} {b12_text} in pregnancy: check active B12 first (total B12 falls in pregnancy)"
    if "R1-A" in triggers:
        why = (
            "neurological symptoms"
            if a.neuro.any
            else ("macrocytosis or anaemia" if a.haematology.abnormal else "B12 risk factors")
        )
        return f"Borderline {b12_text} with {why}: check MMA to confirm deficiency"
    return "Normal B12 but new neurological symptoms and high pre-test risk: check MMA"


def _rationale(a: Assessment, triggers: list[str], risk_only: bool) -> tuple[str, ...]:
    """Why MMA (one sentence per trigger, at most two) and what it answers."""
    status = a.b12.status
    lines = []
    if "R1-C" in triggers:
        lines.append("Nitrous oxide inactivates B12, so the serum level is often normal: MMA and homocysteine "
                     "show tissue deficiency (NICE NG239; Paris 2023).")
    if "R1-P" in triggers:
        lines.append(f"Total B12 is {status} but falls physiologically in pregnancy; NICE NG239 prefers active "
                     "B12, then MMA if still borderline.")
    if "R1-A" in triggers:
        if a.order_hook:
            lines.append("A repeat B12 is being ordered after a borderline result with a neurological symptom; "
                         "MMA, the second-line test, answers what the B12 left open (NICE NG239; BSH 2014).")
        elif risk_only:
            lines.append("B12 is borderline with risk factors but no symptom or sign: MMA here is a local "
                         "extension of NICE NG239, which recommends it when symptoms or signs are present.")
        else:
            lines.append("B12 is borderline, where deficiency is possible but unproven; NICE NG239 recommends MMA "
                         "when symptoms or signs are present.")
    if "R1-B" in triggers:
        why = [
            w
            for w, ok in (
                ("a positive intrinsic factor antibody (can falsely normalise B12)", bool(a.antibodies.positive)),
                (f"{a.risk.count_without_age} risk factors", a.risk.count_without_age >= 2),
            )
            if ok
        ]
        lines.append(
            "B12 is normal, but new neurological symptoms with "
            + (join_words(why) or "recent nitrous oxide use")
            + " make a misleadingly normal level possible (BSH 2014; Lindenbaum 1988)."
        )
    lines = lines[:2]
    if status == "none":
        lines.append("There is no valid B12 in the look-back: measure B12 too.")
    return tuple(lines)


def _actions(
    a: Assessment, kb: KnowledgeView, triggers: list[str], pregnant_total: bool
) -> tuple[ProposedAction, ...]:
    record = a.record
    keys: list[str] = []
    if pregnant_total or a.renal.level == "severe":
        has_active = usable_results(record, [B12_ACTIVE], since(record, kb, "window.b12-lookback-days"))
        if not has_active:
            keys.append(B12_ACTIVE)
    if a.b12.status == "none":
        keys.append(B12_ACTIVE if a.pregnant else B12_TOTAL)  # the rationale asks for it: offer it
    if not ("R1-P" in triggers and a.b12.status == "deficient") or "R1-C" in triggers:
        keys.append(MMA)
    if "R1-C" in triggers:
        keys.append(HOMOCYSTEINE)
    if a.renal.level == "unknown":
        keys.extend([EGFR, CREATININE])
    risks = a.risk.labels()
    autoimmune = {ATROPHIC_GASTRITIS, AUTOIMMUNE_ENDOCRINE} & set(risks)
    if autoimmune and PERNICIOUS_ANAEMIA not in risks and not a.antibodies.any_result:
        keys.append(IF_ANTIBODY)
    return tuple(
        ProposedAction("order-lab", key)
        for key in dict.fromkeys(keys)
        if key in kb.orderables and not has_open_order(record, key)
    )
