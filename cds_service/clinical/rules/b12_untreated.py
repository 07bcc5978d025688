"""`b12-untreated`: a deficient B12 with no B12 replacement on record. A deficient result must never
end in silence.

Triggers:
- U-DEF: the latest valid total or active B12 in the look-back is deficient (NICE NG239 band) and no
  B12 replacement is active, recent (window.cover-recent-days) or started since the sample.
- U-MMA: the latest valid B12 is indeterminate and the MMA that speaks to it is raised (after the
  renal modifier: "possibly renal" counts with a caveat, "uninterpretable" does not). NICE NG239
  uses MMA to confirm deficiency in the indeterminate band, and R1 is silent once MMA has resulted,
  so this family owns the confirmed-but-untreated case.
- U-UNINT: no valid B12 in the look-back but a B12 result that could not be interpreted (unit missing
  or unknown) and no replacement: an info card that the result could not be read (edge case 8).
  It lives here because this family owns "a B12 result the clinician may be relying on". When R2
  fires (active folate therapy, deficiency therefore not excluded) its card already says the result
  could not be interpreted, so this card is not repeated.

Treatment follows the BNF regimens: with neurological symptoms hydroxocobalamin 1 mg IM on alternate
days (indicator critical, BSH 2014: do not delay); otherwise IM hydroxocobalamin, or oral
cyanocobalamin >= 1 mg/day as an option (NICE NG239), IM only after nitrous oxide (Paris 2023).
Pregnancy (edge case 3): a deficient *total* B12 with no active B12 from this pregnancy goes to R1
(`mma-testing` R1-P, info: active B12 first, total B12 falls physiologically) and this family stays
silent, unless there are neurological symptoms (critical: do not delay treatment, BSH 2014) or an
MMA speaks to the result (raised: warning; not raised: info, still recommending active B12), which is
when R1 is silent. So the result never ends in silence unless treatment or an MMA is under way.
"""

from __future__ import annotations

from ..concepts import B12_ACTIVE, B12_TOTAL, IF_ANTIBODY, PERNICIOUS_ANAEMIA, PREGNANCY
from ..findings import EvidenceItem, Finding, Indicator, ProposedAction
from ..record import PatientRecord
from .b12_status import B12Assessment, b12_summary_text, classify_b12
from .common import (
    KnowledgeView,
    absence,
    active_problems,
    applied,
    has_open_order,
    iso_date,
    lab_evidence,
    problem_evidence,
    record_caveats,
    short,
    summary,
    unique,
    usable_results,
    window_text,
)
from .cover import b12_cover, replacement_since
from .folate_context import folate_context
from .mma import MmaAssessment, mma_for_b12
from .neuro import assess_neuro
from .orderables import CYANOCOBALAMIN_ORAL, HYDROXOCOBALAMIN_IM, HYDROXOCOBALAMIN_IM_NEURO
from .risk import assess_risk

FAMILY = "b12-untreated"


def evaluate(record: PatientRecord, kb: KnowledgeView) -> list[Finding]:
    b12 = classify_b12(record, kb)
    if b12_cover(record, kb).any:
        return []
    if b12.index is None:
        return _uninterpretable(record, kb, b12)
    assert b12.index.effective is not None
    if replacement_since(record, kb, b12.index.effective):
        return []
    mma = mma_for_b12(record, kb, b12.index)
    if b12.status == "deficient":
        trigger = "U-DEF"
    elif b12.status == "indeterminate" and mma is not None and mma.supports_deficiency:
        trigger = "U-MMA"
    else:
        return []

    neuro = assess_neuro(record, kb)
    risk = assess_risk(record, kb)
    pregnancy_check = b12.pregnant and b12.index_is_total and trigger == "U-DEF"
    if pregnancy_check and not neuro.any and mma is None:
        return []  # R1-P speaks: active B12 first (edge case 3)
    if neuro.any:
        indicator = Indicator.CRITICAL
    elif pregnancy_check and mma is not None and not mma.supports_deficiency:
        indicator = Indicator.INFO
    else:
        indicator = Indicator.WARNING

    evidence: list[EvidenceItem] = list(b12.evidence(kb))
    if mma is not None:
        evidence.append(mma.evidence(kb))
    evidence.append(
        absence(
            "B12 replacement",
            f"none active, none in the last {window_text(kb, 'window.cover-recent-days')} and none started "
            f"since {iso_date(b12.index.effective)}",
        )
    )
    evidence.extend(neuro.evidence())
    evidence.extend(risk.evidence())
    if b12.pregnant:
        evidence.extend(problem_evidence(p, "pregnancy") for p in active_problems(record, [PREGNANCY]))

    thresholds = list(b12.thresholds)
    thresholds.append(applied(kb, "window.b12-lookback-days", "B12 result look-back", "<="))
    thresholds.append(
        applied(kb, "window.cover-recent-days", "B12 replacement counts as treatment within", "<=")
    )
    if mma is not None:
        thresholds.extend(mma.thresholds)

    citations = ["nice-ng239", "bsh-2014", "bnf-b12-dosing"]
    if risk.n2o_exposed:
        citations.append("paris-2023")

    caveats: list[str] = []
    if pregnancy_check:
        caveats.append("Pregnancy: total B12 falls physiologically; confirm with active B12 (NICE NG239).")
    if mma is not None and trigger == "U-MMA":
        caveats.extend(mma.renal.caveats(kb))
    if b12.uninterpretable:
        caveats.append("Another B12 result could not be interpreted (unit missing or not recognised).")

    return [
        Finding(
            family=FAMILY,
            trigger=trigger,
            indicator=indicator,
            summary=summary(_summary(trigger, b12, mma, neuro.any, pregnancy_check)),
            rationale=_rationale(trigger, neuro.any, pregnancy_check, risk.n2o_exposed),
            evidence=unique(evidence),
            thresholds=unique(thresholds),
            citations=unique(citations),
            actions=_actions(record, kb, neuro.any, pregnancy_check, risk.n2o_exposed, risk.labels()),
            caveats=tuple(caveats) + record_caveats(record, evidence),
        )
    ]


