"""The message scorer's pure steps per customer message, no Kafka, no models.

    python -m bench.steps [--messages 2000] [--rounds 5]

Decodes BANKING77 messages, scores each with a fixed intent distribution (77 labels,
skewed as the intent model's are) and sentiment, routes it and ranks its next-best actions
against the shipped ``deploy/config`` routing table and action catalog, and encodes the
ticket and recommendation: the work of the message scorer's batch besides inference and
Kafka. Prints the median microseconds per message of each step over the rounds. Up to
b8de66b ranking the actions cost 70 µs per message and the whole routing step 92 (every
action's weight looked up for each of a message's top intents; README, Benchmarks).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.pipeline import bench_texts
from models.prediction import Prediction
from streams.core.recommend import ActionCatalog, recommend
from streams.core.records import CustomerMessage, decode, encode
from streams.core.routing import CustomerHistory, RoutingTable
from streams.core.scoring import score_message
from streams.core.ticketing import route_and_recommend
from streams.settings import Settings


def _intent(labels: Sequence[str], rng: random.Random) -> Prediction:
    weights = [rng.random() ** 8 for _ in labels]  # a few labels take most of the mass
    total = sum(weights)
    probs = {label: w / total for label, w in zip(labels, weights, strict=True)}
    return Prediction(max(probs, key=probs.__getitem__), probs)


def per_message_us(messages: int, config: Path, data_dir: Path) -> dict[str, float]:
    """Microseconds per message of each step, over ``messages`` messages."""
    routing = RoutingTable.load(config / "routing.toml")
    catalog = ActionCatalog.load(config / "actions.toml")
    labels = sorted(routing.intents)
    rng = random.Random(3)
    now = datetime(2026, 12, 6, 12, tzinfo=UTC)
    texts = bench_texts(data_dir).messages
    raws = [
        encode(
            CustomerMessage(
                id=f"m{i}",
                sent_at=now,
                customer_id=f"c{i % 97}",
                channel="chat",
                text=texts[i % len(texts)],
            )
        )
        for i in range(messages)
    ]
    intents = [_intent(labels, rng) for _ in range(messages)]
    sentiment = Prediction("negative", {"negative": 0.7, "neutral": 0.2, "positive": 0.1})
    out: dict[str, float] = {}

    def timed(name: str, step: Callable[[int], Any]) -> list[Any]:
        started = time.perf_counter()
        results = [step(i) for i in range(messages)]
        out[name] = (time.perf_counter() - started) / messages * 1e6
        return results

    decoded = timed("decode", lambda i: decode(CustomerMessage, raws[i]))
    scored = timed(
        "score_message",
        lambda i: score_message(
            decoded[i],
            intents[i],
            sentiment,
            intent_version="v1",
            sentiment_version="v1",
            now=now,
        ),
    )
    timed("recommend (of route)", lambda i: recommend(scored[i].intent_probs, catalog))
    outcomes = timed(
        "route_and_recommend",
        lambda i: route_and_recommend(scored[i], CustomerHistory(), routing, catalog, now=now),
    )
    timed(
        "encode ticket + recommendation",
        lambda i: (encode(outcomes[i].ticket), encode(outcomes[i].recommendation)),
    )
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    settings = Settings()
    rounds = [
        per_message_us(args.messages, settings.config_dir, settings.data_dir)
        for _ in range(args.rounds)
    ]
    for name in rounds[0]:
        values = [r[name] for r in rounds]
        print(
            f"{name:32s} {statistics.median(values):7.1f} µs per message "
            f"(min-max {min(values):.1f}-{max(values):.1f})"
        )


if __name__ == "__main__":
    main()
