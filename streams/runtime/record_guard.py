"""A guard against a record whose header name is not UTF-8 stopping its partition for good.

aiokafka decodes every header name as UTF-8 while it reads a fetched batch
(``aiokafka/record/_crecords/default_records.pyx``, ``DefaultRecordBatch._read_msg``, line 362
in aiokafka 0.14.0). A name that is not UTF-8 raises ``UnicodeDecodeError`` out of
``AIOKafkaConsumer.getmany`` (``fetcher.py`` ``PartitionRecords._unpack_records`` ->
``FetchResult.getall``), inside faust's consumer before any agent sees the record; every retry
fetches the same batch again, so the worker fails on that record forever.

The guard gives the fetcher a record reader that reads each batch with aiokafka's own (C)
reader and, only for a batch where that reader fails on a header name, re-reads the rest of
the batch with aiokafka's Python reader, keeping such a name as ``str`` whose non-UTF-8 bytes
are lone surrogates (``surrogateescape``: ``name.encode("utf-8", "surrogateescape")`` gives
the original bytes back). The agents then dead-letter the record (``invalid_header``,
:func:`streams.core.records.check_header_names`) and go on.

It replaces private parts of aiokafka, so it refuses to install on another aiokafka release
than the one it was written and tested for; ``tests/unit/test_record_guard.py`` reproduces
the upstream failure, so an upgrade shows at once whether the guard is still needed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from streams.errors import ConfigurationError

logger = logging.getLogger(__name__)

SUPPORTED_AIOKAFKA = ("0.14.0",)
"""aiokafka releases whose fetcher and record readers this guard was checked against."""


class _LenientSlice(bytes):
    """A slice of a record buffer whose ``decode`` keeps undecodable bytes as surrogates."""

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        return bytes.decode(self, encoding, "surrogateescape")


class _LenientBuffer(bytearray):
    """A batch buffer whose slices decode leniently (aiokafka's Python reader decodes each
    header name with ``buffer[start:end].decode("utf-8")``)."""

    def __getitem__(self, index: Any) -> Any:
        item = super().__getitem__(index)
        return _LenientSlice(item) if isinstance(index, slice) else item


def lenient_records(data: Any, skip: int) -> Iterator[Any]:
    """The records of one v2 batch after the first ``skip``, read by aiokafka's Python
    reader with lenient header names."""
    from aiokafka.record.default_records import _DefaultRecordBatchPy

    batch = _DefaultRecordBatchPy(data)
    iter(batch)  # decompresses into a new buffer
    batch._buffer = _LenientBuffer(batch._buffer)
    for n, record in enumerate(batch):
        if n >= skip:
            yield record


class GuardedBatch:
    """One v2 record batch: aiokafka's C reader, and the lenient reader from the first
    record the C reader cannot decode."""

    def __init__(self, data: Any, batch: Any) -> None:
        self._data = data
        self._batch = batch
        self._read = 0
        self._lenient: Iterator[Any] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._batch, name)

    def __iter__(self) -> GuardedBatch:
        iter(self._batch)
        return self

    def __next__(self) -> Any:
        if self._lenient is None:
            try:
                record = next(self._batch)
            except UnicodeDecodeError:
                logger.warning(
                    "a record of the batch at offset %s has a header name that is not "
                    "UTF-8; reading the rest of the batch leniently",
                    self._batch.base_offset,
                )
                self._lenient = lenient_records(self._data, self._read)
            else:
                self._read += 1
                return record
        return next(self._lenient)


class GuardedRecords:
    """aiokafka's ``MemoryRecords`` (the batches of one fetch response), every v2 batch
    guarded by :class:`GuardedBatch`."""

    def __init__(self, data: bytes) -> None:
        from aiokafka.record.memory_records import _MemoryRecordsPy

        self._records = _MemoryRecordsPy(data)

    def size_in_bytes(self) -> int:
        return int(self._records.size_in_bytes())

    def has_next(self) -> bool:
        return bool(self._records.has_next())

    def next_batch(self) -> Any:
        from aiokafka.record.default_records import DefaultRecordBatch

        data = self._records._next_slice  # the slice next_batch() reads
        batch = self._records.next_batch()
        if isinstance(batch, DefaultRecordBatch):
            return GuardedBatch(data, batch)
        return batch


def install() -> None:
    """Make aiokafka's fetcher read batches through :class:`GuardedRecords`.

    Raises ``ConfigurationError`` on an aiokafka release the guard was not checked against.
    """
    import aiokafka
    from aiokafka.consumer import fetcher

    if aiokafka.__version__ not in SUPPORTED_AIOKAFKA:
        raise ConfigurationError(
            f"streams.runtime.record_guard patches aiokafka {', '.join(SUPPORTED_AIOKAFKA)}, "
            f"not the installed {aiokafka.__version__}: install a supported release "
            "(constraints.txt) or re-check the guard against this one"
        )
    fetcher.MemoryRecords = GuardedRecords
