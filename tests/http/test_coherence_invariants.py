"""Coherence invariants (issue 12, clinical-reference 4.6 D1, D2, D10), property-based, through the HTTP API.

Charts are the fixture patients (fixtures/patients) or charts generated with the fixture builders
(V codes only, the same recipes as fixtures/make_fixtures.py: deficient/borderline/normal B12,
same-day results, red flags, pernicious anaemia, N2O, folate and B12 products with and without
dosage, MMA, homocysteine, intrinsic factor antibody), sent as real CDS Hooks requests
(fixtures/build_requests.py) to the real app. For every response:

1. never more than one B12-state card (topics urgent-neuro-review, b12-untreated, mma-testing,
   b12-testing) (D1);
2. no suggestion label twice, and oral and IM B12 never selectable together in one card (D1);
3. adding an unrelated order (an HbA1c ServiceRequest, an amlodipine or omeprazole MedicationRequest)
   to an order hook never changes the cards: it adds none, and takes none away; and unrelated orders
   alone get no card at all (D2);
4. the order of resources in a request (prefetch entries, draft orders, selections) never changes the
   cards (topics, indicators, suggestion labels) (D10: "never decides by their order in the request");
5. arbitration never lowers the highest indicator: the highest before `arbitrate` equals the highest
   after, and what it returns keeps D1's shape (cds_service.clinical.arbitration, provided by the
   rule rewrite; until it exists those tests fail on the import, by design).

Expectations come from the clinical reference, not from the rule code.
"""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fixtures import make_fixtures
from fixtures.build_requests import build_request
from fixtures.fhir_builders import PatientBuilder, b12_medication, draft_lab, draft_medication
from tests.support.project import EVALUATION_TIME
from tests.support.scenarios import load_patient, service_url

PV, OS, OSG = "patient-view", "order-select", "order-sign"
B12_STATE = {"urgent-neuro-review", "b12-untreated", "mma-testing", "b12-testing"}
DRUG_CARDS = {"folate-without-b12", "nitrous-oxide-risk"}
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
B12_PRODUCTS = {"5514", "11248"}  # hydroxocobalamin (IM), cyanocobalamin (oral)
FIXTURE_SLUGS = sorted(make_fixtures.build_fixtures().patients)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory):
    from cds_service import create_app

    db = tmp_path_factory.mktemp("coherence") / "t.db"
    app = create_app({"TESTING": True, "EVALUATION_TIME": EVALUATION_TIME, "DATABASE_URL": f"sqlite:///{db}"})
    return app.test_client()


# --- charts ----------------------------------------------------------------------------------------

CONDITIONS = ["paraesthesia", "paraesthesia-hand", "numbness", "numbness-foot", "peripheral-neuropathy", "ataxia",
              "falls", "muscle-weakness", "neurogenic-bladder", "memory-impairment", "scd", "pregnancy",
              "type-2-diabetes", "ckd-stage-4", "inhalant-abuse", "pernicious-anaemia", "pernicious-anaemia-icd"]
PRESCRIPTIONS = ["folic-acid-5mg-daily", "folic-acid-400ug-daily", "metformin-500mg-bd", "omeprazole-20mg-daily",
                 "hydroxocobalamin-1mg-im-3-monthly", "hydroxocobalamin-1mg-im-alternate-days",
                 "cyanocobalamin-50ug-oral-daily", "methotrexate-15mg-weekly", "amlodipine-5mg-daily"]
STATEMENTS = ["cyanocobalamin-1000mcg-tablet-no-dosage", "cyanocobalamin-unknown-strength",
              "folic-acid-0.4mg-tablet-no-dosage", "folic-acid-5mg-tablet-no-dosage",
              "cyanocobalamin-1000ug-oral-daily", "folic-acid-cyanocobalamin-combination", "levomefolate-15mg-daily",
              "nitrous-oxide-recreational"]
