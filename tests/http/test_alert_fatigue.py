"""Alert fatigue: stable identity, suppression after override, shadow mode, report, retention.

Every test that touches storage runs twice: on SQLite and on a real PostgreSQL server.
"""

from __future__ import annotations

import copy
import json
import multiprocessing
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from cds_service import create_app
from cds_service.alerting import (
    IdentifiedFinding,
    PriorOverride,
    SuppressionPolicy,
    decide,
)
from cds_service.cards.identity import IDENTITY_EXTENSION
from cds_service.clinical.findings import Finding, Indicator
from cds_service.clinical.rules import FAMILIES
from cds_service.reporting import build_report, report_csv
from cds_service.startup import StartupError
from cds_service.storage.cards_store import purge_before
from cds_service.storage.feedback_store import count_feedback
from fixtures.build_requests import load_scenarios, request_for_scenario
from tests.support.fhir import deficient_b12, patient_view_request, searchset
from tests.support.project import EVALUATION_TIME, PROJECT

NOW = datetime.fromisoformat(EVALUATION_TIME.replace("Z", "+00:00"))
MMA_CASE = next(s for s in load_scenarios() if s["patient"] == "r1-indeterminate-neuropathy"
                and s["hook"] == "patient-view")
URL = "/cds-services/b12-patient-view"
REASON_SYSTEM = "http://terminology.hl7.org/CodeSystem/non-adherence-reason-codes"


def app_for(database_url: str, **extra):
    return create_app({"TESTING": True, "EVALUATION_TIME": EVALUATION_TIME, "DATABASE_URL": database_url, **extra})


def call(client, request=None) -> list[dict]:
    body = copy.deepcopy(request or request_for_scenario(MMA_CASE))
    response = client.post(URL, data=json.dumps(body), content_type="application/json")
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["cards"]


def identity(card: dict) -> str:
    return card["extension"][IDENTITY_EXTENSION]["identity"]


def override(client, card: dict, code: str = "patient-ineligible", when: datetime = NOW) -> None:
    item = {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": when.isoformat(),
            "overrideReason": {"reason": {"system": REASON_SYSTEM, "code": code}}}
    response = client.post(f"{URL}/feedback", data=json.dumps({"feedback": [item]}), content_type="application/json")
    assert response.status_code == 200


def with_b12(request: dict, value: float) -> dict:
    body = copy.deepcopy(request)
    for entry in body["prefetch"]["labs"]["entry"]:
        resource = entry["resource"]
        if resource["code"]["coding"][0]["code"] in ("2132-9", "14685-2"):
            resource["valueQuantity"]["value"] = value
    return body


def test_identical_evidence_gives_the_same_identity_across_calls(database_url):
    client = app_for(database_url).test_client()
    first, second = call(client), call(client)
    assert [c["source"]["topic"]["code"] for c in first] == ["mma-testing"]
    assert identity(first[0]) == identity(second[0])
    assert first[0]["uuid"] != second[0]["uuid"]  # each card instance keeps its own uuid for feedback


def test_an_overridden_card_is_suppressed_and_returns_when_evidence_changes(database_url):
    app = app_for(database_url)
    client = app.test_client()
    card = call(client)[0]
    override(client, card)
    assert call(client) == []  # same evidence, overridden today: suppressed
    changed = call(client, with_b12(request_for_scenario(MMA_CASE), 250))  # a different B12 result
    assert [c["source"]["topic"]["code"] for c in changed] == ["mma-testing"]
    assert identity(changed[0]) != identity(card)
    report = build_report(app.extensions["b12_cds"].db)
    row = next(r for r in report.rows if r.family == "mma-testing")
    assert (row.shown, row.suppressed, row.overridden) == (2, 1, 1)
    assert row.override_reasons == {"patient-ineligible": 1}


def test_suppression_expires_after_the_family_window(database_url):
    client = app_for(database_url, SUPPRESSION_DAYS="mma-testing=3").test_client()
    card = call(client)[0]
    override(client, card, when=NOW - timedelta(days=4))
    assert len(call(client)) == 1


def test_zero_days_never_suppresses(database_url):
    client = app_for(database_url, SUPPRESSION_DAYS="mma-testing=0").test_client()
    override(client, call(client)[0])
    assert len(call(client)) == 1


