"""The record guard: a header name that is not UTF-8 no longer stops aiokafka's fetcher.

These tests build the record batches a Kafka producer writes (kafka-python's builder, the
same v2 wire format) and read them the way aiokafka's fetcher does. The first one reproduces
the upstream failure the guard exists for: when an aiokafka upgrade makes it fail, the
guard may no longer be needed.
"""

from __future__ import annotations

from typing import Any

import aiokafka
import pytest
from aiokafka.record.memory_records import MemoryRecords
from kafka.record.default_records import DefaultRecordBatchBuilder

from streams.errors import ConfigurationError
from streams.runtime import record_guard
from streams.runtime.record_guard import GuardedRecords

BAD_NAME = b"\xff\xfetrace"


class _RawName(str):
    """A header name whose wire bytes are ``raw`` (kafka-python encodes names with
    ``name.encode("utf-8")``; this is how a producer in another language can send any bytes)."""

    raw = BAD_NAME

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return self.raw


def _batch(base_offset: int, records: list[tuple[bytes, list[tuple[str, bytes]]]]) -> bytes:
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=0,
        is_transactional=False,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 20,
    )
    for delta, (value, headers) in enumerate(records):
        builder.append(delta, timestamp=1_700_000_000_000, key=b"k", value=value, headers=headers)
    data = bytearray(builder.build())
    data[0:8] = base_offset.to_bytes(8, "big")  # the broker assigns the base offset
    return bytes(data)


FETCH = _batch(0, [(b"good-0", [])]) + _batch(
    1,
    [
        (b"good-1", [("trace", b"t1")]),
        (b"bad-2", [("ok", b"x"), (_RawName("trace"), b"t2")]),
        (b"good-3", []),
    ],
)


def _read(records: Any) -> list[Any]:
    out = []
    while records.has_next():
        batch = records.next_batch()
        assert batch.validate_crc()
        out.extend(batch)
    return out


def test_upstream_aiokafka_fails_on_a_header_name_that_is_not_utf8() -> None:
    with pytest.raises(UnicodeDecodeError):
        _read(MemoryRecords(FETCH))


def test_the_guard_reads_every_record_keeping_the_names_bytes() -> None:
    records = _read(GuardedRecords(FETCH))
    assert [r.offset for r in records] == [0, 1, 2, 3]
    assert [r.value for r in records] == [b"good-0", b"good-1", b"bad-2", b"good-3"]
    assert records[1].headers == [("trace", b"t1")]
    ok, bad = records[2].headers
    assert ok == ("ok", b"x")
    assert bad[0].encode("utf-8", "surrogateescape") == BAD_NAME and bad[1] == b"t2"


def test_a_guarded_batch_behaves_like_aiokafkas_own() -> None:
    clean = _batch(7, [(b"a", [("h", b"1")]), (b"b", [])])
    guarded, native = GuardedRecords(clean).next_batch(), MemoryRecords(clean).next_batch()
    for name in ("base_offset", "next_offset", "is_control_batch", "is_transactional"):
        assert getattr(guarded, name) == getattr(native, name)
    assert [(r.offset, r.value, r.headers) for r in guarded] == [
        (r.offset, r.value, r.headers) for r in native
    ]


def test_a_compressed_batch_is_read_leniently_too() -> None:
    builder = DefaultRecordBatchBuilder(2, 1, False, -1, -1, -1, 1 << 20)  # gzip
    builder.append(0, timestamp=1, key=None, value=b"x" * 200, headers=[])
    builder.append(1, timestamp=1, key=None, value=b"y", headers=[(_RawName("n"), b"v")])
    records = _read(GuardedRecords(bytes(builder.build())))
    assert [r.value for r in records] == [b"x" * 200, b"y"]


def test_install_refuses_an_aiokafka_release_it_was_not_checked_against(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from aiokafka.consumer import fetcher

    monkeypatch.setattr(fetcher, "MemoryRecords", fetcher.MemoryRecords)
    record_guard.install()
    assert fetcher.MemoryRecords is GuardedRecords
    monkeypatch.setattr(aiokafka, "__version__", "0.99.0")
    with pytest.raises(ConfigurationError, match=r"aiokafka 0\.14\.0, not the installed 0\.99\.0"):
        record_guard.install()
