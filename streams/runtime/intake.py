"""Consumed records are untrusted bytes: reading them, and the table rows they meet.

Every step over a record's content (its headers, value and the table row of its key) runs
through :func:`attempt`, so any exception it raises, expected or not, becomes an
``InvalidRecordError``: the reason of a dead letter. What is left outside (sends,
confirms, table reads and writes, store writes) is infrastructure, whose failures exit the
worker (crash-only).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ParamSpec, TypeVar

from pydantic import BaseModel

from streams.core.records import check_header_names, decode
from streams.errors import InvalidRecordError
from streams.runtime.delivery import record_error

T = TypeVar("T", bound=BaseModel)
R = TypeVar("R")
S = TypeVar("S")
P = ParamSpec("P")
INVALID_STATE = "invalid_state"


def attempt(step: str, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Run a pure step over a record; any exception it raises is the record's fault and
    becomes an ``InvalidRecordError`` (the dead-letter reason)."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        raise record_error(step, exc) from exc


def _header_names(message: Any) -> list[Any]:
    raw = message.headers
    items: Any = raw.items() if isinstance(raw, Mapping) else (raw or [])
    return [name for name, _ in items]


def _read(message: Any, model: type[T], max_bytes: int) -> T:
    check_header_names(_header_names(message))
    return decode(model, message.value, max_bytes=max_bytes)


def read_record(message: Any, model: type[T], max_bytes: int) -> T:
    """Check a consumed message's headers and decode its value, or raise
    ``InvalidRecordError`` with the reason."""
    return attempt("decode", _read, message, model, max_bytes)


def read_state(parse: Callable[[Any], S], raw: Any, table: str) -> S | None:
    """A table row read back with ``parse`` (None for no row), or ``InvalidRecordError``
    (``invalid_state``) for a row that cannot be read, e.g. one an older version wrote."""
    if not raw:
        return None
    try:
        return parse(raw)
    except Exception as exc:
        raise InvalidRecordError(
            INVALID_STATE,
            f"{table}: the row for this record's key cannot be read ({type(exc).__name__}); "
            "the row is dropped",
        ) from None
