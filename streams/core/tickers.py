"""Which tickers a news item is about: from the record, else cashtags, else company names."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

from streams.core.records import NewsItem, load_toml, parse_toml
from streams.errors import ConfigFileError

_TICKER_RE = re.compile(r"^[A-Z0-9][A-Z0-9.\-]{0,19}$")
# $AAPL, $BRK.B; not $5, $100M, US$5 or $aapl (lower case is too often prose: "$bn").
_CASHTAG_RE = re.compile(r"(?<![\w$])\$([A-Z]{1,6}(?:\.[A-Z]{1,2})?)(?!\w)")

CompanyName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=2)]


class _CompaniesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    companies: dict[str, list[CompanyName]]


def normalise_ticker(raw: str) -> str | None:
    """Upper-case a ticker and drop a leading ``$``; None when it is not ticker-shaped."""
    ticker = raw.strip().lstrip("$").upper()
    return ticker if _TICKER_RE.match(ticker) else None


def _dedupe(tickers: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(tickers))


def _fold(text: str) -> str:
    return unicodedata.normalize("NFC", text).casefold()


@dataclass(frozen=True)
class CompanyDictionary:
    """Company names per ticker, matched as whole words regardless of case."""

    names: Mapping[str, tuple[str, ...]]
    _by_name: dict[str, str] = field(init=False, repr=False, compare=False)
    _pattern: re.Pattern[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_name: dict[str, str] = {}
        for ticker, names in self.names.items():
            for name in names:
                folded = _fold(name)
                other = by_name.setdefault(folded, ticker)
                if other != ticker:
                    raise ValueError(f"company name {name!r} is listed for {other} and {ticker}")
        object.__setattr__(self, "_by_name", by_name)
        alternatives = sorted(by_name, key=lambda n: (-len(n), n))
        pattern = (
            re.compile(r"(?<!\w)(" + "|".join(map(re.escape, alternatives)) + r")(?!\w)")
            if alternatives
            else None
        )
        object.__setattr__(self, "_pattern", pattern)

    @classmethod
    def load(cls, path: str | Path) -> CompanyDictionary:
        """Read ``[companies] TICKER = ["Name", ...]`` from a TOML file."""
        return cls._build(load_toml(path, _CompaniesFile), str(path))

    @classmethod
    def parse(cls, text: str, *, source: str = "<string>") -> CompanyDictionary:
        """Like ``load``, from TOML text."""
        return cls._build(parse_toml(text, _CompaniesFile, source=source), source)

    @classmethod
    def _build(cls, parsed: _CompaniesFile, path: str) -> CompanyDictionary:
        names: dict[str, tuple[str, ...]] = {}
        for raw, company_names in parsed.companies.items():
            ticker = normalise_ticker(raw)
            if ticker is None or ticker in names:
                problem = "not a ticker symbol" if ticker is None else "ticker listed twice"
                raise ConfigFileError(path, f"companies.{raw}", problem)
            if not company_names:
                raise ConfigFileError(path, f"companies.{raw}", "no company names")
            names[ticker] = tuple(company_names)
        try:
            return cls(names)
        except ValueError as exc:
            raise ConfigFileError(path, "companies", str(exc)) from None

    def find(self, text: str) -> list[str]:
        """Tickers whose company names occur in ``text``, in order of first mention."""
        if self._pattern is None:
            return []
        folded = _fold(text)
        return _dedupe(self._by_name[m.group(1)] for m in self._pattern.finditer(folded))


def find_cashtags(text: str) -> list[str]:
    """Cashtags such as ``$AAPL`` or ``$BRK.B`` in order of first mention."""
    return _dedupe(m.group(1) for m in _CASHTAG_RE.finditer(text))


def extract_tickers(item: NewsItem, dictionary: CompanyDictionary) -> list[str]:
    """The item's own tickers if it names any, else its cashtags, else company-name matches."""
    if item.tickers:
        own = _dedupe(t for t in map(normalise_ticker, item.tickers) if t is not None)
        if own:
            return own
    text = item.headline if item.body is None else f"{item.headline}\n{item.body}"
    return find_cashtags(text) or dictionary.find(text)
