"""Next-best actions: relevant to the intent, escalated on repeat contact, deterministic."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from streams.core.recommend import ANY_INTENT, ActionCatalog, recommend
from streams.core.records import RankedAction
from streams.core.routing import RoutingTable
from streams.errors import ConfigFileError

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "config"
CATALOG = ActionCatalog.load(CONFIG / "actions.toml")
TABLE = RoutingTable.load(CONFIG / "routing.toml")

SMALL = ActionCatalog.parse(
    """
[escalation]
min_repeat_contacts = 2
boost = 0.5

[[actions]]
id = "b_explain"
title = "Explain"
intents = { card_arrival = 1.0, card_delivery_estimate = 0.5 }

[[actions]]
id = "a_track"
title = "Track"
intents = { card_arrival = 1.0 }

[[actions]]
id = "chase"
title = "Chase the courier"
escalation = true
intents = { card_arrival = 0.2 }

[[actions]]
id = "unrelated"
title = "Unrelated"
intents = { exchange_rate = 1.0 }

[[actions]]
id = "clarify"
title = "Ask"
intents = { "*" = 0.05, exchange_rate = 0.0 }
"""
)


def _ids(actions: list[RankedAction]) -> list[str]:
    return [a.action_id for a in actions]


def test_every_intent_has_a_specific_action() -> None:
    for intent in TABLE.intents:
        specific = [a for a in CATALOG.actions if a.intents.get(intent, 0) > 0]
        assert specific, f"no action for {intent}"


def test_every_queue_has_an_action() -> None:
    for queue in TABLE.queues:
        intents = TABLE.intents_of(queue) or ["an_intent_nobody_routes"]
        assert any(CATALOG.actions_for(i) for i in intents), queue


def test_a_lost_card_gets_freeze_first() -> None:
    actions = recommend({"lost_or_stolen_card": 0.92, "card_arrival": 0.05}, CATALOG)
    assert _ids(actions)[0] == "freeze_card"
    assert len(actions) == 3
    assert [a.score for a in actions] == sorted((a.score for a in actions), reverse=True)


def test_scores_are_probability_weighted_sums() -> None:
    actions = recommend({"card_arrival": 0.6, "card_delivery_estimate": 0.4}, SMALL, k=10)
    scores = {a.action_id: a.score for a in actions}
    assert scores["b_explain"] == pytest.approx(0.6 * 1.0 + 0.4 * 0.5)
    assert scores["a_track"] == pytest.approx(0.6)
    assert scores["chase"] == pytest.approx(0.12)
    assert scores["clarify"] == pytest.approx(0.05)
    assert "unrelated" not in scores  # a zero score is never suggested


def test_ties_are_broken_by_action_id() -> None:
    actions = recommend({"card_arrival": 1.0}, SMALL, k=2)
    assert _ids(actions) == ["a_track", "b_explain"]
    shuffled = recommend(dict(reversed({"card_arrival": 1.0, "x": 0.0}.items())), SMALL, k=2)
    assert shuffled == actions


def test_repeat_contacts_push_escalation_up() -> None:
    probs = {"card_arrival": 0.5, "card_delivery_estimate": 0.5}
    first = recommend(probs, SMALL, repeat_contacts=1)
    again = recommend(probs, SMALL, repeat_contacts=2)
    assert _ids(first) == ["b_explain", "a_track", "chase"]
    assert _ids(again) == ["b_explain", "chase", "a_track"]
    assert again[1].score == pytest.approx(0.5 * 0.2 + 0.5)


def test_escalation_does_not_bring_in_irrelevant_actions() -> None:
    actions = recommend({"exchange_rate": 1.0}, SMALL, repeat_contacts=5, k=10)
    assert _ids(actions) == ["unrelated"]  # clarify has weight 0 here, chase no weight


def test_shipped_catalog_escalates_a_repeat_refund_chase() -> None:
    probs = {"Refund_not_showing_up": 0.9, "request_refund": 0.1}
    assert "escalate_to_specialist" not in _ids(recommend(probs, CATALOG))
    assert "escalate_to_specialist" in _ids(recommend(probs, CATALOG, repeat_contacts=3))


def test_k_limits_the_list() -> None:
    assert recommend({"card_arrival": 1.0}, SMALL, k=0) == []
    assert len(recommend({"card_arrival": 1.0}, SMALL, k=1)) == 1


def test_a_wildcard_weight_covers_unlisted_intents() -> None:
    assert _ids(recommend({"brand_new_intent": 1.0}, SMALL)) == ["clarify"]
    assert ANY_INTENT == "*"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[[actions]]\nid = "a"\ntitle = "A"\nintents = { x = 1 }\n' * 2, "actions.1.id"),
        ('[[actions]]\nid = "Bad Id"\ntitle = "A"\nintents = { x = 1 }', "actions.0.id"),
        ('[[actions]]\nid = "a"\ntitle = "A"\nintents = {}', "actions.0.intents"),
        ('[[actions]]\nid = "a"\ntitle = "A"\nintents = { x = -1 }', "actions.0.intents.x"),
        ('[[actions]]\nid = "a"\ntitle = "A"\nintents = { x = 1 }\nurgent = 1', "actions.0.urgent"),
        ("[escalation]\nboost = 1", "actions"),
    ],
)
def test_a_bad_catalog_is_refused_naming_the_key(text: str, key: str) -> None:
    with pytest.raises(ConfigFileError) as caught:
        ActionCatalog.parse(text, source="actions.toml")
    assert caught.value.key == key
    assert str(caught.value).startswith(f"actions.toml: {key}: ")


def _reference_scores(intent_probs: dict[str, float], catalog: ActionCatalog) -> list[float]:
    """Every term of every action in turn: what the indexed scores must equal exactly."""
    return [
        sum(p * action.weight(intent) for intent, p in intent_probs.items() if p > 0)
        for action in catalog.actions
    ]


def test_indexed_scores_equal_every_term_added_in_turn_exactly() -> None:
    catalog = CATALOG
    intents = [*sorted({i for a in catalog.actions for i in a.intents} - {"*"}), "unlisted", "*"]
    rng = random.Random(5)
    for _ in range(500):
        chosen = rng.sample(intents, rng.randint(1, 8))
        probs = {i: rng.choice([0.0, -0.1, rng.random(), rng.random() / 1e6]) for i in chosen}
        assert catalog.scores(probs) == _reference_scores(probs, catalog)
    # a catalog with its catch-all actions first and last
    text = """
    [[actions]]
    id = "any_first"
    title = "any"
    intents = { "*" = 0.3, b = 2.0 }
    [[actions]]
    id = "a_only"
    title = "a"
    intents = { a = 1.0, b = 0.0 }
    [[actions]]
    id = "any_last"
    title = "any"
    intents = { "*" = 0.1 }
    """
    small = ActionCatalog.parse(text)
    for probs in ({"a": 0.5, "b": 0.25, "c": 0.25}, {"c": 1.0}, {"b": 0.7, "a": 0.3}):
        assert small.scores(probs) == _reference_scores(probs, small)
    assert small.scores({"b": 1.0}) == [2.0, 0.0, 0.1]
