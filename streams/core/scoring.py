"""Pure functions from a decoded batch and its predictions to the scorers' output records."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from models.prediction import Prediction
from streams.core.records import CustomerMessage, NewsItem, ScoredMessage, ScoredNews
from streams.core.routing import top_intents
from streams.core.tickers import CompanyDictionary, extract_tickers


def signed_score(probs: dict[str, float]) -> float:
    """P(positive) - P(negative), clipped to [-1, 1]."""
    value = probs.get("positive", 0.0) - probs.get("negative", 0.0)
    return max(-1.0, min(1.0, value))


def news_text(item: NewsItem) -> str:
    """What the sentiment model reads for a news item: the headline (the body is context)."""
    return item.headline


def score_news(
    items: Sequence[NewsItem],
    predictions: Sequence[Prediction],
    *,
    model_version: str,
    dictionary: CompanyDictionary,
    now: datetime,
) -> list[ScoredNews]:
    """One scored record per news item, with the tickers it is about."""
    if len(items) != len(predictions):
        raise ValueError(f"{len(items)} items but {len(predictions)} predictions")
    return [
        ScoredNews(
            id=item.id,
            model_version=model_version,
            label=pred.label,
            probs=pred.probs,
            score=signed_score(pred.probs),
            tickers=extract_tickers(item, dictionary),
            headline=item.headline,
            published_at=item.published_at,
            scored_at=now,
        )
        for item, pred in zip(items, predictions, strict=True)
    ]


def score_messages(
    messages: Sequence[CustomerMessage],
    intents: Sequence[Prediction],
    sentiments: Sequence[Prediction],
    *,
    intent_version: str,
    sentiment_version: str,
    now: datetime,
) -> list[ScoredMessage]:
    """One scored record per customer message: top intents and sentiment, no text."""
    return [
        ScoredMessage(
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
        for msg, intent, sentiment in zip(messages, intents, sentiments, strict=True)
    ]
