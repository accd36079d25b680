"""Dead letters of hostile records: original bytes kept, sizes bounded, always encodable."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

from streams.core.records import DeadLetter, decode, encode
from streams.errors import InvalidRecordError
from streams.runtime.delivery import (
    MAX_DEAD_LETTER_HEADERS,
    MAX_DEAD_LETTER_KEY,
    MAX_DETAIL_CHARS,
    dead_letter_for,
    record_error,
)

ERROR = InvalidRecordError("invalid_header", "header 0: the name is not UTF-8 text")


@dataclass
class Message:
    value: bytes | None = b"{}"
    key: bytes | None = b"k"
    headers: Any = field(default_factory=list)
    topic: str = "messages.raw"
    partition: int = 1
    offset: int = 7


def _round_trip(message: Message, error: InvalidRecordError = ERROR) -> DeadLetter:
    letter = dead_letter_for(message, error)
    return decode(DeadLetter, encode(letter), max_bytes=4 * 1024 * 1024)


def test_header_names_that_are_not_utf8_keep_their_bytes() -> None:
    letter = _round_trip(Message(headers=[("\udcff\udcfeX", b"v"), ("ok", None), (b"raw", b"")]))
    assert letter.headers == [("\\xff\\xfeX", "dg=="), ("ok", None), ("raw", "")]
    assert letter.header_names_b64 is not None
    assert [base64.b64decode(n) for n in letter.header_names_b64] == [b"\xff\xfeX", b"ok", b"raw"]
    clean = _round_trip(Message(headers=[("trace", b"1")]))
    assert clean.header_names_b64 is None and clean.headers == [("trace", "MQ==")]


def test_a_huge_key_and_huge_headers_are_kept_in_part() -> None:
    key = b"k" * (MAX_DEAD_LETTER_KEY * 4)
    headers = [(f"h{n}", b"v" * 20_000) for n in range(20)]
    letter = _round_trip(Message(key=key, headers=headers))
    assert letter.key is not None and base64.b64decode(letter.key) == key[:MAX_DEAD_LETTER_KEY]
    assert letter.key_size == len(key)
    assert letter.headers_truncated
    kept = sum(len(n) + len(base64.b64decode(v or "")) for n, v in letter.headers)
    assert 0 < kept <= MAX_DEAD_LETTER_HEADERS
    assert len(encode(letter)) < 512 * 1024


def test_a_dead_letter_of_a_tombstone_and_a_long_detail() -> None:
    long = InvalidRecordError("validation_error", "x" * 10_000)
    letter = _round_trip(Message(value=None, key=None), long)
    assert (letter.key, letter.key_size, letter.value_b64, letter.value_size) == (None, 0, "", 0)
    assert len(letter.detail) == MAX_DETAIL_CHARS


def test_an_unexpected_error_is_named_by_step_type_and_place_never_its_message() -> None:
    def deep() -> None:
        raise KeyError("customer 4111 said something private")

    try:
        deep()
    except KeyError as exc:
        error = record_error("route", exc)
    assert error.reason == "processing_error"
    assert error.detail.startswith("route: KeyError at test_dead_letters.py:")
    assert error.detail.endswith(" in deep") and "4111" not in error.detail
    same = InvalidRecordError("invalid_key", "the key is not the record's intent")
    assert record_error("key", same) is same
    assert json.loads(encode(dead_letter_for(Message(), error)))["reason"] == "processing_error"
