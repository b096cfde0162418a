"""An upload's `name` and `attributes` as requests give them: JSON values beside `fields` (or
in each batch item), or multipart form fields (`attributes` as JSON text). Checked by the
engine's rules; an error names where the value was (``images[2].attributes.colour: ...``)."""

from __future__ import annotations

import json
from typing import Any

from phantoscope.engine.attributes import check_attributes
from phantoscope.engine.entity_names import check_name, default_name
from phantoscope.engine.errors import BadRequestError


def _placed(exc: BadRequestError, where: str) -> BadRequestError:
    return BadRequestError(exc.code, f"{where}: {exc.message}") if where else exc


def attributes_of(value: object, where: str = "") -> dict[str, Any]:
    """A JSON request's attributes (absent or null: none), checked."""
    if value is None:
        return {}
    try:
        return check_attributes(value)
    except BadRequestError as exc:
        raise _placed(exc, where) from None


def name_of(value: object, default: str | None, where: str = "name") -> str | None:
    """A request's name, checked; when it gives none, ``default`` (dropped if unusable)."""
    if value is None:
        return default_name(default)
    return check_name(value, where)


def form_attributes(value: object) -> dict[str, Any]:
    """A multipart form's `attributes`: a JSON object as text (absent or empty: none)."""
    if value is None or value == "":
        return {}
    if not isinstance(value, str):
        raise BadRequestError("INVALID_ATTRIBUTES", "attributes: send a form field of JSON "
                                                    "text, not a file")
    try:
        parsed = json.loads(value)
    except ValueError:
        raise BadRequestError("INVALID_ATTRIBUTES",
                              "attributes: the form field is not valid JSON text") from None
    return check_attributes(parsed)


def form_name(value: object, filename: str | None) -> str | None:
    """A multipart form's `name`, checked; else the file's name (dropped if unusable)."""
    if value is not None and not isinstance(value, str):
        raise BadRequestError("INVALID_REQUEST", "name: send a form field of text, not a file")
    return name_of(value or None, filename)
