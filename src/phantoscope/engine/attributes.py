"""User attributes of an entity: a small JSON object checked before it is stored.

Rules (each failure is a ``BadRequestError("INVALID_ATTRIBUTES", ...)`` naming the key and
the rule it breaks):

- a JSON object; keys match ``[A-Za-z_][A-Za-z0-9_]{0,63}`` (usable as a Milvus JSON path
  and as a filter key ``attributes.<key>`` without quoting);
- values are strings, finite numbers (integers within signed 64 bits), booleans, or lists
  of strings; ``null`` is not a value (``merge_attributes`` reads it as "remove the key");
- at most 64 KiB serialised as compact UTF-8 JSON.

``check_attributes`` returns a fresh copy, so the caller may keep it without aliasing the
request body.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping

from phantoscope.engine.errors import BadRequestError

__all__ = [
    "KEY_PATTERN",
    "MAX_ATTRIBUTES_BYTES",
    "AttributeValue",
    "attributes_size",
    "check_attribute_key",
    "check_attributes",
    "merge_attributes",
]

KEY_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
MAX_ATTRIBUTES_BYTES = 64 * 1024
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
CODE = "INVALID_ATTRIBUTES"

AttributeValue = str | int | float | bool | list[str]


def _fail(message: str) -> BadRequestError:
    return BadRequestError(CODE, message)


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__)


def is_valid_key(key: object) -> bool:
    return isinstance(key, str) and KEY_PATTERN.fullmatch(key) is not None


def check_attribute_key(key: object, what: str = "attributes") -> str:
    """``key`` if it is a valid attribute key, else INVALID_ATTRIBUTES naming it."""
    if not is_valid_key(key):
        raise _fail(f"{what}: key {key!r} is not a valid attribute key: use 1 to 64 letters, "
                    "digits or underscores, not starting with a digit")
    return key  # type: ignore[return-value]


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_value(key: str, value: object) -> AttributeValue:
    where = f"attributes.{key}"
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise _fail(f"{where}: integer {value} is outside the signed 64-bit range")
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _fail(f"{where}: numbers must be finite, not {value}")
        return float(value)
    if isinstance(value, str):
        if not _utf8(value):
            raise _fail(f"{where}: the string is not valid Unicode text (lone surrogate)")
        return value
    if isinstance(value, (list, tuple)):
        out: list[str] = []
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise _fail(f"{where}[{i}]: lists may hold only strings, not "
                            f"{_type_name(item)}")
            if not _utf8(item):
                raise _fail(f"{where}[{i}]: the string is not valid Unicode text "
                            "(lone surrogate)")
            out.append(item)
        return out
    raise _fail(f"{where}: values must be a string, a finite number, a boolean or a list "
                f"of strings, not {_type_name(value)}")


def attributes_size(attributes: Mapping[str, object]) -> int:
    """Bytes of ``attributes`` as compact UTF-8 JSON (what the 64 KiB limit counts)."""
    text = json.dumps(attributes, ensure_ascii=False, separators=(",", ":"))
    return len(text.encode("utf-8"))


def check_attributes(value: object) -> dict[str, AttributeValue]:
    """A checked copy of ``value`` as user attributes, or INVALID_ATTRIBUTES saying why."""
    if not isinstance(value, Mapping):
        raise _fail(f"attributes must be a JSON object, not {_type_name(value)}")
    out: dict[str, AttributeValue] = {}
    for key, item in value.items():
        check_attribute_key(key)
        out[key] = _check_value(key, item)
    size = attributes_size(out)
    if size > MAX_ATTRIBUTES_BYTES:
        raise _fail(f"attributes: {size} bytes as JSON, over the limit of "
                    f"{MAX_ATTRIBUTES_BYTES} bytes (64 KiB)")
    return out


def merge_attributes(current: Mapping[str, object], patch: object
                     ) -> dict[str, AttributeValue]:
    """``current`` with ``patch`` applied (PATCH semantics): each key of ``patch`` set to a
    value replaces that key, one set to ``null`` removes it, others stay. The result is
    checked as a whole (the size limit applies to it)."""
    if not isinstance(patch, Mapping):
        raise _fail(f"attributes must be a JSON object, not {_type_name(patch)}")
    merged: dict[str, object] = dict(current)
    for key, item in patch.items():
        check_attribute_key(key)
        if item is None:
            merged.pop(key, None)
        else:
            merged[key] = item
    return check_attributes(merged)