# Draft orders an order hook may review: subject orders (folate, N2O, B12/MMA tests) and others.
DRAFTS = {
    "folic-acid": lambda p, n: draft_medication(p, n, "folic-acid-5mg-daily"),
    "folic-acid-0.4mg": lambda p, n: draft_medication(p, n, "folic-acid-0.4mg-tablet-no-dosage"),
    "nitrous-oxide": lambda p, n: draft_medication(p, n, "nitrous-oxide-analgesia"),
    "b12-test": lambda p, n: draft_lab(p, n, "b12-mass"),
    "active-b12-test": lambda p, n: draft_lab(p, n, "b12-active"),
    "mma-test": lambda p, n: draft_lab(p, n, "mma"),
    "cyanocobalamin-oral": lambda p, n: draft_medication(p, n, "cyanocobalamin-1000ug-oral-daily"),
    "hydroxocobalamin": lambda p, n: draft_medication(p, n, "hydroxocobalamin-1mg-im-3-monthly"),
    "omeprazole": lambda p, n: draft_medication(p, n, "omeprazole-20mg-daily"),
    "amlodipine": lambda p, n: draft_medication(p, n, "amlodipine-5mg-daily"),
    "hba1c": lambda p, n: draft_lab(p, n, "hba1c"),
}
UNRELATED = {  # orders no family is about (4.6 D2): not folate, not N2O, not a B12/MMA/active-B12 test
    "hba1c": lambda p, n: draft_lab(p, n, "hba1c"),
    "amlodipine": lambda p, n: draft_medication(p, n, "amlodipine-5mg-daily"),
    "omeprazole": lambda p, n: draft_medication(p, n, "omeprazole-20mg-daily"),
}


class Chart:
    """A bundle and the PatientBuilder-like handle draft builders need (slug, ref)."""

    def __init__(self, bundle: dict[str, Any]) -> None:
        self.bundle = bundle
        (patient,) = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"]
        self.slug = patient["id"]
        self.ref = {"reference": f"Patient/{self.slug}"}


@st.composite
def generated_charts(draw) -> Chart:
    p = PatientBuilder("prop-chart", "Coherent", "Chart", draw(st.sampled_from(["female", "male"])),
                       draw(st.integers(min_value=18, max_value=90)))
    for _ in range(draw(st.integers(min_value=0, max_value=2))):
        days = draw(st.integers(min_value=1, max_value=400))
        p.b12(draw(st.sampled_from([90, 120, 132, 133, 180, 200, 258, 259, 300, 450])), "pmol/L", days)
        if draw(st.booleans()):  # a second result on the same day (D10), same time or later
            p.b12(draw(st.sampled_from([110, 200, 300, 400])), "pmol/L", days,
                  at=draw(st.sampled_from([(8, 30), (16, 0)])))
    if draw(st.booleans()):
        p.active_b12(draw(st.sampled_from([20, 50, 80])), draw(st.integers(min_value=1, max_value=200)))
    for key in draw(st.lists(st.sampled_from(CONDITIONS), max_size=3, unique=True)):
        p.condition(key, draw(st.integers(min_value=5, max_value=1500)))
    for regimen in draw(st.lists(st.sampled_from(PRESCRIPTIONS), max_size=2, unique=True)):
        p.prescription(regimen, draw(st.integers(min_value=5, max_value=900)))
    for regimen in draw(st.lists(st.sampled_from(STATEMENTS), max_size=2, unique=True)):
        p.taking(regimen, draw(st.integers(min_value=5, max_value=300)), category="patientspecified")
    if draw(st.booleans()):
        p.taking("cyanocobalamin-1000mcg-tablet-daily-no-dose", draw(st.integers(min_value=5, max_value=300)),
                 medication=b12_medication("prop-chart-med", "Vitamin B12 tablet", "cyanocobalamin",
                                           draw(st.sampled_from([(1000, "ug"), (50, "ug"), None]))))
    if draw(st.booleans()):
        p.lab("mma", draw(st.sampled_from([0.2, 0.43, 0.9])), "umol/L", draw(st.integers(min_value=1, max_value=300)))
    if draw(st.booleans()):
        p.lab("homocysteine", draw(st.sampled_from([9, 18, 30])), "umol/L",
              draw(st.integers(min_value=1, max_value=300)))
    if draw(st.booleans()):
        p.lab("if-antibody", 3.4, "[arb'U]/mL", draw(st.integers(min_value=1, max_value=300)),
              reference_high=draw(st.sampled_from([None, 1.5, 5.0])))
    if draw(st.booleans()):
        p.lab("egfr", draw(st.sampled_from([25, 45, 90])), "mL/min/{1.73_m2}", 20)
    return Chart(p.bundle())


def fixture_charts() -> st.SearchStrategy[Chart]:
    return st.sampled_from(FIXTURE_SLUGS).map(lambda slug: Chart(load_patient(slug)))


def charts() -> st.SearchStrategy[Chart]:
    return st.one_of(fixture_charts(), generated_charts())


