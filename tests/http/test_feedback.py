"""Feedback endpoint: validation, persistence through SQLAlchemy, idempotence."""

from __future__ import annotations

import json

import pytest

from cds_service.storage.feedback_store import count_feedback

URL = "/cds-services/b12-patient-view/feedback"


@pytest.fixture
def app_config(database_url):
    """Feedback tests run on SQLite and on a real PostgreSQL (conftest.database_url)."""
    return {"TESTING": True, "DATABASE_URL": database_url}


def accepted(card: str = "c0a8f3c2-9a3e-4a51-8d55-0d4f6f0d2b11", ts: str = "2026-11-01T10:05:31Z") -> dict:
    return {"card": card, "outcome": "accepted", "acceptedSuggestions": [{"id": "s-1"}], "outcomeTimestamp": ts}


def overridden(card: str = "card-2") -> dict:
    return {"card": card, "outcome": "overridden", "outcomeTimestamp": "2026-11-01T10:06:00Z",
            "overrideReason": {"reason": {"code": "patient-ineligible",
                                          "system": "http://terminology.hl7.org/CodeSystem/non-adherence-reason-codes"},
                               "userComment": "free text that may hold PHI"}}


def send(client, *items, url: str = URL):
    return client.post(url, data=json.dumps({"feedback": list(items)}), content_type="application/json")


def test_feedback_is_stored_and_duplicates_are_tolerated(app, client):
    db = app.extensions["b12_cds"].db
    first = send(client, accepted(), overridden())
    assert first.status_code == 200
    assert first.get_json() == {"stored": 2, "received": 2}
    again = send(client, accepted(), overridden())
    assert again.status_code == 200
    assert again.get_json()["stored"] == 0
    assert count_feedback(db, "b12-patient-view") == 2


def test_user_comment_text_is_not_stored(app, client):
    send(client, overridden())
    db = app.extensions["b12_cds"].db
    with db.connect() as conn:
        rows = [tuple(r) for r in conn.exec_driver_sql("SELECT * FROM feedback").fetchall()]
    assert rows and not any("PHI" in str(value) for row in rows for value in row)


def test_feedback_for_unknown_service_is_404(client):
    assert send(client, accepted(), url="/cds-services/nope/feedback").status_code == 404


@pytest.mark.parametrize(
    ("item", "fragment"),
    [
        ({"outcome": "accepted", "acceptedSuggestions": [{"id": "s"}], "outcomeTimestamp": "2026-11-01T10:00:00Z"},
         "card"),
        ({**accepted(), "outcome": "ignored"}, "outcome"),
        ({k: v for k, v in accepted().items() if k != "acceptedSuggestions"}, "acceptedSuggestions"),
        ({**accepted(), "outcomeTimestamp": "yesterday"}, "outcomeTimestamp"),
        ({**accepted(), "outcomeTimestamp": "2026-11-01T10:05:31"}, "time zone"),
        ({**overridden(), "overrideReason": {}}, "overrideReason"),
        ({**overridden(), "overrideReason": {"reason": {"code": "x"}}}, "system"),
        ({**accepted(), "card": ""}, "card"),
        ({**accepted(), "acceptedSuggestions": []}, "acceptedSuggestions"),
        ({**accepted(), "extra": True}, "extra"),
    ],
    ids=["no-card", "bad-outcome", "accepted-without-suggestions", "bad-timestamp", "naive-timestamp",
         "empty-override", "coding-without-system", "empty-card", "empty-suggestion-list", "unknown-field"],
)
def test_invalid_feedback_is_400_naming_the_field(client, item, fragment):
    response = send(client, item)
    assert response.status_code == 400
    assert fragment in response.get_json()["issue"][0]["diagnostics"]


def test_empty_feedback_list_is_400(client):
    response = client.post(URL, data=json.dumps({"feedback": []}), content_type="application/json")
    assert response.status_code == 400


# A regression found in review: this test failed before its fix.
# refused before anything is stored, so one database is enough (as before the move: SQLite)
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_feedback_with_an_unrepresentable_time_or_overlong_id_is_400(client):
    def overridden_at(card: str, when: str) -> dict:
        return {"card": card, "outcome": "overridden", "outcomeTimestamp": when}

    assert send(client, overridden_at("c1", "0001-01-01T00:00:00+05:00")).status_code == 400
    assert send(client, overridden_at("x" * 129, "2026-11-01T12:00:00Z")).status_code == 400
