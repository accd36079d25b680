"""The alert monitors: quiet on steady traffic, one alert per incident, crash-safe ids."""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import pytest

from streams.core.intent_monitor import (
    IntentEvent,
    IntentParams,
    IntentState,
    WindowChunk,
    update_intent,
)
from streams.core.intent_monitor import is_late as intent_late
from streams.core.monitors import alert_id, decay, window_bucket
from streams.core.records import EARLIEST_TIME, LATEST_TIME, Alert, RoutedTicket, ScoredNews
from streams.core.ticker_monitor import (
    NewsEvent,
    TickerParams,
    TickerState,
    WindowItem,
    _expected_negatives,
    _fold,
    ticker_of,
    update_ticker,
)
from streams.core.ticker_monitor import is_late as ticker_late
from streams.errors import InvalidRecordError
from streams.runtime.monitor_agents import IntentRows

T0 = datetime(2024, 3, 4, 8, 0, tzinfo=UTC)
NOW = datetime(2030, 1, 1, tzinfo=UTC)  # wall clock: only stamps raised_at
TICKER = TickerParams()
INTENT = IntentParams()


def _mixed_news(ticker: str, minutes: int, *, seed: int, start: datetime = T0) -> list[NewsEvent]:
    """About one item a minute, FinancialPhraseBank-like: mostly neutral, some each way."""
    rng = random.Random(seed)
    events = []
    for n in range(minutes):
        at = start + timedelta(minutes=n, seconds=rng.randint(0, 59))
        score = rng.choices(
            [rng.uniform(-0.2, 0.2), rng.uniform(0.3, 0.95), rng.uniform(-0.95, -0.3)],
            weights=[60, 28, 12],
        )[0]
        events.append(NewsEvent(ticker, f"{ticker}-{seed}-{n}", f"steady {n}", score, at, "s1"))
    return events


def _shock(ticker: str, start: datetime, count: int = 12, prefix: str = "shock") -> list[NewsEvent]:
    """``count`` strongly negative items, one every 30 seconds."""
    return [
        NewsEvent(
            ticker,
            f"{prefix}-{n}",
            f"{ticker} profit warning {n}",
            -0.95,
            start + timedelta(seconds=30 * n),
            "s1",
        )
        for n in range(count)
    ]


def _by_time(events: Iterable[NewsEvent]) -> list[NewsEvent]:
    return sorted(events, key=lambda e: (e.at, e.id))


def _run_news(
    events: Iterable[NewsEvent],
    states: dict[str, TickerState] | None = None,
    params: TickerParams = TICKER,
) -> tuple[dict[str, TickerState], list[Alert]]:
    states = {} if states is None else states
    alerts: list[Alert] = []
    for event in events:
        states[event.ticker], raised = update_ticker(
            states.get(event.ticker), event, params, now=NOW
        )
        alerts.extend(raised)
    return states, alerts


def test_steady_mixed_news_raises_no_alert() -> None:
    events = _by_time([*_mixed_news("NOKIA", 8 * 60, seed=1), *_mixed_news("UPM", 8 * 60, seed=2)])
    _, alerts = _run_news(events)
    assert alerts == []


def test_a_sharp_shock_raises_exactly_one_alert_per_cooldown() -> None:
    steady = _mixed_news("NOKIA", 6 * 60, seed=3)
    shock_at = T0 + timedelta(hours=3)
    shock = _shock("NOKIA", shock_at)
    _, alerts = _run_news(_by_time([*steady, *shock]))

    assert len(alerts) == 1
    alert = alerts[0]
    assert alert.subject == "NOKIA"
    assert alert.kind in {"sentiment_drop", "negative_burst"}
    assert shock_at <= alert.window_end <= shock_at + timedelta(minutes=6)
    assert alert.evidence_ids and set(alert.evidence_ids) <= {e.id for e in shock}
    assert len(alert.evidence_ids) <= TICKER.max_evidence
    assert alert.evidence == [f"NOKIA profit warning {i.split('-')[1]}" for i in alert.evidence_ids]
    assert alert.model_version == "s1"
    assert alert.raised_at == NOW


def test_a_drop_alert_compares_the_short_window_with_the_baseline() -> None:
    params = TickerParams(burst_min_count=1000)  # only the drop rule can fire
    steady = _mixed_news("NOKIA", 4 * 60, seed=4)
    shock = _shock("NOKIA", T0 + timedelta(hours=3), count=20)
    _, alerts = _run_news(_by_time([*steady, *shock]), params=params)

    assert [a.kind for a in alerts] == ["sentiment_drop"]
    assert alerts[0].window_end >= shock[0].at
    assert alerts[0].value - alerts[0].baseline <= params.drop_threshold
    assert alerts[0].window_end - alerts[0].window_start == params.short_window


