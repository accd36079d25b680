"""Ticker extraction: the record's own tickers, else cashtags, else company names."""

from __future__ import annotations

import itertools
import string
from datetime import UTC, datetime
from pathlib import Path

import pytest

from models.prediction import Prediction
from streams.core.records import NewsItem, ScoredNews
from streams.core.scoring import DEFAULT_MAX_TICKERS, score_news_item
from streams.core.tickers import CompanyDictionary, extract_tickers, find_cashtags, normalise_ticker
from streams.errors import ConfigFileError

COMPANIES = Path(__file__).resolve().parents[2] / "deploy" / "config" / "companies.toml"
DICTIONARY = CompanyDictionary.load(COMPANIES)


def _item(headline: str, body: str | None = None, tickers: list[str] | None = None) -> NewsItem:
    return NewsItem(
        id="n1",
        published_at=datetime(2024, 1, 2, tzinfo=UTC),
        source="wire",
        headline=headline,
        body=body,
        tickers=tickers,
    )


def test_the_records_tickers_win_normalised_deduplicated_in_order() -> None:
    item = _item("$AAPL rallies as Nokia slips", tickers=[" msft", "$nokia", "MSFT", "", "a b"])
    assert extract_tickers(item, DICTIONARY) == ["MSFT", "NOKIA"]


@pytest.mark.parametrize("tickers", [None, [], ["", "!!"]])
def test_without_usable_record_tickers_cashtags_are_used(tickers: list[str] | None) -> None:
    item = _item("$TSLA and $BRK.B up; Nokia flat", tickers=tickers)
    assert extract_tickers(item, DICTIONARY) == ["TSLA", "BRK.B"]


def test_cashtags_ignore_amounts_and_currency_prefixes() -> None:
    text = "Deal worth $5 bn, $100M bond, US$7 dividend and $1.2B buyback; $NOKIA, $AAPL. $AAPL's"
    assert find_cashtags(text) == ["NOKIA", "AAPL"]


def test_cashtags_in_the_body_count() -> None:
    assert extract_tickers(_item("Markets today", body="Shares of $UPM rose"), DICTIONARY) == [
        "UPM"
    ]


def test_company_names_match_whole_words_regardless_of_case() -> None:
    item = _item("NOKIA and Stora Enso sign deal", body="wärtsilä to supply engines to nordea")
    assert extract_tickers(item, DICTIONARY) == ["NOKIA", "STERV", "WRT1V", "NDA-FI"]


def test_company_names_inside_other_words_do_not_match() -> None:
    item = _item("Konecranes and Pineapple Express report; Nokian Tyres up")
    assert extract_tickers(item, DICTIONARY) == []


def test_the_longest_name_wins_and_a_ticker_is_listed_once() -> None:
    item = _item("JPMorgan Chase says JP Morgan and JPMorgan staff back Apple Inc")
    assert extract_tickers(item, DICTIONARY) == ["JPM", "AAPL"]


def test_the_shipped_dictionary_covers_large_and_finnish_companies() -> None:
    assert len(DICTIONARY.names) >= 40
    for ticker in ("AAPL", "MSFT", "NOKIA", "STERV", "UPM", "KNEBV", "FORTUM", "ELISA", "WRT1V"):
        assert ticker in DICTIONARY.names
    assert DICTIONARY.find("Wartsila and Wärtsilä") == ["WRT1V"]


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[companies]\nAAPL = ["Apple"]\n[extra]\nx = 1', "extra"),
        ('[companies]\nAAPL = "Apple"', "companies.AAPL"),
        ("[companies]\nAAPL = []", "companies.AAPL"),
        ('[companies]\n"A B" = ["Ab"]', "companies.A B"),
        ('[companies]\nAAPL = ["Apple"]\nAPLE = ["apple"]', "companies"),
        ("companies = 3", "companies"),
    ],
)
def test_a_bad_dictionary_is_refused_naming_the_key(text: str, key: str) -> None:
    with pytest.raises(ConfigFileError) as caught:
        CompanyDictionary.parse(text, source="companies.toml")
    assert caught.value.key == key
    assert str(caught.value).startswith("companies.toml: ")


def test_a_missing_dictionary_file_is_named() -> None:
    with pytest.raises(ConfigFileError, match=r"no-such\.toml: file not found"):
        CompanyDictionary.load(COMPANIES.with_name("no-such.toml"))


@pytest.mark.parametrize(
    ("raw", "ticker"),
    [("aapl", "AAPL"), ("$brk.b", "BRK.B"), (" nda-fi ", "NDA-FI"), ("a b", None), ("", None)],
)
def test_normalise_ticker(raw: str, ticker: str | None) -> None:
    assert normalise_ticker(raw) == ticker


def _scored(item: NewsItem, max_tickers: int = DEFAULT_MAX_TICKERS) -> ScoredNews:
    pred = Prediction(label="negative", probs={"negative": 0.8, "neutral": 0.1, "positive": 0.1})
    return score_news_item(
        item,
        pred,
        model_version="s1",
        dictionary=DICTIONARY,
        now=datetime(2024, 1, 2, tzinfo=UTC),
        max_tickers=max_tickers,
    )


def test_a_headline_with_thousands_of_cashtags_is_bounded_and_the_excess_noted() -> None:
    names = ["".join(letters) for letters in itertools.product(string.ascii_uppercase, repeat=3)]
    headline = " ".join(f"${name}" for name in names[:5000])
    scored = _scored(_item(headline))
    assert scored.tickers == names[:DEFAULT_MAX_TICKERS]
    assert scored.tickers_truncated == 5000 - DEFAULT_MAX_TICKERS
    listed = _scored(_item("Markets", tickers=names[:50]), max_tickers=3)
    assert (listed.tickers, listed.tickers_truncated) == (names[:3], 47)


def test_an_item_within_the_bound_is_not_truncated() -> None:
    scored = _scored(_item("$AAPL and $MSFT"))
    assert (scored.tickers, scored.tickers_truncated) == (["AAPL", "MSFT"], 0)
    assert DEFAULT_MAX_TICKERS == 20
