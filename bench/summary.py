"""Like-with-like comparisons: the pipeline against the ceiling and the naive recipe."""

from __future__ import annotations

import math
from typing import Any

from bench.ceiling import lookup
from bench.stats import combined_rate

TARGET_CEILING = 0.9
TARGET_NAIVE = 20.0
TARGET_P99_MS = 100.0


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 and not math.isnan(b) else math.nan


def compare(results: dict[str, Any]) -> dict[str, Any]:
    """The ceilings and naive rates that match the pipeline's work, the ratios and targets.

    A customer message passes two models (intent, then sentiment, both on the message
    text), so its ceiling is 1 / (1/intent + 1/sentiment) measured on BANKING77 texts, at
    the precision the worker serves and the batch size it is configured with; a news
    item passes the sentiment model once (Twitter headlines).
    """
    rows = results["ceiling"]["rows"]
    precision = results["models"]["served_precision"]
    headline = results["pipeline"]
    batch = int(headline["batch_size"])
    intent = lookup(rows, "intent", "banking77", precision, batch)
    sentiment_msgs = lookup(rows, "sentiment", "banking77", precision, batch)
    ceiling_messages = combined_rate(intent, sentiment_msgs)
    ceiling_news = lookup(rows, "sentiment", "twitter", precision, batch)
    naive = results["naive"]["rates"]
    naive_messages = combined_rate(naive["intent/banking77"], naive["sentiment/banking77"])
    naive_news = naive["sentiment/twitter"]
    messages = float(headline["messages"]["steady_per_s"])
    news = float(headline["news"]["steady_per_s"])
    p99 = float(headline["latency"]["p99_ms"])
    rounds = headline.get("rounds")
    if rounds:  # per-round ratios against the ceiling measured in the same round
        ceiling_messages = rounds["ceiling_messages_per_s"]["median"]
        ceiling_news = rounds["ceiling_news_per_s"]["median"]
        vs_messages = rounds["messages_vs_ceiling"]["median"]
        vs_news = rounds["news_vs_ceiling"]["median"]
    else:
        vs_messages = _ratio(messages, ceiling_messages)
        vs_news = _ratio(news, ceiling_news)
    ratios = {
        "messages_vs_ceiling": vs_messages,
        "news_vs_ceiling": vs_news,
        **(
            {
                "messages_vs_serial_ceiling": rounds["messages_vs_serial_ceiling"]["median"],
                "news_vs_serial_ceiling": rounds["news_vs_serial_ceiling"]["median"],
            }
            if rounds and "messages_vs_serial_ceiling" in rounds
            else {}
        ),
        "messages_vs_naive": _ratio(messages, naive_messages),
        "news_vs_naive": _ratio(news, naive_news),
    }
    return {
        "rounds": len(rounds["rounds"]) if rounds else 0,
        "basis": (
            f"{precision} at batch size {batch} (the worker's); messages = intent + sentiment "
            "on BANKING77 texts, ceiling 1/(1/intent + 1/sentiment); news = sentiment on "
            "Twitter headlines"
        ),
        "ceiling_messages_per_s": ceiling_messages,
        "ceiling_news_per_s": ceiling_news,
        "naive_messages_per_s": naive_messages,
        "naive_news_per_s": naive_news,
        "ratios": ratios,
        "targets": {
            "messages >= 0.9 x ceiling": ratios["messages_vs_ceiling"] >= TARGET_CEILING,
            "news >= 0.9 x ceiling": ratios["news_vs_ceiling"] >= TARGET_CEILING,
            "messages >= 20 x naive": ratios["messages_vs_naive"] >= TARGET_NAIVE,
            "news >= 20 x naive": ratios["news_vs_naive"] >= TARGET_NAIVE,
            "p99 <= 100 ms at half load": p99 <= TARGET_P99_MS,
        },
    }
