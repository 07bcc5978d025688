"""`b12-untreated`: a deficient B12 with no B12 replacement on record. A deficient result must never
end in silence.

Triggers:
- U-DEF: the latest valid total or active B12 in the look-back is deficient (NICE NG239 band) and no
  B12 replacement is active, recent (window.cover-recent-days) or started since the sample.
- U-MMA: the latest valid B12 is indeterminate and the MMA that speaks to it is raised (after the
  renal modifier: "possibly renal" counts with a caveat, "uninterpretable" does not). NICE NG239
  uses MMA to confirm deficiency in the indeterminate band, and R1 is silent once MMA has resulted,
  so this family owns the confirmed-but-untreated case.
- U-PA (4.6 D4): an active pernicious anaemia / autoimmune gastritis condition with no B12
  replacement on record, whatever the B12 (or none): the cause is irreversible and replacement is
  lifelong (NICE NG239 rationale, S). A deficient B12 or a raised MMA takes the U-DEF/U-MMA path.
- U-UNINT: no valid B12 in the look-back but a B12 result that could not be interpreted (unit missing
  or unknown) and no replacement: an info card that the result could not be read (edge case 8).
  It lives here because this family owns "a B12 result the clinician may be relying on". When R2
  fires (active folate therapy, deficiency therefore not excluded) its card already says the result
  could not be interpreted, so this card is not repeated.

"No replacement" is read from the record (4.6 D3): a B12 product that does not count as cover
(strength unknown, low dose) is listed on the card with why, and no sentence says "none on record"
while the record holds one.

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

from typing import TYPE_CHECKING

from ...knowledge.concepts import B12_ACTIVE, B12_TOTAL, IF_ANTIBODY, PERNICIOUS_ANAEMIA, PREGNANCY
from ..findings import EvidenceItem, Finding, Indicator, ProposedAction
from .b12_status import B12Assessment, b12_summary_text
from .common import (
    UNINTERPRETABLE_B12_CAVEAT,
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
    unique_evidence,
    window_text,
)
from .cover import cover_evidence
from .mma import MmaAssessment, homocysteine_caveats
from .orderables import CYANOCOBALAMIN_ORAL, HYDROXOCOBALAMIN_IM, HYDROXOCOBALAMIN_IM_NEURO

if TYPE_CHECKING:
    from ..assessment import Assessment

FAMILY = "b12-untreated"


def evaluate(a: Assessment, kb: KnowledgeView) -> list[Finding]:
    record, b12 = a.record, a.b12
    if a.cover.any or a.replacement_since_index:
        return []
    mma = a.mma_for_index
    if b12.status == "deficient":
        trigger = "U-DEF"
    elif b12.status == "indeterminate" and mma is not None and mma.supports_deficiency:
        trigger = "U-MMA"
    elif a.autoimmune_cause:
        trigger = "U-PA"
    elif b12.index is None:
        return _uninterpretable(a, kb)
    else:
        return []

    neuro, risk = a.neuro, a.risk
    pregnancy_check = b12.pregnant and b12.index_is_total and trigger == "U-DEF"
    if pregnancy_check and not neuro.any and mma is None:
        return []  # R1-P speaks: active B12 first (edge case 3)
    if neuro.any and trigger != "U-PA":
        indicator = Indicator.CRITICAL
    elif pregnancy_check and mma is not None and not mma.supports_deficiency:
        indicator = Indicator.INFO
    else:
        indicator = Indicator.WARNING

    evidence: list[EvidenceItem] = []
    if trigger == "U-PA":
        evidence.extend(problem_evidence(p, "irreversible cause: lifelong replacement") for p in a.autoimmune_cause)
    evidence.extend(b12.evidence(kb))
    if mma is not None:
        evidence.append(mma.evidence(kb))
    evidence.extend(a.hcy_evidence(kb))
    evidence.extend(cover_evidence(a.cover, kb, drafts_reviewed=False))
    evidence.extend(neuro.evidence())
    evidence.extend(risk.evidence())
    evidence.extend(lab_evidence(kb, r) for r in a.antibodies.uninterpretable)
    if b12.pregnant:
        evidence.extend(problem_evidence(p, "pregnancy") for p in active_problems(record, [PREGNANCY]))

    thresholds = list(b12.thresholds)
    thresholds.append(applied(kb, "window.b12-lookback-days", "B12 result look-back", "<="))
    thresholds.append(
        applied(kb, "window.cover-recent-days", "B12 replacement counts as treatment within", "<=")
    )
    if mma is not None:
        thresholds.extend(mma.thresholds)
    if a.homocysteine is not None and a.homocysteine.raised and a.homocysteine.threshold is not None:
        thresholds.append(a.homocysteine.threshold)

    citations = ["nice-ng239", "bsh-2014", "bnf-b12-dosing"]
    if risk.n2o_exposed:
        citations.append("paris-2023")

    caveats: list[str] = []
    if pregnancy_check:
        caveats.append("Pregnancy: total B12 falls physiologically; confirm with active B12 (NICE NG239).")
    if mma is not None and trigger == "U-MMA":
        caveats.extend(mma.renal.caveats(kb))
    caveats.extend(homocysteine_caveats(a.homocysteine, a.renal, kb))
    if b12.uninterpretable:
        caveats.append(UNINTERPRETABLE_B12_CAVEAT)

    return [
        Finding(
            family=FAMILY,
            trigger=trigger,
            indicator=indicator,
            summary=summary(_summary(a, trigger, mma, pregnancy_check)),
            rationale=_rationale(a, trigger, pregnancy_check),
            evidence=unique_evidence(evidence),
            thresholds=unique(thresholds),
            citations=unique(citations),
            actions=_actions(a, kb, pregnancy_check),
            caveats=tuple(caveats) + record_caveats(record, evidence),
        )
    ]


def _summary(a: Assessment, trigger: str, mma: MmaAssessment | None, pregnancy: bool) -> str:
    text = b12_summary_text(a.b12)
    untreated = "no B12 replacement counted" if a.cover.uncounted else "no B12 replacement on record"
    if trigger == "U-PA":
        return f"Pernicious anaemia coded with {untreated}: lifelong B12 replacement is needed"
    if trigger == "U-MMA":
        return f"Borderline B12 with raised MMA and {untreated}: treat as B12 deficiency"
    if a.neuro.any:
        return f"Deficient {text} with neurological symptoms and no treatment: start IM hydroxocobalamin"
    if pregnancy:
        return f"Low {text} in pregnancy, untreated: check active B12 and treat if confirmed"
    return f"Deficient {text} with {untreated}: start B12 treatment"


def _rationale(a: Assessment, trigger: str, pregnancy: bool) -> tuple[str, ...]:
    """Why (what the record shows) and what to do, in two or three sentences."""
    first = {
        "U-MMA": "A raised MMA with a borderline B12 confirms B12 deficiency.",
        "U-PA": "Pernicious anaemia is an irreversible cause of B12 deficiency: replacement is needed for life "
        "(NICE NG239), whatever the current B12 level.",
    }.get(trigger, "The latest valid B12 is in the deficient band (NICE NG239).")
    if a.cover.uncounted:
        first += " The B12 products on record do not count as current replacement (see why in the table)."
    else:
        first += " No B12 product is on record."
    if a.neuro.any:
        act = "With neurological symptoms, start hydroxocobalamin on the neurological regimen now (BSH 2014; BNF)."
    elif pregnancy:
        act = "In pregnancy total B12 falls physiologically: confirm with active B12, then treat."
    elif a.risk.n2o_exposed:
        act = "After nitrous oxide exposure treat with IM hydroxocobalamin (Paris 2023)."
    else:
        act = "Start B12 replacement: IM hydroxocobalamin, or oral cyanocobalamin as an option (BNF; NICE NG239)."
    return (first, act)


def _actions(a: Assessment, kb: KnowledgeView, pregnancy: bool) -> tuple[ProposedAction, ...]:
    record = a.record
    actions: list[ProposedAction] = []
    if pregnancy and not has_open_order(record, B12_ACTIVE):
        actions.append(ProposedAction("order-lab", B12_ACTIVE))
    if a.neuro.any:
        actions.append(ProposedAction("order-medication", HYDROXOCOBALAMIN_IM_NEURO))
    else:
        actions.append(ProposedAction("order-medication", HYDROXOCOBALAMIN_IM))
        if not a.risk.n2o_exposed:
            actions.append(ProposedAction("order-medication", CYANOCOBALAMIN_ORAL))
    known_cause = PERNICIOUS_ANAEMIA in a.risk.labels()
    if not known_cause and not a.antibodies.any_result and not has_open_order(record, IF_ANTIBODY):
        actions.append(ProposedAction("order-lab", IF_ANTIBODY))
    return tuple(a for a in actions if a.key in kb.orderables)


def _uninterpretable(a: Assessment, kb: KnowledgeView) -> list[Finding]:
    """U-UNINT: the only recent B12 results could not be read; say so rather than stay silent."""
    b12: B12Assessment = a.b12
    if b12.status != "uninterpretable" or a.folate.applies:
        return []
    record = a.record
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