def test_a_shock_on_one_ticker_does_not_alert_on_another() -> None:
    steady = [*_mixed_news("NOKIA", 4 * 60, seed=5), *_mixed_news("UPM", 4 * 60, seed=6)]
    _, alerts = _run_news(_by_time([*steady, *_shock("UPM", T0 + timedelta(hours=2))]))
    assert {a.subject for a in alerts} == {"UPM"}


def test_a_new_alert_after_the_cooldown_has_a_new_id() -> None:
    steady = _mixed_news("NOKIA", 6 * 60, seed=7)
    first = _shock("NOKIA", T0 + timedelta(hours=2), prefix="a")
    within = _shock("NOKIA", T0 + timedelta(hours=2, minutes=12), prefix="b")
    after = _shock("NOKIA", T0 + timedelta(hours=3, minutes=30), prefix="c")
    _, alerts = _run_news(_by_time([*steady, *first, *within, *after]))

    assert len(alerts) == 2
    assert alerts[1].window_end - alerts[0].window_end >= TICKER.cooldown
    assert alerts[0].alert_id != alerts[1].alert_id
    assert set(alerts[1].evidence_ids) & {e.id for e in after}


def test_per_kind_cooldown_lets_both_kinds_fire_when_not_shared() -> None:
    params = TickerParams(shared_cooldown=False)
    steady = _mixed_news("NOKIA", 4 * 60, seed=8)
    _, alerts = _run_news(
        _by_time([*steady, *_shock("NOKIA", T0 + timedelta(hours=3), count=20)]), params=params
    )
    assert sorted(a.kind for a in alerts) == ["negative_burst", "sentiment_drop"]


def test_redelivered_news_is_counted_once() -> None:
    steady = _mixed_news("NOKIA", 4 * 60, seed=9)
    shock = _shock("NOKIA", T0 + timedelta(hours=3), count=3)  # under every threshold
    states, alerts = _run_news(_by_time([*steady, *shock]))
    assert alerts == []
    before = states["NOKIA"]

    # The same three items delivered again, twice: still three, no burst, no change.
    states, alerts = _run_news([*shock, *shock], states)
    assert alerts == []
    assert states["NOKIA"] == before


def test_news_older_than_the_window_is_ignored() -> None:
    states, _ = _run_news(_mixed_news("NOKIA", 60, seed=10))
    stale = _shock("NOKIA", T0, count=12)
    assert all(ticker_late(states["NOKIA"], e, TICKER) for e in stale)  # counted as late
    assert not ticker_late(None, stale[0], TICKER)
    after, alerts = _run_news(stale, dict(states))
    assert alerts == [] and after["NOKIA"] == states["NOKIA"]


def test_messages_older_than_the_window_are_late() -> None:
    states, _ = _run_intents(_steady_intent("card_arrival", 60, seed=3))
    old = _surge("card_arrival", T0 - timedelta(hours=2), count=5)
    assert all(intent_late(states["card_arrival"], e, INTENT) for e in old)
    fresh = _surge("card_arrival", T0 + timedelta(minutes=61), count=5)
    assert not any(intent_late(states["card_arrival"], e, INTENT) for e in fresh)


def test_an_alert_recomputed_after_a_crash_keeps_its_id() -> None:
    steady = _mixed_news("NOKIA", 4 * 60, seed=11)
    shock = _shock("NOKIA", T0 + timedelta(hours=3))
    states, _ = _run_news(_by_time(e for e in steady if e.at < shock[0].at))
    snapshot = json.loads(json.dumps(states["NOKIA"].to_dict()))

    _, first = _run_news(shock, {"NOKIA": TickerState.from_dict(snapshot)})
    # The worker crashed after sending the alert but before its state was saved:
    # the restored state sees the same items again and raises the same alert.
    _, again = _run_news(shock, {"NOKIA": TickerState.from_dict(snapshot)})
    assert len(first) == 1
    assert [a.alert_id for a in again] == [first[0].alert_id]


