"""What every server command shares: the --url and --api-key options, the consoles, API
errors as exits."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from phantoscope.client import PhantoscopeClient, PhantoscopeError

Url = Annotated[
    str,
    typer.Option("--url", envvar="PHANTOSCOPE_URL", help="The Phantoscope API to talk to."),
]

ApiKey = Annotated[
    str | None,
    typer.Option(
        "--api-key", envvar="PHANTOSCOPE_API_KEY", show_default=False,
        help="The API key to send, when the server has keys (before the command's name).",
    ),
]

# The top-level `--api-key`, set by the `phantoscope` callback for the command it runs.
api_key: ContextVar[str | None] = ContextVar("phantoscope_api_key", default=None)

console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``error: message`` on stderr; the exit to raise."""
    errors.print(f"[red]error:[/red] {escape(message)}", highlight=False)
    return typer.Exit(code)


@contextmanager
def connect(url: str) -> Iterator[PhantoscopeClient]:
    """A client for ``url`` with the top-level ``--api-key``; an API error inside the block
    prints its message and exits 1."""
    try:
        with PhantoscopeClient(url, api_key=api_key.get()) as client:
            yield client
    except PhantoscopeError as exc:
        raise fail(f"{exc.message} ({exc.code})") from None


def details(rows: list[tuple[str, str]]) -> Table:
    """A two-column table of names and values."""
    table = Table(show_header=False, box=None, padding=(0, 2, 0, 0))
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for name, value in rows:
        table.add_row(name, Text(value))
    return table


def table(*headers: str, title: str | None = None) -> Table:
    """A table whose cells wrap rather than cut long names and URLs."""
    shown = Table(title=title)
    for header in headers:
        shown.add_column(header, overflow="fold")
    return shown


def row(*values: str) -> list[Text]:
    """Table cells shown as given (no Rich markup in names or descriptions)."""
    return [Text(value) for value in values]


def attributes_text(attributes: Mapping[str, Any]) -> str:
    """``key=value, ...``: text as it is, other values as JSON (``tags=["a","b"]``)."""
    return ", ".join(
        f"{key}={value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)}"
        for key, value in attributes.items()
    )
