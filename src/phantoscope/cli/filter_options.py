"""Attributes and search filters from the command line: ``--attr key=value`` for
`phantoscope import`, ``--where key=value``, ``--since``, ``--until`` and ``--name-prefix``
for `phantoscope search` and `phantoscope app entities`.

Values are read the same way everywhere: ``true``/``false`` are booleans, integer and
decimal text (``42``, ``-1.5``, ``2e3``; not ``007``, which stays text) are numbers, and
anything else is a string. ``--where`` keys ``name``, ``camera`` and ``labels`` (a class id
or words: ``--where labels=dog``) take the text as it is, ``width`` and ``height`` whole
numbers; any other key is the attribute of that name (``attributes.<key>`` says so
explicitly). The server checks everything again; these checks
only make a mistake an exit before any request.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import date
from typing import Annotated, Any

import typer

KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")  # the API's rule for attribute keys
TEXT_KEYS = ("name", "camera", "labels")
NUMBER_KEYS = ("width", "height")
INTEGER = re.compile(r"[+-]?(0|[1-9][0-9]*)")
DECIMAL = re.compile(r"[+-]?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
# The ISO 8601 forms the API takes for taken_at: a date, or a date and time (with an offset).
TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?([Zz]|[+-]\d{2}:?\d{2})?)?"
)

Value = str | int | float | bool


def parse_value(text: str) -> Value:
    """``true``/``false`` as booleans, integer or decimal text as a number, else the text."""
    if text in ("true", "false"):
        return text == "true"
    if INTEGER.fullmatch(text):
        return int(text)
    if DECIMAL.fullmatch(text):
        number = float(text)
        if number not in (float("inf"), float("-inf")):
            return number
    return text


def _split(text: str) -> tuple[str, str]:
    """``key=value`` as (key, value); ValueError when there is no ``=`` or no key."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ValueError(f"expected key=value, not {text!r}")
    return key, value


def _attribute_key(key: str) -> str:
    if not KEY.fullmatch(key):
        raise ValueError(
            f"{key!r} is not a valid attribute key: use 1 to 64 letters, digits or "
            "underscores, not starting with a digit"
        )
    return key


def parse_attributes(assignments: Sequence[str]) -> dict[str, Any]:
    """``--attr key=value`` options as attributes; a key given several times holds the list
    of its values as text (``--attr tag=red --attr tag=blue``: ``["red", "blue"]``)."""
    texts: dict[str, list[str]] = {}
    for assignment in assignments:
        key, value = _split(assignment)
        texts.setdefault(_attribute_key(key), []).append(value)
    return {
        key: parse_value(values[0]) if len(values) == 1 else values
        for key, values in texts.items()
    }


def _where_value(key: str, text: str) -> Value:
    if key in TEXT_KEYS:
        return text
    value = parse_value(text)
    if key in NUMBER_KEYS and (isinstance(value, bool) or not isinstance(value, int)):
        raise ValueError(f"{key} takes a whole number of pixels, not {text!r}")
    return value


def _filter_key(key: str) -> str:
    """The API's filter key for a ``--where`` key."""
    if key in TEXT_KEYS or key in NUMBER_KEYS:
        return key
    return "attributes." + _attribute_key(key.removeprefix("attributes."))


def check_time(text: str) -> str:
    """``text`` if it is an ISO 8601 date or date and time the API takes."""
    valid = TIME.fullmatch(text.strip()) is not None
    if valid:
        try:
            date.fromisoformat(text.strip()[:10])
        except ValueError:
            valid = False
    if not valid:
        raise ValueError(
            "expected an ISO 8601 date or time (2024-05-01, 2024-05-01T12:30:00 or "
            f"2024-05-01T12:30:00+02:00), not {text!r}"
        )
    return text.strip()


def build_filter(
    wheres: Sequence[str] = (),
    since: str | None = None,
    until: str | None = None,
    name_prefix: str | None = None,
) -> dict[str, Any] | None:
    """The API's search filter for these options, ANDed; None when none is given.

    A key given several times in ``wheres`` matches any of its values (``in``)."""
    values: dict[str, list[Value]] = {}
    for where in wheres:
        key, text = _split(where)
        values.setdefault(_filter_key(key), []).append(_where_value(key, text))
    spec: dict[str, Any] = {
        key: found[0] if len(found) == 1 else {"in": found} for key, found in values.items()
    }
    if name_prefix is not None:
        name = spec.get("name")
        operators = name if isinstance(name, dict) else {} if name is None else {"eq": name}
        spec["name"] = {**operators, "prefix": name_prefix}
    taken: dict[str, str] = {}
    if since is not None:
        taken["gte"] = check_time(since)
    if until is not None:
        taken["lt"] = check_time(until)
    if taken:
        spec["taken_at"] = taken
    return spec or None


def _usage(parse: Callable[..., Any]) -> Callable[..., Any]:
    """A Typer callback that turns ``parse``'s ValueError into a usage error (exit 2)."""

    def callback(value: Any) -> Any:
        try:
            return parse(value)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None

    return callback


def _check_attrs(assignments: list[str] | None) -> list[str]:
    parse_attributes(assignments or ())
    return assignments or []


def _check_wheres(wheres: list[str] | None) -> list[str]:
    build_filter(wheres or ())
    return wheres or []


Attrs = Annotated[
    list[str] | None,
    typer.Option(
        "--attr",
        metavar="KEY=VALUE",
        help="An attribute for every image, key=value (true/false: a boolean, 12 or 1.5: a "
        "number, else text); repeat for several, or a key for a list of text.",
        show_default=False,
        callback=_usage(_check_attrs),
    ),
]
Where = Annotated[
    list[str] | None,
    typer.Option(
        "--where",
        metavar="KEY=VALUE",
        help="Only images with KEY=VALUE, KEY being name, camera, width, height or an "
        "attribute (VALUE read as for --attr). Repeat to AND keys; a key given twice "
        "matches either value.",
        show_default=False,
        callback=_usage(_check_wheres),
    ),
]
Since = Annotated[
    str | None,
    typer.Option(
        help="Only photos taken at or after this date or time (EXIF; ISO 8601, UTC unless "
        "an offset is given).",
        metavar="DATE",
        show_default=False,
        callback=_usage(lambda text: None if text is None else check_time(text)),
    ),
]
Until = Annotated[
    str | None,
    typer.Option(
        help="Only photos taken before this date or time (EXIF; --until 2025-01-01 ends "
        "with 2024).",
        metavar="DATE",
        show_default=False,
        callback=_usage(lambda text: None if text is None else check_time(text)),
    ),
]
NamePrefix = Annotated[
    str | None,
    typer.Option(
        "--name-prefix",
        metavar="PREFIX",
        help="Only images whose name starts with this (e.g. a folder: holidays/).",
        show_default=False,
    ),
]