def test_shadow_mode_returns_no_cards_but_records_them(database_url):
    app = app_for(database_url, SHADOW_SERVICES="b12-patient-view")
    assert call(app.test_client()) == []
    report = build_report(app.extensions["b12_cds"].db)
    assert [(r.family, r.shadow, r.shown) for r in report.rows] == [("mma-testing", 1, 0)]


def test_report_counts_match_the_feedback_sent(database_url):
    app = app_for(database_url, SUPPRESSION_DAYS="mma-testing=0")
    client = app.test_client()
    cards = [call(client)[0] for _ in range(5)]
    accepted = cards[:2]
    for card in accepted:
        item = {"card": card["uuid"], "outcome": "accepted", "outcomeTimestamp": NOW.isoformat(),
                "acceptedSuggestions": [{"id": card["suggestions"][0]["uuid"]}]}
        client.post(f"{URL}/feedback", data=json.dumps({"feedback": [item, item]}), content_type="application/json")
    override(client, cards[2], "patient-ineligible")
    override(client, cards[3], "action-completed")
    override(client, cards[3], "action-completed")  # a duplicate: counted once
    override(client, cards[4], "patient-ineligible")
    row = next(r for r in build_report(app.extensions["b12_cds"].db).rows if r.family == "mma-testing")
    assert (row.shown, row.accepted, row.overridden) == (5, 2, 3)
    assert row.override_reasons == {"action-completed": 1, "patient-ineligible": 2}
    csv_text = report_csv(build_report(app.extensions["b12_cds"].db))
    assert csv_text.splitlines()[0].startswith("family,hook,shown")
    assert "mma-testing,patient-view,5,0,0,2,3" in csv_text


def test_purge_removes_only_records_older_than_retention(database_url):
    app = app_for(database_url)
    client = app.test_client()
    override(client, call(client)[0])
    db = app.extensions["b12_cds"].db
    assert purge_before(db, NOW - timedelta(days=1)) == {"issued_cards": 0, "feedback": 0}
    assert purge_before(db, datetime.now(UTC) + timedelta(days=1)) == {"issued_cards": 1, "feedback": 1}


def _send_feedback(args: tuple[str, int, int]) -> int:
    database_url, worker, count = args
    client = app_for(database_url).test_client()
    items = [{"card": f"w{worker}-c{i}", "outcome": "overridden", "outcomeTimestamp": NOW.isoformat()}
             for i in range(count)]
    sent = 0
    for item in items:
        response = client.post(f"{URL}/feedback", data=json.dumps({"feedback": [item]}),
                               content_type="application/json")
        assert response.status_code == 200
        sent += 1
    return sent


def test_concurrent_feedback_from_several_processes_loses_nothing(database_url):
    app = app_for(database_url)  # migrate once before the workers start, as gunicorn's master does
    workers, per_worker = 4, 40
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        sent = sum(pool.map(_send_feedback, [(database_url, w, per_worker) for w in range(workers)]))
    assert sent == workers * per_worker
    assert count_feedback(app.extensions["b12_cds"].db, "b12-patient-view") == sent


def post(client, body, url=URL):
    return client.post(url, data=json.dumps(body), content_type="application/json")


def _override(client, card_uuid, when, url=f"{URL}/feedback"):
    item = {"card": card_uuid, "outcome": "overridden", "outcomeTimestamp": when}
    return client.post(url, data=json.dumps({"feedback": [item]}), content_type="application/json")


# A regression found in review: this test failed before its fix.
def test_a_future_override_timestamp_cannot_suppress_for_ever(app_config):
    body = patient_view_request(labs=searchset(deficient_b12()))
    early = create_app({**app_config, "SUPPRESSION_DAYS": "b12-untreated=14"}).test_client()
    card = next(c for c in post(early, body).get_json()["cards"] if c["source"]["topic"]["code"] == "b12-untreated")
    assert _override(early, card["uuid"], "2099-01-01T00:00:00Z").status_code == 200
    # the override counts as received now (the wall clock), so 15 days after it the card is back
    later = (datetime.now().astimezone() + timedelta(days=15)).isoformat()
    late = create_app({**app_config, "EVALUATION_TIME": later, "SUPPRESSION_DAYS": "b12-untreated=14"})
    cards = post(late.test_client(), body).get_json()["cards"]
    assert any(c["extension"][IDENTITY_EXTENSION]["identity"] == card["extension"][IDENTITY_EXTENSION]["identity"]
               for c in cards)


