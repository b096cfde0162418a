"""Entity names: the one a request gives, checked, else one taken from the image's file name
or URL.

A name is free text (a file name, a path such as ``holidays/2024/beach.jpg``, a product
title) of at most 1024 characters without control characters. One given in a request that
breaks the rule is refused (``INVALID_REQUEST`` naming where); a default taken from a file
name or a URL that breaks it is dropped (the entity has no name), never an error.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import unquote, urlsplit

from phantoscope.engine.errors import BadRequestError

__all__ = ["MAX_NAME", "check_name", "default_name", "name_from_url"]

MAX_NAME = 1024  # characters; storage.meta.ENTITY_NAME is the column's width


def _problem(name: str) -> str | None:
    """What is wrong with ``name`` as an entity name, or None."""
    if len(name) > MAX_NAME:
        return f"{len(name)} characters; the limit is {MAX_NAME}"
    for ch in name:
        category = unicodedata.category(ch)
        if category == "Cc":
            return f"it holds control character U+{ord(ch):04X}"
        if category == "Cs":
            return "it is not valid Unicode text (lone surrogate)"
    return None


def check_name(value: object, where: str = "name") -> str | None:
    """``value`` as an entity name (None and ``""``: no name), or INVALID_REQUEST naming
    ``where``."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise BadRequestError("INVALID_REQUEST", f"{where}: a name is a string, not "
                                                 f"{type(value).__name__}")
    problem = _problem(value)
    if problem is not None:
        raise BadRequestError("INVALID_REQUEST", f"{where}: the name is not allowed: {problem}")
    return value


def default_name(candidate: str | None) -> str | None:
    """``candidate`` (a file name, say) if it is a usable name, else None."""
    if not candidate or _problem(candidate) is not None:
        return None
    return candidate


def name_from_url(url: str) -> str | None:
    """The last segment of the URL's path, percent-decoded (``.../photos/a%20b.jpg`` ->
    ``a b.jpg``); None when there is none or it is not a usable name."""
    try:
        path = urlsplit(url).path
    except ValueError:
        return None
    return default_name(unquote(path.rsplit("/", 1)[-1], errors="replace"))
