"""Routing: every intent has a queue; priorities follow the operator's rules."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from streams.core.routing import (
    CustomerHistory,
    RoutingTable,
    SentimentRule,
    route,
    top_intents,
)
from streams.errors import ConfigFileError

ROOT = Path(__file__).resolve().parents[2]
ROUTING = ROOT / "deploy" / "config" / "routing.toml"
CATEGORIES = Path("/work/shared/data/banking77/categories.json")
TABLE = RoutingTable.load(ROUTING)
T = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
NO_HISTORY = CustomerHistory()
# The 77 BANKING77 intents, as the dataset spells them.
BANKING77 = (
    "card_arrival",
    "card_linking",
    "exchange_rate",
    "card_payment_wrong_exchange_rate",
    "extra_charge_on_statement",
    "pending_cash_withdrawal",
    "fiat_currency_support",
    "card_delivery_estimate",
    "automatic_top_up",
    "card_not_working",
    "exchange_via_app",
    "lost_or_stolen_card",
    "age_limit",
    "pin_blocked",
    "contactless_not_working",
    "top_up_by_bank_transfer_charge",
    "pending_top_up",
    "cancel_transfer",
    "top_up_limits",
    "wrong_amount_of_cash_received",
    "card_payment_fee_charged",
    "transfer_not_received_by_recipient",
    "supported_cards_and_currencies",
    "getting_virtual_card",
    "card_acceptance",
    "top_up_reverted",
    "balance_not_updated_after_cheque_or_cash_deposit",
    "card_payment_not_recognised",
    "edit_personal_details",
    "why_verify_identity",
    "unable_to_verify_identity",
    "get_physical_card",
    "visa_or_mastercard",
    "topping_up_by_card",
    "disposable_card_limits",
    "compromised_card",
    "atm_support",
    "direct_debit_payment_not_recognised",
    "passcode_forgotten",
    "declined_cash_withdrawal",
    "pending_card_payment",
    "lost_or_stolen_phone",
    "request_refund",
    "declined_transfer",
    "Refund_not_showing_up",
    "declined_card_payment",
    "pending_transfer",
    "terminate_account",
    "card_swallowed",
    "transaction_charged_twice",
    "verify_source_of_funds",
    "transfer_timing",
    "reverted_card_payment?",
    "change_pin",
    "beneficiary_not_allowed",
    "transfer_fee_charged",
    "receiving_money",
    "failed_transfer",
    "transfer_into_account",
    "verify_top_up",
    "getting_spare_card",
    "top_up_by_cash_or_cheque",
    "order_physical_card",
    "virtual_card_not_working",
    "wrong_exchange_rate_for_cash_withdrawal",
    "get_disposable_virtual_card",
    "top_up_failed",
    "balance_not_updated_after_bank_transfer",
    "cash_withdrawal_not_recognised",
    "exchange_charge",
    "top_up_by_card_charge",
    "activate_my_card",
    "cash_withdrawal_charge",
    "card_about_to_expire",
    "apple_pay_or_google_pay",
    "verify_my_identity",
    "country_support",
)


def _route(
    probs: dict[str, float],
    label: str = "neutral",
    score: float = 0.0,
    history: CustomerHistory = NO_HISTORY,
    table: RoutingTable = TABLE,
    message_id: str | None = None,
) -> tuple[str, int, tuple[str, ...]]:
    d = route(probs, label, score, history, table, at=T, message_id=message_id)
    return d.queue, d.priority, d.reasons


def _history(*contacts: tuple[str, timedelta, str | None]) -> CustomerHistory:
    history = NO_HISTORY
    for intent, ago, mid in contacts:
        history = history.updated(intent, T - ago, 20, timedelta(days=1), mid)
    return history


def test_every_banking77_intent_has_a_route() -> None:
    if CATEGORIES.exists():  # the data set's own list, where this checkout has it
        assert sorted(json.loads(CATEGORIES.read_text())) == sorted(BANKING77)
    assert len(set(BANKING77)) == 77
    assert sorted(TABLE.intents) == sorted(BANKING77)


def test_the_shipped_table_has_sensible_queues() -> None:
    assert TABLE.default_queue in TABLE.queues and TABLE.triage_queue in TABLE.queues
    working = set(TABLE.queues) - {TABLE.default_queue, TABLE.triage_queue}
    assert all(TABLE.intents_of(q) for q in working)
    assert {"cards", "transfers", "top_up", "exchange", "security", "refunds"} <= working
    assert TABLE.intents["lost_or_stolen_card"].queue == "security"


@pytest.mark.parametrize(
    "intent",
    [
        "lost_or_stolen_card",
        "compromised_card",
        "card_swallowed",
        "lost_or_stolen_phone",
        "cash_withdrawal_not_recognised",
        "card_payment_not_recognised",
    ],
)
def test_urgent_intents_get_top_priority(intent: str) -> None:
    _, priority, reasons = _route({intent: 0.95})
    assert priority == 1 and "urgent_intent" in reasons


def test_a_confident_calm_message_takes_its_intents_route() -> None:
    decision = route(
        {"card_arrival": 0.9, "card_delivery_estimate": 0.1},
        "neutral",
        0.1,
        NO_HISTORY,
        TABLE,
        at=T,
    )
    assert (decision.intent, decision.confidence, decision.queue) == ("card_arrival", 0.9, "cards")
    assert decision.priority == TABLE.intents["card_arrival"].priority
    assert (decision.low_confidence, decision.reasons, decision.repeat_contacts) == (False, (), 1)


def test_a_low_confidence_message_goes_to_triage_keeping_its_priority() -> None:
    probs = {"pin_blocked": 0.3, "change_pin": 0.25, "card_not_working": 0.2}
    decision = route(probs, "neutral", 0.0, NO_HISTORY, TABLE, at=T)
    assert decision.queue == TABLE.triage_queue and decision.low_confidence
    assert decision.priority == TABLE.intents["pin_blocked"].priority
    assert decision.reasons == ("low_confidence",)


def test_strongly_negative_sentiment_is_one_step_more_urgent() -> None:
    base = TABLE.intents["card_arrival"].priority
    assert _route({"card_arrival": 0.9}, "negative", -0.9)[1:] == (
        base - 1,
        ("negative_sentiment",),
    )
    assert _route({"card_arrival": 0.9}, "negative", -0.3)[1] == base  # not strong enough
    assert _route({"card_arrival": 0.9}, "neutral", -0.9)[1] == base  # not negative


def test_the_negative_threshold_is_configurable() -> None:
    lenient = TABLE.model_copy(update={"sentiment": SentimentRule(strongly_negative_score=-0.2)})
    base = TABLE.intents["card_arrival"].priority
    assert _route({"card_arrival": 0.9}, "negative", -0.3, table=lenient)[1] == base - 1


def test_repeat_contacts_escalate_and_say_why() -> None:
    history = _history(
        ("card_arrival", timedelta(hours=5), "m1"), ("card_arrival", timedelta(hours=1), "m2")
    )
    decision = route({"card_arrival": 0.9}, "neutral", 0.0, history, TABLE, at=T, message_id="m3")
    assert decision.repeat_contacts == 3
    assert decision.priority == TABLE.intents["card_arrival"].priority - 1
    assert decision.reasons == ("repeat_contact",)


def test_old_or_other_contacts_are_not_repeats() -> None:
    history = _history(
        ("card_arrival", timedelta(days=2), "m1"),
        ("exchange_rate", timedelta(hours=1), "m2"),
        ("card_arrival", timedelta(hours=2), "m3"),
    )
    decision = route({"card_arrival": 0.9}, "neutral", 0.0, history, TABLE, at=T, message_id="m4")
    assert decision.repeat_contacts == 2 and "repeat_contact" not in decision.reasons


def test_a_redelivered_message_is_not_its_own_repeat() -> None:
    history = _history(
        ("card_arrival", timedelta(hours=1), "m1"), ("card_arrival", timedelta(0), "m2")
    )
    decision = route({"card_arrival": 0.9}, "neutral", 0.0, history, TABLE, at=T, message_id="m2")
    assert decision.repeat_contacts == 2


def test_priority_never_goes_above_one() -> None:
    history = _history(*[("compromised_card", timedelta(minutes=m), f"m{m}") for m in (1, 2, 3)])
    _, priority, reasons = _route({"compromised_card": 0.99}, "negative", -0.99, history)
    assert priority == 1
    assert reasons == ("urgent_intent", "negative_sentiment", "repeat_contact")


def test_an_unknown_intent_goes_to_the_default_queue() -> None:
    assert _route({"crypto_question": 0.9}) == (
        TABLE.default_queue,
        TABLE.default_priority,
        ("unknown_intent",),
    )


def test_route_needs_probabilities() -> None:
    with pytest.raises(ValueError, match="at least one"):
        route({}, "neutral", 0.0, NO_HISTORY, TABLE, at=T)


def test_top_intents_ranks_with_a_stable_tie_break() -> None:
    assert list(top_intents({"b": 0.2, "a": 0.2, "c": 0.6}, 2)) == ["c", "a"]


# --- customer history -------------------------------------------------------------


def test_history_is_bounded_newest_kept() -> None:
    history = NO_HISTORY
    for n in range(10):
        history = history.updated("x", T + timedelta(minutes=n), 4, timedelta(days=1), f"m{n}")
    assert [c.message_id for c in history.contacts] == ["m6", "m7", "m8", "m9"]


def test_history_forgets_contacts_older_than_the_window() -> None:
    history = _history(("a", timedelta(days=3), "m1"), ("b", timedelta(hours=2), "m2"))
    assert [c.message_id for c in history.contacts] == ["m2"]


def test_history_update_is_idempotent_and_immutable() -> None:
    once = NO_HISTORY.updated("a", T, 5, timedelta(days=1), "m1")
    assert once.updated("a", T, 5, timedelta(days=1), "m1") == once
    assert NO_HISTORY.contacts == ()


def test_history_round_trips_through_json() -> None:
    history = _history(("a", timedelta(hours=3), "m1"), ("b", timedelta(hours=2), None))
    assert CustomerHistory.from_dict(json.loads(json.dumps(history.to_dict()))) == history


# --- validation of the operator's file ----------------------------------------------

SHIPPED = ROUTING.read_text(encoding="utf-8")
CARD_ARRIVAL = 'card_arrival = { queue = "cards", priority = 4 }'


def _card_arrival(route_text: str) -> tuple[str, str]:
    return CARD_ARRIVAL, f"card_arrival = {{ {route_text} }}"


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (_card_arrival('queue = "cards", priority = 6'), "intents.card_arrival.priority"),
        (_card_arrival('queue = "cards", priority = 0'), "intents.card_arrival.priority"),
        (_card_arrival('queue = "cardz", priority = 4'), "intents.card_arrival.queue"),
        (_card_arrival('queue = "cards", prio = 4'), "intents.card_arrival.priority"),
        (('default_queue = "general"\n', ""), "default_queue"),
        (('default_queue = "general"', 'default_queue = "nowhere"'), "default_queue"),
        (("[sentiment]", "[sentiment]\ncolour = 1"), "sentiment.colour"),
        (('default_queue = "general"', 'surprise = 1\ndefault_queue = "general"'), "surprise"),
        (('"card_swallowed",', '"card_swalowed",'), "urgent_intents"),
        (("threshold = 0.5", "threshold = 1.5"), "low_confidence_threshold"),
    ],
)
def test_a_bad_table_is_refused_naming_file_and_key(edit: tuple[str, str], key: str) -> None:
    old, new = edit
    assert old in SHIPPED
    with pytest.raises(ConfigFileError) as caught:
        RoutingTable.parse(SHIPPED.replace(old, new, 1), source="deploy/config/routing.toml")
    assert caught.value.key == key
    assert str(caught.value).startswith(f"deploy/config/routing.toml: {key}: ")