def test_ticker_state_survives_json_between_every_event() -> None:
    events = _by_time(
        [*_mixed_news("NOKIA", 4 * 60, seed=12), *_shock("NOKIA", T0 + timedelta(hours=3))]
    )
    _, direct = _run_news(events)

    stored: dict[str, object] = {}
    through_json: list[Alert] = []
    for event in events:
        raw = stored.get(event.ticker)
        state = None if raw is None else TickerState.from_dict(json.loads(str(raw)))
        state, raised = update_ticker(state, event, TICKER, now=NOW)
        stored[event.ticker] = json.dumps(state.to_dict())
        through_json.extend(raised)
    assert direct and through_json == direct


def _at_id(item: WindowItem) -> tuple[float, str]:
    return (item.at, item.id)


@pytest.mark.parametrize("cap", [40, 1000])
def test_the_ticker_window_and_alerts_are_those_recomputed_from_scratch(cap: int) -> None:
    """The window kept by insertion and bisection, its folds into the baseline and the
    alerts equal a from-scratch reference that re-sorts the window after every item and
    judges it item by item: shuffled, late and duplicate items (the same id at the same
    time), ties in time, past the item cap, with drops and bursts that alert."""
    params = TickerParams(
        short_window=timedelta(minutes=5),
        burst_window=timedelta(minutes=3),
        max_window_items=cap,  # 40: the cap binds; 1,000: the windows' times do
        min_baseline_items=5.0,
        cooldown=timedelta(0),
    )
    rng = random.Random(21)
    start = datetime(2026, 3, 1, 12, tzinfo=UTC)
    retention = params.retention.total_seconds()
    state: TickerState | None = None
    base = TickerState(subject="ACME")  # the reference's baseline and cooldowns
    window: list[WindowItem] = []
    watermark: float | None = None
    fired = 0
    sent: list[NewsEvent] = []
    for n in range(900):
        at = start + timedelta(seconds=rng.choice([n, n, n - 500, n - 1200]) * 2.5)
        score = rng.uniform(-1, -0.2) if (n // 120) % 4 == 3 else rng.uniform(-0.3, 1)
        event = NewsEvent("ACME", f"n{rng.randrange(700)}", "headline", score, at, "s1")
        if sent and rng.random() < 0.15:
            event = rng.choice(sent[-30:])  # redelivered
        sent.append(event)
        late = ticker_late(state, event, params)
        state, raised = update_ticker(state, event, params, now=NOW)
        t = event.at.timestamp()
        if late or any((i.id, i.at) == (event.id, t) for i in window):
            assert raised == [], n
            continue
        watermark = t if watermark is None else max(watermark, t)
        window = sorted([*window, WindowItem(event.id, t, event.score, "headline")], key=_at_id)
        while window and (window[0].at < watermark - retention or len(window) > cap):
            base = _fold(base, window.pop(0), params)
        assert (state.items, state.watermark) == (tuple(window), watermark), n
        assert (state.base_sum, state.base_weight, state.base_time) == (
            base.base_sum,
            base.base_weight,
            base.base_time,
        ), n
        short = [i for i in window if i.at > watermark - params.short_window.total_seconds()]
        burst = [
            i
            for i in window
            if i.at > watermark - params.burst_window.total_seconds()
            and i.score <= params.burst_score
        ]
        mean = sum(i.score for i in short) / len(short)
        expected = []
        if (
            len(short) >= params.min_volume
            and base.base_weight >= params.min_baseline_items
            and mean - base.base_sum / base.base_weight <= params.drop_threshold
        ):
            expected.append(("sentiment_drop", mean, sorted(i.id for i in short)))
        threshold = max(
            params.burst_min_count, params.burst_factor * _expected_negatives(base, params)
        )
        if len(burst) >= threshold:
            expected.append(("negative_burst", float(len(burst)), sorted(i.id for i in burst)))
        got = [(a.kind, a.value, sorted(a.evidence_ids)) for a in raised]
        # evidence: the lowest-scored few of the judged items
        assert [(k, v) for k, v, _ in got] == [(k, v) for k, v, _ in expected], n
        for (_, _, shown), (_, _, judged) in zip(got, expected, strict=True):
            assert set(shown) <= set(judged) and len(shown) == min(len(judged), 5), n
        fired += len(raised)
    assert fired > 5


def test_news_event_from_a_scored_record() -> None:
    scored = ScoredNews(
        id="n1",
        model_version="s2",
        label="negative",
        probs={"negative": 0.9},
        score=-0.85,
        tickers=["NOKIA", "UPM"],
        headline="Nokia warns",
        published_at=T0,
        scored_at=NOW,
    )
    event = NewsEvent.from_scored(scored, "UPM")
    assert (event.ticker, event.id, event.score, event.at) == ("UPM", "n1", -0.85, T0)


# --- complaint spikes ------------------------------------------------------------


def _steady_intent(
    intent: str, minutes: int, *, seed: int, start: datetime = T0, per_minute: int = 1
) -> list[IntentEvent]:
    rng = random.Random(seed)
    return [
        IntentEvent(
            intent,
            f"{intent}-{seed}-{n}-{k}",
            start + timedelta(minutes=n, seconds=rng.randint(0, 59)),
            "i1",
        )
        for n in range(minutes)
        for k in range(per_minute)
    ]


def _surge(
    intent: str, start: datetime, count: int = 30, prefix: str = "surge"
) -> list[IntentEvent]:
    """``count`` messages spread over two minutes."""
    step = 120 / count
    return [
        IntentEvent(intent, f"{prefix}-{n}", start + timedelta(seconds=step * n), "i1")
        for n in range(count)
    ]


def _run_intents(
    events: Iterable[IntentEvent],
    states: dict[str, IntentState] | None = None,
    params: IntentParams = INTENT,
) -> tuple[dict[str, IntentState], list[Alert]]:
    states = {} if states is None else states
    alerts: list[Alert] = []
    for event in sorted(events, key=lambda e: (e.at, e.id)):
        states[event.intent], raised = update_intent(
            states.get(event.intent), event, params, now=NOW
        )
        alerts.extend(raised)
    return states, alerts


def test_steady_intents_raise_no_alert() -> None:
    events = [
        *_steady_intent("card_not_working", 4 * 60, seed=1),
        *_steady_intent("card_arrival", 4 * 60, seed=2, per_minute=4),
        *_steady_intent("age_limit", 4 * 60, seed=3)[::17],
    ]
    _, alerts = _run_intents(events)
    assert alerts == []


def test_a_surge_of_one_intent_raises_a_complaint_spike() -> None:
    steady = [
        *_steady_intent("card_not_working", 3 * 60, seed=4),
        *_steady_intent("card_arrival", 3 * 60, seed=5, per_minute=2),
    ]
    surge_at = T0 + timedelta(hours=2)
    surge = _surge("card_not_working", surge_at)
    _, alerts = _run_intents([*steady, *surge])

    assert len(alerts) == 1
    alert = alerts[0]
    assert (alert.kind, alert.subject) == ("complaint_spike", "card_not_working")
    assert surge_at <= alert.window_end <= surge_at + timedelta(minutes=2)
    assert alert.value >= max(INTENT.min_count, INTENT.factor * alert.baseline)
    assert 3.0 <= alert.baseline <= 8.0  # about one a minute over a five-minute window
    assert set(alert.evidence_ids) & {e.id for e in surge}
    assert alert.evidence == []  # customer messages never leave as text


def test_complaint_spike_cooldown_then_expiry() -> None:
    steady = _steady_intent("card_not_working", 4 * 60, seed=6)
    first = _surge("card_not_working", T0 + timedelta(hours=2), prefix="a")
    within = _surge("card_not_working", T0 + timedelta(hours=2, minutes=15), prefix="b")
    after = _surge("card_not_working", T0 + timedelta(hours=3), prefix="c")
    _, alerts = _run_intents([*steady, *first, *within, *after])

    assert len(alerts) == 2
    assert alerts[0].alert_id != alerts[1].alert_id
    assert set(alerts[1].evidence_ids) & {e.id for e in after}


def test_redelivered_messages_do_not_make_a_spike() -> None:
    steady = _steady_intent("card_not_working", 2 * 60, seed=7)
    small = _surge("card_not_working", T0 + timedelta(hours=1, minutes=30), count=6)
    states, alerts = _run_intents([*steady, *small])
    before = states["card_not_working"]
    # Redelivered five times over: a naive counter would see 36 and alert.
    states, alerts = _run_intents(small * 5, states)
    assert alerts == []
    assert states["card_not_working"] == before


def _through_rows(states: dict[str, IntentState]) -> dict[str, IntentState]:
    """Each state written as its rows (as JSON, like the changelog) and read back."""
    codec = IntentRows()
    table: dict[str, object] = {}
    for key, state in states.items():
        row, beside, gone = codec.write(key, None, None, state)
        assert gone == []
        table.update(json.loads(json.dumps(beside)))
        table[key] = json.loads(json.dumps(row))
    return {key: codec.read(key, table[key], table.get) for key in states}


def test_intent_state_round_trips_through_its_rows_and_alert_ids_are_stable() -> None:
    events = [
        *_steady_intent("card_not_working", 3 * 60, seed=8),
        *_surge("card_not_working", T0 + timedelta(hours=2)),
    ]
    states, direct = _run_intents(events)
    state = states["card_not_working"]
    assert len(state.chunks) > 1 and _through_rows(states) == states

    cut = T0 + timedelta(hours=1)
    early, _ = _run_intents(e for e in events if e.at < cut)
    _, resumed = _run_intents((e for e in events if e.at >= cut), _through_rows(early))
    assert direct and [a.alert_id for a in resumed] == [a.alert_id for a in direct]


def test_an_intent_row_of_the_old_forms_reads_as_the_same_state() -> None:
    """Rows written before the window was split into chunks held it whole: ``ids`` and
    packed ``times`` (2026-12-06), or ``items``, [id, time] pairs (before); a changelog
    written by an older worker is read as the same state. A row whose lists disagree in
    length is refused (the worker then drops it as unreadable)."""
    events = list(_steady_intent("card_not_working", 30 * 60, seed=5))
    states, _ = _run_intents(events)
    state = states["card_not_working"]
    head = state.head_row()
    base = {k: v for k, v in head.items() if k not in ("chunks", "chunk_s", "open")}
    base["bucket_count"] = state.bucket_count(INTENT)
    window = state.window(INTENT)
    packed = WindowChunk(0, tuple(i for i, _ in window), tuple(t for _, t in window)).to_row()
    pairs = {**base, "items": [list(pair) for pair in window]}
    lists = {**base, **packed}
    assert len(state.chunks) > 1
    for old in (pairs, lists):
        row = json.loads(json.dumps(old))
        assert not IntentState.is_head_row(row)
        read = IntentRows().read("card_not_working", row, {}.get)
        assert read.window(INTENT) == window and read.bucket_count(INTENT) == base["bucket_count"]
        assert (read.watermark, read.bucket, read.ewma, read.buckets_seen) == (
            state.watermark,
            state.bucket,
            state.ewma,
            state.buckets_seen,
        )
    with pytest.raises(ValueError, match="ids but"):
        IntentState.from_whole_row({**lists, "ids": lists["ids"][1:]})
    with pytest.raises(ValueError, match="float64s"):
        IntentState.from_whole_row({**lists, "times": "AAAA"})


def test_an_intent_is_not_judged_before_its_baseline_warms_up() -> None:
    # A busy intent seen for the first time: ten a minute is its normal rate.
    events = _steady_intent("card_arrival", 4, seed=9, per_minute=10)
    _, alerts = _run_intents(events)
    assert alerts == []


def test_intent_event_from_a_routed_ticket() -> None:
    ticket = RoutedTicket(
        id="m1",
        customer_id="c1",
        model_version="i7",
        sentiment_model_version="s1",
        intent="card_not_working",
        confidence=0.9,
        queue="cards",
        priority=3,
        sentiment="negative",
        sentiment_score=-0.7,
        low_confidence=False,
        reasons=[],
        sent_at=T0,
        scored_at=NOW,
    )
    event = IntentEvent.from_ticket(ticket)
    assert (event.intent, event.id, event.at, event.model_version) == (
        "card_not_working",
        "m1",
        T0,
        "i7",
    )


# --- shared pieces ---------------------------------------------------------------


def test_alert_id_depends_on_kind_subject_and_bucket_only() -> None:
    a = alert_id("negative_burst", "NOKIA", 10)
    assert a == alert_id("negative_burst", "NOKIA", 10)
    assert (
        len(
            {
                a,
                alert_id("sentiment_drop", "NOKIA", 10),
                alert_id("negative_burst", "UPM", 10),
                alert_id("negative_burst", "NOKIA", 11),
            }
        )
        == 4
    )


@pytest.mark.parametrize(("minutes", "bucket"), [(0, 0), (29, 0), (30, 1), (61, 2)])
def test_window_bucket(minutes: int, bucket: int) -> None:
    start = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes)
    assert window_bucket(start.timestamp(), timedelta(minutes=30)) == bucket