@st.composite
def requests(draw, hooks: tuple[str, ...] = (PV, OS, OSG)) -> dict[str, Any]:
    """A CDS Hooks request: a chart, a hook, and for order hooks draft orders and selections."""
    chart = draw(charts())
    hook = draw(st.sampled_from(hooks))
    if hook == PV:
        return build_request(chart.bundle, hook)
    kinds = draw(st.lists(st.sampled_from(sorted(DRAFTS)), min_size=1, max_size=3, unique=True))
    drafts = [DRAFTS[kind](chart, n) for n, kind in enumerate(kinds, start=1)]
    selections = None
    if hook == OS:
        chosen = draw(st.lists(st.sampled_from(range(len(drafts))), min_size=1, unique=True))
        selections = [f"{drafts[i]['resourceType']}/{drafts[i]['id']}" for i in sorted(chosen)]
    return build_request(chart.bundle, hook, draft_orders=drafts, selections=selections)


# --- answers ---------------------------------------------------------------------------------------


def post(client, request: dict[str, Any]) -> tuple[int, list[dict[str, Any]]]:
    response = client.post(service_url(request["hook"]), json=request)
    assert response.status_code in (200, 412), response.get_data(as_text=True)[:1000]
    return response.status_code, (response.get_json() or {}).get("cards", []) if response.status_code == 200 else []


def topic(card: dict[str, Any]) -> str:
    return card["source"]["topic"]["code"]


def labels(cards: list[dict[str, Any]]) -> list[str]:
    return [s.get("label", "") for c in cards for s in c.get("suggestions", [])]


def answer(status: int, cards: list[dict[str, Any]]) -> tuple[int, list[tuple[str, str]], list[str]]:
    """What must not change: the status, the cards' topics and indicators, the suggestion labels."""
    return status, sorted((topic(c), c["indicator"]) for c in cards), sorted(labels(cards))


def describe(cards: list[dict[str, Any]]) -> str:
    return "\n".join(f"  {topic(c)} {c['indicator']}: {c.get('summary', '')}" for c in cards) or "  (no cards)"


def chart_summary(request: dict[str, Any]) -> str:
    """The request in a few lines, so a falsifying example can be read without re-running it."""
    lines = [f"patient {request['context']['patientId']}, hook {request['hook']}"]
    for key, value in request["prefetch"].items():
        for entry in (value or {}).get("entry", []) if isinstance(value, dict) else []:
            r = entry["resource"]
            concept = r.get("code") or r.get("medicationCodeableConcept") or {}
            what = concept.get("text") or (r.get("medicationReference") or {}).get("display", "")
            q = r.get("valueQuantity") or {}
            when = r.get("effectiveDateTime") or r.get("onsetDateTime") or r.get("authoredOn") or \
                (r.get("effectivePeriod") or {}).get("start", "")
            value_text = f" {q.get('comparator', '')}{q.get('value')} {q.get('unit', '')}" if q else ""
            lines.append(f"  {key}: {r['resourceType']}/{r['id']} {what}{value_text} {when}")
    for entry in request["context"].get("draftOrders", {}).get("entry", []):
        r = entry["resource"]
        concept = r.get("code") or r.get("medicationCodeableConcept") or {}
        lines.append(f"  draft: {r['resourceType']}/{r['id']} {concept.get('text', '')}")
    if "selections" in request["context"]:
        lines.append(f"  selections: {request['context']['selections']}")
    return "\n".join(lines)


def b12_products(suggestion: dict[str, Any]) -> set[str]:
    found = set()
    for action in suggestion.get("actions", []):
        resource = action.get("resource") or {}
        if action.get("type") == "create" and resource.get("resourceType") == "MedicationRequest":
            for coding in (resource.get("medicationCodeableConcept") or {}).get("coding", []):
                if coding.get("system") == RXNORM and coding.get("code") in B12_PRODUCTS:
                    found.add(coding["code"])
    return found


# --- 1, 2: one answer per problem ---------------------------------------------------------------------


@given(request=requests())
@SETTINGS
def test_never_more_than_one_b12_state_card(client, request):
    _, cards = post(client, request)
    state = [topic(c) for c in cards if topic(c) in B12_STATE]
    assert len(state) <= 1, (
        f"more than one B12-state card (4.6 D1):\n{describe(cards)}\n{chart_summary(request)}")


@given(request=requests())
@SETTINGS
def test_no_suggestion_label_twice_and_no_oral_with_im_b12(client, request):
    _, cards = post(client, request)
    repeated = sorted(label for label, n in Counter(labels(cards)).items() if n > 1)
    assert not repeated, (
        f"offered twice in one response (4.6 D1): {repeated}\n{describe(cards)}\n{chart_summary(request)}")
    for card in cards:
        per_suggestion = [b12_products(s) for s in card.get("suggestions", [])]
        assert all(len(products) <= 1 for products in per_suggestion), (
            f"{topic(card)}: one suggestion creates both oral and IM B12 (4.6 D1)\n{chart_summary(request)}")
        offered = set().union(set(), *per_suggestion)
        if len(offered) > 1:
            assert card.get("selectionBehavior") == "at-most-one", (
                f"{topic(card)}: oral and IM B12 selectable together (4.6 D1): {labels([card])}\n"
                f"{chart_summary(request)}")


