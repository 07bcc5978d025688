"""Over every fixture scenario, through the HTTP API: what a real client relies on in every card.

- `source.url` is absolute, and a link (type absolute) leads to the family's explanation page, which
  answers 200 on the same service;
- the base of that link is CDS_PUBLIC_BASE_URL when set, else the request's own base URL;
- no suggestion deletes anything (a client that applies the delete and fails on the create leaves
  neither order);
- no raw UCUM braces ("mL/min/{1.73_m2}") in any text a clinician reads.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from cds_service import create_app
from tests.support.project import EVALUATION_TIME
from tests.support.scenarios import load_scenarios, request_for, scenario_id, service_url

UCUM_BRACES = re.compile(r"\{[^}\s]*\}")


def _cards(client: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    for scenario in load_scenarios():
        response = client.post(service_url(scenario["hook"]), json=request_for(scenario))
        assert response.status_code in (200, 412), scenario_id(scenario)
        for card in (response.get_json() or {}).get("cards", []):
            yield scenario_id(scenario), card


@pytest.fixture(scope="module")
def scenario_cards(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, dict[str, Any]]]:
    db = tmp_path_factory.mktemp("links") / "cds.db"
    client = create_app({"TESTING": True, "EVALUATION_TIME": EVALUATION_TIME,
                         "DATABASE_URL": f"sqlite:///{db}"}).test_client()
    cards = list(_cards(client))
    assert len(cards) >= 30
    return cards


def _texts(card: dict[str, Any]) -> Iterator[str]:
    yield card["summary"]
    yield card.get("detail", "")
    yield card["source"]["label"]
    for link in card.get("links", []):
        yield link["label"]
    for suggestion in card.get("suggestions", []):
        yield suggestion["label"]
        for action in suggestion["actions"]:
            yield action.get("description", "")
    for reason in card.get("overrideReasons", []):
        yield reason["display"]


def test_every_card_has_an_absolute_source_url_and_a_working_explanation_link(scenario_cards, tmp_path):
    client = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path}/x.db"}).test_client()
    for sid, card in scenario_cards:
        assert re.match(r"^https?://[^\s#]+$", card["source"]["url"]), (sid, card["source"])
        family = card["source"]["topic"]["code"]
        explain = [link for link in card["links"] if link["url"] == f"http://localhost/explain/{family}"]
        assert len(explain) == 1 and explain[0]["type"] == "absolute", (sid, card["links"])
        for link in card["links"]:
            assert link["type"] == "absolute" and link["url"].startswith(("https://", "http://")), sid
        assert client.get(f"/explain/{family}").status_code == 200


def test_no_card_suggests_a_delete(scenario_cards):
    for sid, card in scenario_cards:
        for suggestion in card.get("suggestions", []):
            assert {a["type"] for a in suggestion["actions"]} <= {"create", "update"}, (sid, suggestion["label"])


def test_no_card_text_holds_raw_ucum_braces(scenario_cards):
    for sid, card in scenario_cards:
        for text in _texts(card):
            assert not UCUM_BRACES.search(text), (sid, UCUM_BRACES.search(text).group(0), text[:200])


def test_the_link_base_is_the_public_base_url_when_configured(tmp_path):
    client = create_app({"TESTING": True, "EVALUATION_TIME": EVALUATION_TIME, "DATABASE_URL": f"sqlite:///{tmp_path}/c.db",
                         "PUBLIC_BASE_URL": "https://cds.example.org/b12/"}).test_client()
    scenario = next(s for s in load_scenarios() if s["patient"] == "r1-indeterminate-neuropathy"
                    and s["hook"] == "patient-view")
    cards = client.post(service_url("patient-view"), json=request_for(scenario)).get_json()["cards"]
    assert cards
    for card in cards:
        family = card["source"]["topic"]["code"]
        assert card["links"][0]["url"] == f"https://cds.example.org/b12/explain/{family}"
