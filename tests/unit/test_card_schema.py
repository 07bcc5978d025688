"""The card schema every response passes through rejects each kind of bad field."""

from __future__ import annotations

import copy

import pytest

from cds_service.protocol.response import InvalidCard, validate_response

GOOD_CARD = {
    "uuid": "6f1c2d4e-8b7a-4c3d-9e2f-1a2b3c4d5e6f",
    "summary": "Check methylmalonic acid: B12 is borderline and symptoms are present",
    "indicator": "warning",
    "detail": "**Why**: serum B12 150 pg/mL",
    "source": {"label": "NICE NG239", "url": "https://www.nice.org.uk/guidance/ng239",
               "topic": {"system": "https://b12-neuro-cds.example.org/CodeSystem/card-topic", "code": "mma-testing"}},
    "selectionBehavior": "at-most-one",
    "suggestions": [{"label": "Order MMA", "uuid": "0b7b4a8e-1c1f-4f8e-9d42-2f8a8c6f3e10", "isRecommended": True,
                     "actions": [{"type": "create", "description": "Order serum MMA",
                                  "resource": {"resourceType": "ServiceRequest", "status": "draft"}}]}],
    "overrideReasons": [{"system": "https://example.org/or", "code": "done", "display": "Already done"}],
    "links": [{"label": "NICE", "url": "https://www.nice.org.uk/guidance/ng239", "type": "absolute"}],
}


def with_change(path: str, value, delete: bool = False) -> dict:
    card = copy.deepcopy(GOOD_CARD)
    target = card
    keys = path.split(".")
    for key in keys[:-1]:
        target = target[int(key)] if key.isdigit() else target[key]
    last: str | int = int(keys[-1]) if keys[-1].isdigit() else keys[-1]
    if delete:
        del target[last]
    else:
        target[last] = value
    return {"cards": [card]}


def test_good_card_passes():
    validate_response({"cards": [GOOD_CARD]})
    validate_response({"cards": []})


@pytest.mark.parametrize(
    ("path", "value", "delete", "fragment"),
    [
        ("summary", "x" * 140, False, "summary"),
        ("summary", "", False, "summary"),
        ("summary", None, True, "summary"),
        ("indicator", "hard-stop", False, "indicator"),
        ("indicator", "success", False, "indicator"),
        ("source.label", None, True, "source.label"),
        ("source.label", "", False, "source.label"),
        ("uuid", "not-a-uuid", False, "uuid"),
        ("suggestions.0.uuid", "nope", False, "uuid"),
        ("selectionBehavior", None, True, "selectionBehavior"),
        ("selectionBehavior", "all", False, "selectionBehavior"),
        ("detail", None, False, "detail"),
        ("detail", "", False, "detail"),
        ("links", [], False, "links"),
        ("overrideReasons.0.display", None, True, "display"),
        ("suggestions.0.actions.0.description", None, True, "description"),
        ("suggestions.0.actions.0.resource", None, True, "resource"),
        ("suggestions.0.actions.0.type", "remove", False, "type"),
        ("links.0.type", "relative", False, "type"),
        ("links.0.appContext", "ctx", False, "appContext"),
        ("source.topic.system", None, True, "system"),
        ("extra", 1, False, "extra"),
        ("suggestions.0.actions.0.resource", {}, False, "resource"),
    ],
)
def test_bad_card_fields_are_rejected(path, value, delete, fragment):
    with pytest.raises(InvalidCard, match=fragment):
        validate_response(with_change(path, value, delete))


def test_delete_action_needs_resource_id():
    body = with_change("suggestions.0.actions.0", {"type": "delete", "description": "Remove the draft folate order"})
    with pytest.raises(InvalidCard, match="resourceId"):
        validate_response(body)


def test_at_most_one_allows_only_one_recommended_suggestion():
    card = copy.deepcopy(GOOD_CARD)
    card["suggestions"].append(copy.deepcopy(card["suggestions"][0]))
    with pytest.raises(InvalidCard, match="at most one"):
        validate_response({"cards": [card]})
    card["selectionBehavior"] = "any"
    validate_response({"cards": [card]})


def test_cards_key_is_required():
    with pytest.raises(InvalidCard, match="cards"):
        validate_response({})