# --- 3: an unrelated order never adds a card -------------------------------------------------------


@given(request=requests(hooks=(OS, OSG)), extra=st.sampled_from(sorted(UNRELATED)), selected=st.booleans())
@SETTINGS
def test_adding_an_unrelated_order_never_changes_the_cards(client, request, extra, selected):
    before = answer(*post(client, request))
    with_extra = copy.deepcopy(request)
    chart = Chart({"entry": [{"resource": with_extra["prefetch"]["patient"]}]})
    order = UNRELATED[extra](chart, 99)
    with_extra["context"]["draftOrders"]["entry"].append({"fullUrl": f"urn:uuid:{order['id']}", "resource": order})
    if request["hook"] == OS and selected:
        with_extra["context"]["selections"].append(f"{order['resourceType']}/{order['id']}")
    status, cards = post(client, with_extra)
    assert answer(status, cards) == before, (
        f"{request['hook']}: adding an unrelated {extra} order changed the answer (4.6 D2)\n"
        f"before: {before}\nafter:\n{describe(cards)}\n{chart_summary(with_extra)}")


@given(chart=charts(), hook=st.sampled_from([OS, OSG]),
       kinds=st.lists(st.sampled_from(sorted(UNRELATED)), min_size=1, max_size=3, unique=True))
@SETTINGS
def test_unrelated_orders_alone_get_no_card(client, chart, hook, kinds):
    """D2 directly: with no folate, N2O or B12/MMA-test order under review, an order hook is silent, whatever
    the chart says (patient-view already said it)."""
    drafts = [UNRELATED[kind](chart, n) for n, kind in enumerate(kinds, start=1)]
    request = build_request(chart.bundle, hook, draft_orders=drafts)
    status, cards = post(client, request)
    assert (status, cards) == (200, []), (
        f"unrelated orders {kinds} answered (4.6 D2):\n{describe(cards)}\n{chart_summary(request)}")


def test_an_unrelated_order_alone_is_silent_even_with_a_red_flag(client):
    """The deterministic core of the two above (issue 12: deficient B12 + ataxia, HbA1c or amlodipine)."""
    chart = Chart(load_patient("d1-deficient-ataxia"))
    for hook in (OS, OSG):
        for extra in sorted(UNRELATED):
            status, cards = post(client, build_request(chart.bundle, hook, draft_orders=[UNRELATED[extra](chart, 1)]))
            assert (status, cards) == (200, []), f"{hook} {extra}:\n{describe(cards)}"


# --- 4: the order of resources never changes the cards ---------------------------------------------


def shuffled(request: dict[str, Any], rnd) -> dict[str, Any]:
    out = copy.deepcopy(request)
    for value in out["prefetch"].values():
        if isinstance(value, dict) and value.get("resourceType") == "Bundle" and value.get("entry"):
            rnd.shuffle(value["entry"])
    if "draftOrders" in out["context"]:
        rnd.shuffle(out["context"]["draftOrders"]["entry"])
    if "selections" in out["context"]:
        rnd.shuffle(out["context"]["selections"])
    return out


@given(request=requests(), rnd=st.randoms(use_true_random=False))
@SETTINGS
def test_the_order_of_resources_never_changes_the_cards(client, request, rnd):
    before = answer(*post(client, request))
    reordered = shuffled(request, rnd)
    status, cards = post(client, reordered)
    assert answer(status, cards) == before, (
        f"{request['hook']}: reordering the request changed the answer (4.6 D10)\nbefore: {before}\n"
        f"after:\n{describe(cards)}\nreordered:\n{chart_summary(reordered)}")


@pytest.mark.parametrize("slug", ["d10-same-day-normal-first", "d10-same-day-borderline-first"])
def test_same_day_results_in_either_order_give_the_same_cards(client, slug):
    """The deterministic core of property 4: the D10 fixture patient with its two B12s swapped."""
    request = build_request(load_patient(slug), PV)
    swapped = copy.deepcopy(request)
    swapped["prefetch"]["labs"]["entry"].reverse()
    assert answer(*post(client, swapped)) == answer(*post(client, request))


# --- guard: the generator reaches the situations the properties are about --------------------------


