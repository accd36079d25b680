"""Pure functions from a decoded record and its predictions to the scorers' output records
(one record at a time, so a record that fails fails alone)."""

from __future__ import annotations

from datetime import datetime

from models.prediction import Prediction
from streams.core.records import CustomerMessage, NewsItem, ScoredMessage, ScoredNews
from streams.core.routing import top_intents
from streams.core.tickers import CompanyDictionary, extract_tickers

DEFAULT_MAX_TICKERS = 20
"""Tickers one news item is scored for; a headline naming more is noted, not fanned out."""


def signed_score(probs: dict[str, float]) -> float:
    """P(positive) - P(negative), clipped to [-1, 1]."""
    value = probs.get("positive", 0.0) - probs.get("negative", 0.0)
    return max(-1.0, min(1.0, value))


def news_text(item: NewsItem) -> str:
    """What the sentiment model reads for a news item: the headline (the body is context)."""
    return item.headline


def score_news_item(
    item: NewsItem,
    pred: Prediction,
    *,
    model_version: str,
    dictionary: CompanyDictionary,
    now: datetime,
    max_tickers: int = DEFAULT_MAX_TICKERS,
) -> ScoredNews:
    """The scored record of one news item, for at most ``max_tickers`` of its tickers.

    Tickers past the bound are counted in ``tickers_truncated``: each kept ticker becomes
    one record on ``news.scored``, so the bound caps what one item can fan out to.
    """
    tickers = extract_tickers(item, dictionary)
    kept = tickers[: max(max_tickers, 0)]
    return ScoredNews(
        id=item.id,
        model_version=model_version,
        label=pred.label,
        probs=pred.probs,
        score=signed_score(pred.probs),
        tickers=kept,
        tickers_truncated=len(tickers) - len(kept),
        headline=item.headline,
        published_at=item.published_at,
        scored_at=now,
    )


def score_message(
    msg: CustomerMessage,
    intent: Prediction,
    sentiment: Prediction,
    *,
    intent_version: str,
    sentiment_version: str,
    now: datetime,
) -> ScoredMessage:
    """The scored record of one customer message: top intents and sentiment, no text."""
    return ScoredMessage(
        id=msg.id,
        customer_id=msg.customer_id,
        channel=msg.channel,
        model_version=intent_version,
        sentiment_model_version=sentiment_version,
        intent_probs=top_intents(intent.probs),
        sentiment=sentiment.label,
        sentiment_score=signed_score(sentiment.probs),
        sent_at=msg.sent_at,
        scored_at=now,
    )