def test_decay_halves_per_half_life() -> None:
    assert decay(3600, timedelta(hours=1)) == pytest.approx(0.5)
    assert decay(-5, timedelta(hours=1)) == 1.0


def test_window_bucket_of_a_zero_length_is_the_second() -> None:
    assert window_bucket(90.5, timedelta(0)) == 90


# --- hostile input ---------------------------------------------------------------


def test_an_item_dated_far_ahead_of_the_clock_is_refused_not_folded_in() -> None:
    states, _ = _run_news(_mixed_news("NOKIA", 60, seed=11))
    ahead = NewsEvent("NOKIA", "future", "from 2099", -0.9, NOW + timedelta(days=2), "s1")
    with pytest.raises(InvalidRecordError) as caught:
        update_ticker(states["NOKIA"], ahead, TICKER, now=NOW)
    assert caught.value.reason == "event_time_in_future"
    soon = NewsEvent("NOKIA", "soon", "clock skew", 0.1, NOW + timedelta(hours=1), "s1")
    assert update_ticker(states["NOKIA"], soon, TICKER, now=NOW)[0].watermark is not None
    surge = IntentEvent("card_arrival", "m-future", NOW + timedelta(days=2), "i1")
    with pytest.raises(InvalidRecordError) as caught:
        update_intent(None, surge, INTENT, now=NOW)
    assert caught.value.reason == "event_time_in_future"