def _summary(
    trigger: str, b12: B12Assessment, mma: MmaAssessment | None, neuro: bool, pregnancy: bool
) -> str:
    text = b12_summary_text(b12)
    if trigger == "U-MMA":
        return "Borderline B12 with raised MMA and no B12 replacement on record: treat as B12 deficiency"
    if neuro:
        return f"Deficient {text} with neurological symptoms and no treatment: start IM hydroxocobalamin"
    if pregnancy:
        return f"Low {text} in pregnancy, untreated: check active B12 and treat if confirmed"
    return f"Deficient {text} with no B12 replacement on record: start B12 treatment"


def _rationale(trigger: str, neuro: bool, pregnancy: bool, n2o: bool) -> tuple[str, ...]:
    lines = [
        "B12 deficiency is confirmed by a raised MMA with a borderline B12."
        if trigger == "U-MMA"
        else "The latest valid B12 is in the deficient band (NICE NG239).",
        "No B12 replacement is recorded since the sample.",
    ]
    if neuro:
        lines.append(
            "With neurological symptoms use the neurological regimen and do not delay treatment "
            "(BSH 2014; BNF)."
        )
    if pregnancy:
        lines.append("In pregnancy total B12 falls physiologically; active B12 is the preferred test.")
    if n2o:
        lines.append("After nitrous oxide exposure IM hydroxocobalamin is used (Paris 2023).")
    return tuple(lines)


def _actions(
    record: PatientRecord, kb: KnowledgeView, neuro: bool, pregnancy: bool, n2o: bool, risks: list[str]
) -> tuple[ProposedAction, ...]:
    actions: list[ProposedAction] = []
    if pregnancy and not has_open_order(record, B12_ACTIVE):
        actions.append(ProposedAction("order-lab", B12_ACTIVE))
    if neuro:
        actions.append(ProposedAction("order-medication", HYDROXOCOBALAMIN_IM_NEURO))
    else:
        actions.append(ProposedAction("order-medication", HYDROXOCOBALAMIN_IM))
        if not n2o:
            actions.append(ProposedAction("order-medication", CYANOCOBALAMIN_ORAL))
    known_cause = PERNICIOUS_ANAEMIA in risks
    if (
        not known_cause
        and not usable_results(record, [IF_ANTIBODY])
        and not has_open_order(record, IF_ANTIBODY)
    ):
        actions.append(ProposedAction("order-lab", IF_ANTIBODY))
    return tuple(a for a in actions if a.key in kb.orderables)


def _uninterpretable(record: PatientRecord, kb: KnowledgeView, b12: B12Assessment) -> list[Finding]:
    """U-UNINT: the only recent B12 results could not be read; say so rather than stay silent."""
    if b12.status != "uninterpretable" or folate_context(record, kb, b12).applies:
        return []
    result = b12.uninterpretable[0]
    evidence = [lab_evidence(kb, r) for r in b12.uninterpretable]
    evidence.append(
        absence(
            "Valid B12", f"no interpretable B12 in the last {window_text(kb, 'window.b12-lookback-days')}"
        )
    )
    actions = () if has_open_order(record, B12_TOTAL) else (ProposedAction("order-lab", B12_TOTAL),)
    undated = result.effective is None
    why = "no date" if undated and result.problem is None else short(result.problem or "unit missing")
    when = f"of {iso_date(result.effective)}" if not undated else f"{result.as_received()}"
    reason = (
        "A B12 result was received without any date, so it cannot be placed in the "
        f"{window_text(kb, 'window.b12-lookback-days')} look-back or judged against treatment; it was not "
        "classified."
        if undated and result.problem is None
        else "A B12 result was received but its unit is missing or not recognised, so it was not "
        "classified; guessing a unit could turn a deficient result into a normal one."
    )
    return [
        Finding(
            family=FAMILY,
            trigger="U-UNINT",
            indicator=Indicator.INFO,
            summary=summary(f"B12 result {when} could not be interpreted ({why}): check with the lab"),
            rationale=(
                reason,
                "Ask the laboratory for the missing detail, or repeat the test.",
            ),
            evidence=tuple(evidence),
            thresholds=(applied(kb, "window.b12-lookback-days", "B12 result look-back", "<="),),
            citations=("nice-ng239",),
            actions=actions,
            caveats=record_caveats(record, evidence),
        )
    ]
