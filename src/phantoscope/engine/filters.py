"""Structured search filters: checked, turned into a Milvus filter expression, or evaluated
in Python.

The filter (the search API's ``filter`` JSON) is an object whose entries are ANDed::

    {"camera": "Canon EOS 5D",                          # bare value: eq
     "taken_at": {"gte": "2024-01-01", "lt": "2025-01-01"},
     "attributes.tags": {"in": ["cat", "dog"]},
     "or": [{"width": {"gt": 1000}}, {"attributes.hdr": true}],
     "not": {"name": {"prefix": "tmp_"}}}

Keys: ``name``, ``camera`` (strings), ``width``, ``height`` (whole numbers), ``taken_at``
(ISO 8601 text; a date alone is midnight UTC, a time without offset is UTC),
``attributes.<key>`` (any attribute value) and ``labels`` (the image's labels: see below).
Operators: ``eq ne in gt gte lt lte prefix exists``; ``or`` takes a list of filters and
``not`` one. Any other shape is a ``BadRequestError("INVALID_FILTER", ...)`` that names where
(``filter.or[1].width.gt``).

``labels`` takes ``eq``, ``ne``, ``in`` and ``exists``. A value is a class id
(``"n02123045"``) or words that name classes as a text search reads them
(:mod:`phantoscope.engine.label_words`: ``"tabby"``, ``"dog"``, ``"animal"``); a record
matches it when, for each term of the words, one of its labels of probability at least
:data:`LABEL_MIN_SCORE` is a class the term names. Words that name no class are refused.
The record's ``labels`` are its class ids at or above that probability (an empty set when it
has labels but none so sure; missing when it has none at all). No vector store holds labels:
:func:`milvus_expression` refuses the key and the engine filters on it in SQL.

Entry points: ``parse_filter(value) -> Filter`` (a small frozen tree; ``ne`` becomes
``Not(eq)``), ``milvus_expression(filter, fields) -> str`` and ``matches(filter, record)``.

Semantics (``matches`` is the reference; the expression gives the same rows on Milvus Lite
and a Milvus 2.3 server, tests/storage/test_filter_expressions.py):

- three-valued, as in SQL: a condition on a missing key is *unknown*, and so is an
  ordering (gt/gte/lt/lte/prefix) between different kinds of value (string, number,
  boolean, list); ``not`` of unknown stays unknown and a record matches only when the whole
  filter is *true*. So ``{"not": {"camera": "X"}}`` and ``{"camera": {"ne": "X"}}`` leave
  out records without a camera; ``{"camera": {"exists": false}}`` selects those.
- equality between different kinds is false (``"1"`` is not ``1``; ``1`` equals ``1.0``);
  a string equals a list attribute that contains it (``{"attributes.tags": "cat"}``).
- ``exists`` is never unknown.

Known difference: Milvus Lite compares booleans as the numbers 1 and 0 (``true == 1``,
``true < 5``); the server and ``matches`` do not. Only an attribute key that holds booleans
in some records and numbers in others can give different rows.

How the expression is built (what the two backends accept, measured on milvus-lite 3.2.2
and Milvus 2.3.5):

- user text only ever appears inside double-quoted literals with ``\\`` ``"`` and newline,
  carriage return and tab escaped; other control characters and lone surrogates are refused
  (neither backend has a ``\\u`` escape);
- ``prefix`` is a range, ``(p >= "abc" and p < "abd")``: ``like`` cannot escape ``%`` or
  ``_`` on the server (Lite takes ``\\\\%``, the server matches nothing);
- ``in`` on a JSON path is a chain of ``==`` (Lite refuses ``in`` on a JSON path);
- negation is pushed down to the conditions (negation normal form), and each negated
  condition on a JSON path is guarded with ``exists``: the server's ``!=`` and ``not``
  are true for a missing key, Lite's (Kleene) unknown;
- every condition is parenthesised (the server parses ``exists a and b`` as
  ``exists (a and b)``);
- numbers for INT64 columns are integers (the server refuses ``taken_at > 30.5``), and
  never -2**63 (the server's parser refuses it).

``fields`` maps our keys to Milvus field paths: ``"name": "name"`` (a VARCHAR column),
``"taken_at": "taken_at"`` (INT64 epoch seconds), ``"attributes": "attributes"`` (a JSON
column; ``attributes.k`` becomes ``attributes["k"]``), or ``"camera": 'meta["camera"]'``
(a JSON path). A column always holds a value; a JSON path may be missing. A key that
``fields`` does not map is INVALID_FILTER ("cannot be filtered here").
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Literal

from phantoscope.engine.attributes import is_valid_key
from phantoscope.engine.errors import BadRequestError
from phantoscope.engine.label_words import label_terms
from phantoscope.storage.prefix_range import prefix_successor

__all__ = [
    "DEFAULT_FIELDS",
    "LABEL_MIN_SCORE",
    "MAX_DEPTH",
    "MAX_IN_VALUES",
    "OPERATORS",
    "And",
    "Condition",
    "Filter",
    "Not",
    "Or",
    "label_conditions",
    "matches",
    "milvus_expression",
    "parse_filter",
    "parse_time",
]

CODE = "INVALID_FILTER"
MAX_DEPTH = 8  # levels of filters: the top one is 1, each or/not adds one
MAX_IN_VALUES = 1000
MAX_OR_ITEMS = 1000
OPERATORS = ("eq", "ne", "in", "gt", "gte", "lt", "lte", "prefix", "exists")
ORDER_OPS = ("gt", "gte", "lt", "lte")
INT64_MIN, INT64_MAX = -(2**63) + 1, 2**63 - 1  # -2**63 itself does not parse on the server

LABEL_MIN_SCORE = 0.1  # a label counts for a filter from this probability on

Kind = Literal["string", "integer", "time", "label", "any"]
BUILTIN_KEYS: dict[str, Kind] = {
    "name": "string", "camera": "string", "width": "integer", "height": "integer",
    "taken_at": "time", "labels": "label",
}
LABEL_OPS = ("eq", "ne", "in", "exists")
DEFAULT_FIELDS: dict[str, str] = {
    "name": "name", "camera": "camera", "width": "width", "height": "height",
    "taken_at": "taken_at", "attributes": "attributes",
}

Scalar = str | int | float | bool
Op = Literal["eq", "in", "gt", "gte", "lt", "lte", "prefix", "exists"]


@dataclass(frozen=True)
class Condition:
    """``key`` compared by ``op``: eq/gt/gte/lt/lte/prefix take a scalar, ``in`` a tuple of
    them, ``exists`` ``True``. ``taken_at`` values are epoch seconds."""

    key: str
    op: Op
    value: Scalar | tuple[Scalar, ...]


@dataclass(frozen=True)
class And:
    parts: tuple[Filter, ...]


@dataclass(frozen=True)
class Or:
    parts: tuple[Filter, ...]


@dataclass(frozen=True)
class Not:
    part: Filter


Filter = Condition | And | Or | Not


# -- parsing ----------------------------------------------------------------------------


def _fail(where: str, message: str) -> BadRequestError:
    return BadRequestError(CODE, f"{where}: {message}")


def _kind_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def _check_text(where: str, text: str) -> str:
    for ch in text:
        code = ord(ch)
        if (code < 0x20 and ch not in "\n\r\t") or code == 0x7F:
            raise _fail(where, f"the string holds control character U+{code:04X}, which "
                               "cannot be matched")
        if 0xD800 <= code <= 0xDFFF:
            raise _fail(where, "the string is not valid Unicode text (lone surrogate)")
    return text


def parse_time(text: str) -> float:
    """Epoch seconds of ISO 8601 ``text`` (a date alone is midnight UTC; no offset is UTC)."""
    text = text.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        d = date.fromisoformat(text)
        return datetime(d.year, d.month, d.day, tzinfo=timezone.utc).timestamp()
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?"
                        r"(Z|z|[+-]\d{2}:?\d{2})?", text):
        raise ValueError(f"not an ISO 8601 date or time: {text!r}")
    text = re.sub(r"[Zz]$", "+00:00", text)
    frac = re.search(r"\.(\d+)", text)
    if frac:  # Python 3.10's fromisoformat takes 3 or 6 digits only
        digits = frac.group(1)
        text = text.replace(frac.group(0), "." + (digits + "000000")[:6], 1)
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _key_kind(where: str, key: object) -> Kind:
    if isinstance(key, str) and key in BUILTIN_KEYS:
        return BUILTIN_KEYS[key]
    if isinstance(key, str) and key.startswith("attributes."):
        if is_valid_key(key[len("attributes."):]):
            return "any"
        raise _fail(where, f"{key[len('attributes.'):]!r} is not a valid attribute key: use "
                           "1 to 64 letters, digits or underscores, not starting with a digit")
    raise _fail(where, f"unknown key {key!r}: use name, camera, width, height, taken_at, "
                       "labels, attributes.<key>, or and not")


def _number(where: str, value: object) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(where, f"takes a number, not {_kind_name(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise _fail(where, f"numbers must be finite, not {value}")
    if isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
        raise _fail(where, f"{value} is outside the signed 64-bit range")
    return value


def _scalar(where: str, key: str, kind: Kind, op: str, value: object) -> Scalar:
    """One checked value for ``op`` on a key of ``kind`` (epoch seconds for time)."""
    ordering = op in ORDER_OPS
    if kind == "label":
        if not isinstance(value, str):
            raise _fail(where, f"labels takes a class id or words, not {_kind_name(value)}")
        try:
            label_terms(_check_text(where, value))
        except ValueError as error:
            raise _fail(where, str(error)) from None
        return value
    if kind == "string" or op == "prefix":
        if not isinstance(value, str):
            what = "a string prefix" if op == "prefix" else "a string"
            raise _fail(where, f"{key} takes {what}, not {_kind_name(value)}")
        return _check_text(where, value)
    if kind == "integer":
        number = _number(where, value)
        if isinstance(number, float):
            if not number.is_integer():
                raise _fail(where, f"{key} takes whole numbers, not {number}")
            number = int(number)
        return number
    if kind == "time":
        if not isinstance(value, str):
            raise _fail(where, f"taken_at takes an ISO 8601 date or time as text, not "
                               f"{_kind_name(value)}")
        try:
            seconds = parse_time(value)
        except ValueError:
            raise _fail(where, f"taken_at takes an ISO 8601 date or time "
                               f"(2024-05-01 or 2024-05-01T12:30:00+02:00), not {value!r}"
                        ) from None
        if seconds.is_integer():
            return int(seconds)
        if op in ("eq", "in"):
            raise _fail(where, "taken_at is stored in whole seconds: eq/in take no fraction")
        # stored values are whole seconds: round the bound the way that keeps the meaning
        return math.floor(seconds) if op in ("gt", "lte") else math.ceil(seconds)
    # an attribute
    if isinstance(value, str):
        return _check_text(where, value)
    if isinstance(value, bool):
        if ordering:
            raise _fail(where, f"{op} takes a number or a string, not a boolean")
        return value
    if isinstance(value, (int, float)):
        return _number(where, value)
    raise _fail(where, f"{key} takes a string, a number or a boolean, not {_kind_name(value)}")


def _conditions(where: str, key: str, kind: Kind, spec: object) -> list[Filter]:
    if not isinstance(spec, Mapping):
        if isinstance(spec, (list, tuple)):
            raise _fail(where, 'a list is not a value: use {"in": [...]}')
        if spec is None:
            raise _fail(where, 'null is not a value: use {"exists": false}')
        return [Condition(key, "eq", _scalar(where, key, kind, "eq", spec))]
    if not spec:
        raise _fail(where, f"no operator: use one or more of {', '.join(OPERATORS)}")
    out: list[Filter] = []
    for op, value in spec.items():
        at = f"{where}.{op}"
        if op not in OPERATORS:
            raise _fail(at, f"unknown operator {op!r}: use one of {', '.join(OPERATORS)}")
        if kind == "label" and op not in LABEL_OPS:
            raise _fail(at, f"labels takes {', '.join(LABEL_OPS)}, not {op}")
        if op == "exists":
            if not isinstance(value, bool):
                raise _fail(at, f"exists takes true or false, not {_kind_name(value)}")
            cond: Filter = Condition(key, "exists", True)
            out.append(cond if value else Not(cond))
        elif op == "in":
            if not isinstance(value, (list, tuple)):
                raise _fail(at, f"in takes a list of values, not {_kind_name(value)}")
            if not 1 <= len(value) <= MAX_IN_VALUES:
                raise _fail(at, f"in takes 1 to {MAX_IN_VALUES} values, not {len(value)}")
            values = tuple(_scalar(f"{at}[{i}]", key, kind, "in", v)
                           for i, v in enumerate(value))
            out.append(Condition(key, "in", values))
        elif op == "prefix" and kind in ("integer", "time"):
            raise _fail(at, f"prefix applies to strings; {key} is "
                            f"{'a number' if kind == 'integer' else 'a time'}")
        else:
            scalar = _scalar(at, key, kind, op, value)
            if op == "ne":
                out.append(Not(Condition(key, "eq", scalar)))
            else:
                out.append(Condition(key, op, scalar))  # type: ignore[arg-type]
    return out


def _parse(value: object, where: str, depth: int) -> Filter:
    if depth > MAX_DEPTH:
        raise _fail(where, f"filters nest at most {MAX_DEPTH} levels deep")
    if not isinstance(value, Mapping):
        raise _fail(where, f"a filter is a JSON object, not {_kind_name(value)}")
    if not value and depth > 1:
        raise _fail(where, "an empty filter inside or/not")
    parts: list[Filter] = []
    for key, spec in value.items():
        at = f"{where}.{key}"
        if key == "or":
            if not isinstance(spec, (list, tuple)) or not spec:
                raise _fail(at, "or takes a non-empty list of filters")
            if len(spec) > MAX_OR_ITEMS:
                raise _fail(at, f"or takes at most {MAX_OR_ITEMS} filters, not {len(spec)}")
            parts.append(Or(tuple(_parse(item, f"{at}[{i}]", depth + 1)
                                  for i, item in enumerate(spec))))
        elif key == "not":
            parts.append(Not(_parse(spec, at, depth + 1)))
        else:
            parts.extend(_conditions(at, key, _key_kind(at, key), spec))
    return parts[0] if len(parts) == 1 else And(tuple(parts))


def parse_filter(value: object) -> Filter:
    """The checked filter tree of the search API's ``filter`` JSON (``{}``: match all, as
    ``And(())``), or ``BadRequestError("INVALID_FILTER", ...)`` naming where and why."""
    return _parse(value, "filter", 1)


# -- Milvus expressions ------------------------------------------------------------------

_COLUMN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_JSON_PATH = re.compile(r'[A-Za-z_][A-Za-z0-9_]*(\["[A-Za-z0-9_]+"\])+')
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _string(text: str) -> str:
    """``text`` as a Milvus double-quoted string literal."""
    return '"' + "".join(_ESCAPES.get(ch, ch) for ch in text) + '"'


def _literal(value: Scalar) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    return _string(value)


_NEGATED = {"gt": "<=", "gte": "<", "lt": ">=", "lte": ">"}
_SYMBOL = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


def _path(key: str, fields: Mapping[str, str]) -> tuple[str, bool]:
    """(Milvus path, whether it is a JSON path that may be missing)."""
    path = fields.get(key)
    if path is None and key.startswith("attributes.") and "attributes" in fields:
        base = fields["attributes"]
        if not _COLUMN.fullmatch(base):
            raise ValueError(f"fields['attributes'] must name a JSON column, not {base!r}")
        path = f'{base}["{key[len("attributes."):]}"]'
    if path is None:
        raise BadRequestError(CODE, f"filter: {key} cannot be filtered here")
    if _COLUMN.fullmatch(path):
        return path, False
    if _JSON_PATH.fullmatch(path):
        return path, True
    raise ValueError(f"fields[{key!r}] is not a column name or a JSON path: {path!r}")


def _condition(cond: Condition, fields: Mapping[str, str], negate: bool) -> str:
    path, nullable = _path(cond.key, fields)
    kind = BUILTIN_KEYS.get(cond.key, "any")
    guard = f"(exists {path}) and " if nullable else ""
    op, value = cond.op, cond.value
    if op == "exists":
        if nullable:
            return f"(not (exists {path}))" if negate else f"(exists {path})"
        if kind == "string":  # a column always holds a value
            return f"({path} < \"\")" if negate else f"({path} >= \"\")"
        return f"({path} > 0 and {path} < 0)" if negate else f"({path} >= 0 or {path} < 0)"
    if op in ORDER_OPS:
        symbol = _NEGATED[op] if negate else _SYMBOL[op]
        return f"({path} {symbol} {_literal(value)})"  # type: ignore[arg-type]
    if op == "prefix":
        assert isinstance(value, str)
        upper = prefix_successor(value)
        if negate:
            if upper is None:
                return f"({path} < {_string(value)})"
            return f"({path} < {_string(value)} or {path} >= {_string(upper)})"
        if upper is None:
            return f"({path} >= {_string(value)})"
        return f"({path} >= {_string(value)} and {path} < {_string(upper)})"
    values: tuple[Scalar, ...] = value if op == "in" else (value,)  # type: ignore[assignment]
    listed = ", ".join(_literal(v) for v in values)
    if not nullable:
        if op == "in":
            return f"({path} not in [{listed}])" if negate else f"({path} in [{listed}])"
        return f"({path} != {listed})" if negate else f"({path} == {listed})"
    strings = [v for v in values if isinstance(v, str)]
    if negate:
        terms = [f"{path} != {_literal(v)}" for v in values]
        if len(strings) == 1:
            terms.append(f"(not json_contains({path}, {_literal(strings[0])}))")
        elif strings:
            terms.append(f"(not json_contains_any({path}, "
                         f"[{', '.join(_string(s) for s in strings)}]))")
        return "(" + guard + " and ".join(terms) + ")"
    terms = [f"{path} == {_literal(v)}" for v in values]
    if len(strings) == 1:
        terms.append(f"json_contains({path}, {_literal(strings[0])})")
    elif strings:
        terms.append(f"json_contains_any({path}, [{', '.join(_string(s) for s in strings)}])")
    return "(" + " or ".join(terms) + ")"


def _emit(node: Filter, fields: Mapping[str, str], negate: bool) -> str:
    if isinstance(node, Condition):
        return _condition(node, fields, negate)
    if isinstance(node, Not):
        return _emit(node.part, fields, not negate)
    parts = [_emit(part, fields, negate) for part in node.parts]
    if not parts:
        raise ValueError("an empty And has no expression (match all: pass no filter)")
    if len(parts) == 1:
        return parts[0]
    joiner = " and " if isinstance(node, And) != negate else " or "
    return "(" + joiner.join(parts) + ")"


def milvus_expression(filter: Filter, fields: Mapping[str, str] = DEFAULT_FIELDS) -> str:
    """The Milvus boolean expression selecting what ``matches(filter, ...)`` selects; ``""``
    for the empty filter (match all: pass no filter to Milvus)."""
    if isinstance(filter, And) and not filter.parts:
        return ""
    return _emit(filter, fields, False)


# -- evaluation in Python ----------------------------------------------------------------


def _value_kind(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "list"
    return "other"


def _record_value(record: Mapping[str, object], key: str) -> object:
    if key.startswith("attributes."):
        attributes = record.get("attributes")
        return attributes.get(key[len("attributes."):]) if isinstance(attributes, Mapping) \
            else None
    value = record.get(key)
    if key == "taken_at" and value is not None:
        if isinstance(value, datetime):
            return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).timestamp()
        if isinstance(value, str):
            try:
                return parse_time(value)
            except ValueError:
                return None
    return value


def _equal(stored: object, wanted: Scalar) -> bool:
    if isinstance(stored, (list, tuple)):
        return isinstance(wanted, str) and wanted in stored
    return _value_kind(stored) == _value_kind(wanted) and stored == wanted


def _has_labels(stored: object, words: str) -> bool:
    """Whether the label set ``stored`` has, for each term of ``words``, a class it names."""
    held = stored if isinstance(stored, (set, frozenset)) else frozenset()
    return all(classes & held for classes in label_terms(words))


def _test(cond: Condition, record: Mapping[str, object]) -> bool | None:
    stored = _record_value(record, cond.key)
    if cond.op == "exists":
        return stored is not None
    if stored is None:
        return None
    if cond.key == "labels":
        values = cond.value if cond.op == "in" else (cond.value,)
        return any(_has_labels(stored, str(words)) for words in values)  # type: ignore
    if cond.op == "eq":
        return _equal(stored, cond.value)  # type: ignore[arg-type]
    if cond.op == "in":
        return any(_equal(stored, v) for v in cond.value)  # type: ignore[union-attr]
    kind = _value_kind(stored)
    if cond.op == "prefix":
        return stored.startswith(cond.value) if kind == "string" else None  # type: ignore
    if kind in ("bool", "list", "other") or kind != _value_kind(cond.value):
        return None
    a, b = stored, cond.value
    if cond.op == "gt":
        return a > b  # type: ignore[operator]
    if cond.op == "gte":
        return a >= b  # type: ignore[operator]
    if cond.op == "lt":
        return a < b  # type: ignore[operator]
    return a <= b  # type: ignore[operator]


def _evaluate(node: Filter, record: Mapping[str, object]) -> bool | None:
    if isinstance(node, Condition):
        return _test(node, record)
    if isinstance(node, Not):
        inner = _evaluate(node.part, record)
        return None if inner is None else not inner
    results: Sequence[bool | None] = [_evaluate(part, record) for part in node.parts]
    if isinstance(node, And):
        if any(r is False for r in results):
            return False
        return None if any(r is None for r in results) else True
    if any(r is True for r in results):
        return True
    return None if any(r is None for r in results) else False


def matches(filter: Filter, record: Mapping[str, object]) -> bool:
    """Whether ``record`` passes ``filter`` (three-valued: unknown does not pass).

    ``record`` holds ``name``, ``camera``, ``width``, ``height``, ``taken_at`` (epoch
    seconds, ISO text or a datetime), ``attributes`` (a dict) and ``labels`` (a set of
    class ids); a key absent or None is missing."""
    return _evaluate(filter, record) is True


def label_conditions(filter: Filter) -> list[Condition]:
    """Every condition on ``labels`` anywhere in ``filter``."""
    if isinstance(filter, Condition):
        return [filter] if filter.key == "labels" else []
    if isinstance(filter, Not):
        return label_conditions(filter.part)
    return [found for part in filter.parts for found in label_conditions(part)]