@pytest.mark.parametrize(
    ("edge", "step"),
    [(EARLIEST_TIME, timedelta(seconds=1)), (LATEST_TIME, timedelta(seconds=-1))],
)
def test_the_monitors_raise_alerts_at_the_edges_of_the_time_range(
    edge: datetime, step: timedelta
) -> None:
    times = sorted(edge + step * (n + 1) for n in range(INTENT.min_count))
    states: dict[str, TickerState] = {}
    news: list[Alert] = []
    for n, at in enumerate(times):
        event = NewsEvent("EDGE", f"e{n}", "warning", -0.95, at, "s1")
        states["EDGE"], raised = update_ticker(states.get("EDGE"), event, TICKER, now=times[-1])
        news.extend(raised)
    assert [a.kind for a in news] == ["negative_burst"]
    intent: IntentState | None = None
    spikes: list[Alert] = []
    for n, at in enumerate(times):
        event = IntentEvent("lost", f"m{n}", at, "i1")
        params = IntentParams(warmup_buckets=0)
        intent, raised = update_intent(intent, event, params, now=times[-1])
        spikes.extend(raised)
    assert [a.kind for a in spikes] == ["complaint_spike"]


def _scored_item(tickers: list[str]) -> ScoredNews:
    return ScoredNews(
        id="n1",
        model_version="s1",
        label="negative",
        probs={"negative": 1.0},
        score=-1.0,
        tickers=tickers,
        headline="h",
        published_at=T0,
        scored_at=T0,
    )


