"""Card anatomy over every fixture scenario (conventions.md): read in five seconds, fits a 560 px column.

Summary <= 140 characters with the key value as the lab sent it; detail of a few sentences and an
evidence table of at most four columns; median detail <= 900 characters and none over 1,500; no
phrase repeated; no raw UCUM braces; suggestions only create.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from typing import Any

import pytest

from tests.support.project import EVALUATION_TIME
from tests.support.scenarios import load_scenarios, request_for, scenario_id, service_url

SCENARIOS = load_scenarios()


@pytest.fixture(scope="module")
def cards_by_scenario(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    from cds_service import create_app

    db = tmp_path_factory.mktemp("anatomy") / "t.db"
    app = create_app({"TESTING": True, "EVALUATION_TIME": EVALUATION_TIME, "DATABASE_URL": f"sqlite:///{db}"})
    client = app.test_client()
    out = {}
    for scenario in SCENARIOS:
        response = client.post(service_url(scenario["hook"]), json=request_for(scenario))
        assert response.status_code == 200, scenario_id(scenario)
        out[scenario_id(scenario)] = response.get_json()["cards"]
    return out


def all_cards(cards_by_scenario: dict[str, list[dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    return [(sid, card) for sid, cards in cards_by_scenario.items() for card in cards]


def test_the_fixtures_give_enough_cards_to_judge(cards_by_scenario):
    assert len(all_cards(cards_by_scenario)) >= 70


def test_summaries_fit_140_characters(cards_by_scenario):
    for sid, card in all_cards(cards_by_scenario):
        assert len(card["summary"]) <= 140, (sid, card["summary"])


def test_detail_lengths_are_read_in_seconds(cards_by_scenario):
    lengths = [len(card.get("detail", "")) for _, card in all_cards(cards_by_scenario)]
    assert statistics.median(lengths) <= 900, statistics.median(lengths)
    assert max(lengths) <= 1500, max(lengths)


def _table_widths(detail: str) -> list[int]:
    rows = [line for line in detail.splitlines() if line.startswith("|")]
    return [len(re.findall(r"(?<!\\)\|", row)) - 1 for row in rows]


def test_no_table_is_wider_than_four_columns(cards_by_scenario):
    for sid, card in all_cards(cards_by_scenario):
        widths = _table_widths(card.get("detail", ""))
        assert widths and max(widths) <= 4, (sid, widths)


def _phrases(text: str, size: int = 40) -> Counter[str]:
    """Every run of `size` characters starting at a word boundary."""
    flat = " ".join(text.split())
    starts = [0] + [m.end() for m in re.finditer(r"\s", flat)]
    return Counter(flat[i:i + size] for i in starts if len(flat) - i >= size)


def test_no_phrase_of_40_characters_is_repeated_three_times(cards_by_scenario):
    for sid, card in all_cards(cards_by_scenario):
        repeated = [p for p, n in _phrases(card.get("detail", "")).items() if n >= 3]
        assert not repeated, (sid, card["source"]["topic"]["code"], repeated[:3])


def test_the_repeat_detector_finds_a_repeat():
    line = "B12 replacement: strength unknown, confirm the dose. "
    assert any(n >= 3 for n in _phrases(line * 3).values())


def test_no_raw_ucum_braces_in_what_a_clinician_reads(cards_by_scenario):
    for sid, card in all_cards(cards_by_scenario):
        texts = [card["summary"], card.get("detail", "")] + [s["label"] for s in card.get("suggestions", [])]
        for text in texts:
            assert not re.search(r"\{[^}\s]*\}", text.replace("\\{", "{")), (sid, text[:200])


def test_suggestions_only_create_and_exclusive_regimens_are_pick_one(cards_by_scenario):
    for sid, card in all_cards(cards_by_scenario):
        suggestions = card.get("suggestions", [])
        assert all(a["type"] == "create" for s in suggestions for a in s["actions"]), sid
        prescriptions = [s for s in suggestions
                         if any(a["resource"]["resourceType"] == "MedicationRequest" for a in s["actions"])]
        if len(prescriptions) > 1:
            assert card["selectionBehavior"] == "at-most-one", sid


def test_summary_shows_the_b12_as_the_lab_sent_it(cards_by_scenario):
    """'260 pg/mL' stays '260 pg/mL' in the summary: the value the clinician sees in the results."""
    checked = 0
    for scenario in SCENARIOS:
        for expected in scenario["expect"]:
            for needle in expected.get("detailMentions", ()):
                if not re.fullmatch(r"<?\d+(\.\d+)? (pg/mL|ng/L)", needle):
                    continue
                cards = [c for c in cards_by_scenario[scenario_id(scenario)]
                         if c["source"]["topic"]["code"] == expected["topic"] and "B12" in c["summary"]
                         and re.search(r"\d", c["summary"])]
                for card in cards:
                    assert "pmol/L" not in card["summary"] or needle.endswith("pmol/L"), card["summary"]
                    checked += 1
    assert checked >= 5