def test_the_generator_reaches_multi_card_and_order_hook_answers(client):
    """Guard against vacuous properties: generated requests must often produce B12-state cards, B12-state
    cards beside drug cards, order-hook cards, and responses whose D1 checks have something to check."""
    seen: Counter[str] = Counter()

    @given(request=requests())
    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def collect(request):
        _, cards = post(client, request)
        topics = {topic(c) for c in cards}
        if topics & B12_STATE:
            seen["b12-state"] += 1
        if topics & B12_STATE and topics & DRUG_CARDS:
            seen["state+drug"] += 1
        if request["hook"] != PV and cards:
            seen["order-hook card"] += 1
        if len(labels(cards)) >= 3:
            seen["3+ suggestions"] += 1

    collect()
    assert all(seen[k] >= 5 for k in ("b12-state", "state+drug", "order-hook card", "3+ suggestions")), seen


# --- 5: arbitration ----------------------------------------------------------------------------------

ACTION_KEYS = [("order-lab", "b12-total"), ("order-lab", "b12-active"), ("order-lab", "mma"),
               ("order-lab", "homocysteine"), ("order-lab", "folate-serum"), ("order-lab", "fbc"),
               ("order-lab", "intrinsic-factor-antibody"), ("order-medication", "hydroxocobalamin-im"),
               ("order-medication", "hydroxocobalamin-im-neuro"), ("order-medication", "cyanocobalamin-oral"),
               ("referral", "neurology-urgent"), ("advice", "draw-before-treating")]
FAMILIES = sorted(B12_STATE | DRUG_CARDS)


@st.composite
def finding_sets(draw) -> list[Any]:
    """Findings as the families could produce them before arbitration: at most one per family."""
    from cds_service.clinical.findings import EvidenceItem, Finding, Indicator, ProposedAction

    families = draw(st.lists(st.sampled_from(FAMILIES), min_size=0, max_size=len(FAMILIES), unique=True))
    findings = []
    for family in families:
        evidence = tuple(
            EvidenceItem(kind="lab", label=label, as_received=value, date="2026-10-01")
            for label, value in draw(st.lists(st.sampled_from([
                ("Serum vitamin B12 (total)", "180 pmol/L"), ("Plasma total homocysteine", "28 umol/L"),
                ("Serum methylmalonic acid (MMA)", "0.9 umol/L"), ("Intrinsic factor antibody", "3.4 [arb'U]/mL")]),
                max_size=3, unique=True)))
        actions = tuple(ProposedAction(kind=kind, key=key)  # type: ignore[arg-type]
                        for kind, key in draw(st.lists(st.sampled_from(ACTION_KEYS), max_size=4, unique=True)))
        findings.append(Finding(
            family=family, trigger=f"{family}-T", indicator=draw(st.sampled_from(list(Indicator))),
            summary=f"{family} finding", rationale=(f"{family} rationale",), evidence=evidence, actions=actions,
            subject_refs=("MedicationRequest/draft1",) if family in DRUG_CARDS else ()))
    return findings


def highest(findings: list[Any]) -> int:
    return max((f.indicator.rank for f in findings), default=-1)


@given(findings=finding_sets())
@SETTINGS
def test_arbitration_never_lowers_the_highest_indicator(findings):
    from cds_service.clinical.arbitration import arbitrate

    after = arbitrate(list(findings))
    assert highest(after) == highest(findings), (
        [(f.family, f.indicator.value) for f in findings], [(f.family, f.indicator.value) for f in after])


@given(findings=finding_sets())
@SETTINGS
def test_arbitration_leaves_one_b12_state_finding_and_keeps_the_drug_findings(findings):
    """D1 on the arbitration step itself: one B12-state finding (the highest-precedence family present),
    drug findings kept, no action offered twice."""
    from cds_service.clinical.arbitration import arbitrate

    after = arbitrate(list(findings))
    precedence = ["urgent-neuro-review", "b12-untreated", "mma-testing", "b12-testing"]
    state_before = [f.family for f in findings if f.family in B12_STATE]
    state_after = [f.family for f in after if f.family in B12_STATE]
    if state_before:
        assert state_after == [min(state_before, key=precedence.index)], (state_before, state_after)
    else:
        assert state_after == []
    assert sorted(f.family for f in after if f.family in DRUG_CARDS) == \
        sorted(f.family for f in findings if f.family in DRUG_CARDS)
    keys = [(a.kind, a.key) for f in after for a in f.actions if a.kind != "advice"]
    assert len(keys) == len(set(keys)), f"an action offered twice after arbitration: {keys}"