# A regression found in review: this test failed before its fix.
def test_feedback_sent_to_another_service_does_not_suppress_this_ones_cards(client):
    body = patient_view_request(labs=searchset(deficient_b12()))
    card = post(client, body).get_json()["cards"][0]
    assert _override(client, card["uuid"], EVALUATION_TIME, "/cds-services/b12-order-sign/feedback").status_code == 200
    assert len(post(client, body).get_json()["cards"]) >= 1


# --- pure policy ---------------------------------------------------------------------------------

def finding(indicator: Indicator, family: str = "folate-without-b12") -> Finding:
    return Finding(family=family, trigger="R2", indicator=indicator, summary="s", rationale=("r",), evidence=())


def test_critical_is_never_suppressed_by_the_override_of_a_lower_indicator():
    policy = SuppressionPolicy.parse("", list(FAMILIES))
    warning_override = {"id": PriorOverride(max_rank=Indicator.WARNING.rank, last_at=NOW)}
    critical = IdentifiedFinding(finding(Indicator.CRITICAL), "id", "h")
    warning = IdentifiedFinding(finding(Indicator.WARNING), "id", "h")
    assert decide([critical], warning_override, policy, NOW)[0].disposition == "shown"
    assert decide([warning], warning_override, policy, NOW)[0].disposition == "suppressed"


def test_urgent_neuro_review_is_never_suppressed_by_default():
    policy = SuppressionPolicy.parse("", list(FAMILIES))
    item = IdentifiedFinding(finding(Indicator.CRITICAL, "urgent-neuro-review"), "id", "h")
    prior = {"id": PriorOverride(max_rank=Indicator.CRITICAL.rank, last_at=NOW)}
    assert decide([item], prior, policy, NOW)[0].disposition == "shown"


@pytest.mark.parametrize("text", ["nope=3", "mma-testing=x", "mma-testing=999"])
def test_bad_suppression_policy_is_refused(text):
    with pytest.raises(StartupError, match="CDS_SUPPRESSION_DAYS"):  # PolicyError or ConfigError
        SuppressionPolicy.parse(text, list(FAMILIES))


def test_report_and_purge_commands_run(tmp_path):
    env = {"CDS_DATABASE_URL": f"sqlite:///{tmp_path}/r.db", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-m", "cds_service", "report", "--since", "2026-01-01"], env=env,
                         capture_output=True, text=True, cwd=PROJECT, check=True).stdout
    assert "Card performance (since 2026-01-01" in out
    out = subprocess.run([sys.executable, "-m", "cds_service", "purge", "--days", "30"], env=env,
                         capture_output=True, text=True, cwd=PROJECT, check=True).stdout
    assert "purged records older than 30 days" in out


def test_a_late_older_override_does_not_shorten_suppression(database_url):
    client = app_for(database_url, SUPPRESSION_DAYS="mma-testing=3").test_client()
    card = call(client)[0]
    override(client, card, when=NOW)
    override(client, card, "action-completed", when=NOW - timedelta(days=10))  # delivered late
    assert call(client) == []


def test_a_drug_card_gets_its_b12_orders_back_when_the_b12_card_it_deferred_to_is_suppressed(database_url):
    """Arbitration moves B12 orders to the B12-state card (4.6 D1); if suppression hides that card,
    the folate card must not point to a card the clinician no longer sees."""
    case = next(s for s in load_scenarios() if s["patient"] == "r2-folate-chronic-neuropathy"
                and s["hook"] == "patient-view")
    client = app_for(database_url, SUPPRESSION_DAYS="urgent-neuro-review=7").test_client()
    first = {c["source"]["topic"]["code"]: c for c in call(client, request_for_scenario(case))}
    assert set(first) == {"urgent-neuro-review", "folate-without-b12"}
    assert "suggestions" not in first["folate-without-b12"]  # its B12 orders are on the urgent card
    override(client, first["urgent-neuro-review"])
    second = {c["source"]["topic"]["code"]: c for c in call(client, request_for_scenario(case))}
    assert set(second) == {"folate-without-b12"}
    labels = [s["label"] for s in second["folate-without-b12"].get("suggestions", [])]
    assert any("hydroxocobalamin" in label for label in labels), labels
    assert "offered there, once" not in second["folate-without-b12"]["detail"]