def test_the_key_of_a_scored_item_must_be_one_of_its_tickers() -> None:
    assert ticker_of(b"NOKIA", _scored_item(["UPM", "NOKIA"])) == "NOKIA"
    assert ticker_of(None, _scored_item([])) is None
    assert ticker_of(b"", _scored_item([])) is None
    for key, tickers in [
        (b"MSFT", ["NOKIA"]),
        (b"\xff\xfe", ["NOKIA"]),
        (None, ["NOKIA"]),
        (b"NOKIA", []),
    ]:
        with pytest.raises(InvalidRecordError) as caught:
            ticker_of(key, _scored_item(tickers))
        assert caught.value.reason == "invalid_key"


def test_the_intent_window_is_the_sorted_and_trimmed_one_whatever_the_arrival_order() -> None:
    """The window kept in chunks by insertion and bisection is exactly the window re-sorted
    and re-filtered from scratch after every message: late, shuffled and duplicate messages
    (a duplicate: the same id at the same time), with ties in time, past the item cap."""
    params = IntentParams(max_window_items=100)
    rng = random.Random(3)
    start = datetime(2026, 3, 1, 12, tzinfo=UTC)
    state: IntentState | None = None
    expected: list[tuple[str, float]] = []
    watermark: float | None = None
    span = params.window.total_seconds()
    for n in range(600):
        at = start + timedelta(seconds=rng.choice([n, n, n - 200, n - 400]) * 0.9)
        event = IntentEvent("card_arrival", f"m{rng.randrange(400)}", at, "i1")
        late = intent_late(state, event, params)
        state, _ = update_intent(state, event, params, now=start + timedelta(hours=2))
        t = at.timestamp()
        if late or (event.id, t) in expected:
            continue
        watermark = t if watermark is None else max(watermark, t)
        expected = sorted([*expected, (event.id, t)], key=lambda i: (i[1], i[0]))
        expected = [i for i in expected if i[1] > watermark - span][-params.max_window_items :]
        assert state.window(params) == expected, n
