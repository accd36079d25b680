"""How every command reports an error streamsense raised on purpose: one line, exit 2."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.markup import escape

from streamsense.errors import StreamsenseError

EXIT_ERROR = 2
"""Exit status of a command stopped by a :class:`StreamsenseError` (a usage error is 2 too)."""

_stderr = Console(stderr=True)


def report(exc: BaseException) -> None:
    """Print ``exc`` as one ``error:`` line on stderr, never wrapped."""
    _stderr.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True, highlight=False)


@contextmanager
def one_line_errors() -> Iterator[None]:
    """Turn a :class:`StreamsenseError` raised inside into one line and exit status 2."""
    try:
        yield
    except StreamsenseError as exc:
        report(exc)
        raise typer.Exit(EXIT_ERROR) from None
