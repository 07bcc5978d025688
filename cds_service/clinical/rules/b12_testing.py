"""`b12-testing` (clinical-reference 4.6 D8): the first step, a B12 test where none exists.

The seeds' central message is that unexplained, slowly worsening numbness or tingling "deserves a B12
check, not a wait-and-see". R1 excludes charts with no B12 ("first-line test is B12, not MMA"); this
family fills that hole, on patient-view only, when there is no valid total or active B12 in the
look-back, no open B12 order and no B12 replacement (a level drawn on treatment is uninformative):

- B-SYM-RISK: an active B12-set neuro symptom (onset within window.neuro-recent-days, or a current
  sensory finding such as polyneuropathy or paraesthesia on the problem list, any date) and a
  non-age risk factor -> warning (MHRA Drug Safety Update June 2022: test B12 in patients on
  metformin with symptoms such as peripheral neuropathy; ADA Standards of Care);
- B-SYM: such a symptom alone (age may be the only risk) -> info (AAN 2009, England et al.: in
  distal symmetric polyneuropathy the highest-yield screening tests include serum B12 with
  metabolites, Level C);
- B-MCV: macrocytosis (MCV above mcv.macrocytosis-above) or macrocytic anaemia alone -> info
  (BSH 2014: test B12 and folate).

It suggests total B12, or active B12 in pregnancy (NICE NG239 prefers it), and MMA too where the
site's laboratory offers B12 with metabolites (policy.lab-offers-b12-with-metabolites). It is the
lowest B12-state card in arbitration: any other B12-state card speaks instead (nitrous oxide without
a B12 is already R1 trigger C). A risk factor without a symptom or a sign says nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...knowledge.concepts import B12_ACTIVE, B12_TOTAL, FOLATE_SERUM, METFORMIN, MMA, NEURO_SENSORY, PREGNANCY
from ..findings import EvidenceItem, Finding, Indicator, ProposedAction
from .common import (
    KnowledgeView,
    active_problems,
    applied,
    has_open_order,
    problem_evidence,
    record_caveats,
    sentence_case,
    short,
    summary,
    unique,
    unique_evidence,
)
from .cover import cover_evidence
from .mma import homocysteine_caveats
from .neuro import neuro_thresholds

if TYPE_CHECKING:
    from ..assessment import Assessment
    from ..record import Problem

FAMILY = "b12-testing"


def testing_symptoms(a: Assessment) -> tuple[Problem, ...]:
    """Neuro symptoms that call for a first B12: recent ones, and current sensory ones of any date."""
    current_sensory = tuple(p for p in a.neuro.symptoms if NEURO_SENSORY in p.classes)
    return tuple(dict.fromkeys(a.neuro.recent_symptoms() + current_sensory))


def evaluate(a: Assessment, kb: KnowledgeView) -> list[Finding]:
    record, b12 = a.record, a.b12
    if a.order_hook or b12.valid or b12.status == "invalid":
        return []
    if a.cover.any or has_open_order(record, B12_TOTAL) or has_open_order(record, B12_ACTIVE):
        return []
    symptoms = testing_symptoms(a)
    risks = [f for f in a.risk.factors if not f.soft]
    if symptoms and risks:
        trigger, indicator = "B-SYM-RISK", Indicator.WARNING
    elif symptoms:
        trigger, indicator = "B-SYM", Indicator.INFO
    elif a.haematology.macrocytosis:
        trigger, indicator = "B-MCV", Indicator.INFO
    else:
        return []

    test = B12_ACTIVE if a.pregnant else B12_TOTAL
    evidence: list[EvidenceItem] = list(b12.evidence(kb))
    evidence.extend(a.neuro.evidence(symptoms))
    evidence.extend(f.evidence for f in a.risk.factors)
    if trigger == "B-MCV":
        evidence.extend(a.haematology.evidence)
    evidence.extend(a.hcy_evidence(kb))  # 4.6 D6
    raised_mma = a.mma_latest is not None and a.mma_latest.supports_deficiency
    if a.mma_latest is not None and raised_mma:
        evidence.append(a.mma_latest.evidence(kb))
    if a.cover.products:
        evidence.extend(cover_evidence(a.cover, kb, drafts_reviewed=False))
    if a.pregnant:
        evidence.extend(problem_evidence(p, "pregnancy") for p in active_problems(record, [PREGNANCY]))

    thresholds = [applied(kb, "window.b12-lookback-days", "B12 result look-back", "<=")]
    if trigger != "B-MCV":
        thresholds.extend(neuro_thresholds(kb, recent=True))
    else:
        thresholds.extend(a.haematology.thresholds)
    thresholds.extend(a.risk.thresholds)
    with_metabolites = kb.value("policy.lab-offers-b12-with-metabolites") >= 1
    if with_metabolites:
        thresholds.append(applied(kb, "policy.lab-offers-b12-with-metabolites", "Laboratory offers B12 with MMA"))

    citations = ["nice-ng239"]
    if trigger == "B-SYM-RISK" and any(f.label == METFORMIN for f in risks):
        citations.append("mhra-metformin-2022")
    citations.append("bsh-2014" if trigger == "B-MCV" else "aan-2009")

    keys = [test]
    if with_metabolites and trigger != "B-MCV":
        keys.append(MMA)
    if trigger == "B-MCV":
        keys.append(FOLATE_SERUM)
    actions = tuple(
        ProposedAction("order-lab", key) for key in keys if key in kb.orderables and not has_open_order(record, key)
    )
    caveats: list[str] = list(homocysteine_caveats(a.homocysteine, a.renal, kb))
    if raised_mma:
        caveats.append("MMA is already raised: with symptoms, treat as possible B12 deficiency without waiting.")
    if a.pregnant:
        caveats.append("Pregnancy: total B12 falls physiologically, so active B12 is suggested (NICE NG239).")
    return [
        Finding(
            family=FAMILY,
            trigger=trigger,
            indicator=indicator,
            summary=summary(_summary(a, trigger, symptoms, [f.evidence.label for f in risks])),
            rationale=_rationale(trigger, with_metabolites, a.pregnant, "mhra-metformin-2022" in citations),
            evidence=unique_evidence(evidence),
            thresholds=unique(thresholds),
            citations=unique(citations),
            actions=actions,
            caveats=tuple(caveats) + record_caveats(record, evidence),
        )
    ]


def _summary(a: Assessment, trigger: str, symptoms: tuple[Problem, ...], risks: list[str]) -> str:
    test = "active B12" if a.pregnant else "B12"
    # read from the record: an old result exists but is outside the look-back, or there is none at all
    none = "no recent B12" if a.b12.stale or a.b12.uninterpretable else "no B12 result"
    if trigger == "B-MCV":
        return f"Macrocytosis and {none}: check {test} and folate"
    symptom = short(symptoms[0].code.display or "Neurological symptom")
    if trigger == "B-SYM-RISK":
        return f"{symptom} with {sentence_case(short(risks[0]))} and {none}: check {test}"
    return f"{symptom} and {none}: check {test}"


def _rationale(trigger: str, with_metabolites: bool, pregnant: bool, metformin: bool) -> tuple[str, ...]:
    lines = []
    if trigger == "B-SYM-RISK":
        lines.append("Numbness, tingling or neuropathy with a B12 risk factor deserves a B12 check, not a "
                     "wait-and-see (NICE NG239: test with a symptom and a risk factor).")
        if metformin:
            lines.append("The MHRA (2022) advises testing B12 in people on metformin with symptoms such as "
                         "peripheral neuropathy.")
    elif trigger == "B-SYM":
        lines.append("In polyneuropathy, B12 (with its metabolites) is among the highest-yield tests (AAN 2009).")
    else:
        lines.append("Macrocytosis can be the first sign of B12 or folate deficiency; test both (BSH 2014).")
    lines.append("B12 nerve damage can occur with a normal blood count and may become permanent if missed.")
    if with_metabolites and trigger != "B-MCV":
        lines.append("The laboratory offers B12 with MMA, which confirms tissue deficiency if B12 is borderline.")
    if pregnant:
        lines.append("In pregnancy active B12 is the preferred first test.")
    return tuple(lines)
