"""Search filters over an application's entities in SQL: the filter a request gives, the
entities it selects (for listing), and the vector ids of those entities (for searching a
collection whose vectors carry no payload).

SQL narrows what it does easily, through the (application, name) and (application,
taken_at) indexes and the labels table: a name prefix (or a name equal to a value), taken_at
bounds and labels (eq, in), where they are conditions of the top-level AND. Every other
condition is evaluated in Python by :func:`phantoscope.engine.filters.matches` over rows
read in id order, ``CHUNK`` at a time. Cost: a filter that SQL cannot narrow reads every
entity of the application up to the page asked for (``num * (page + 1)`` matches), i.e.
O(entities) rows for a rare filter; a narrowed one reads the narrowed rows only.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

from phantoscope.engine.context import Stores
from phantoscope.engine.entity_records import record_of
from phantoscope.engine.errors import BadRequestError
from phantoscope.engine.filters import (
    LABEL_MIN_SCORE,
    And,
    Condition,
    Filter,
    matches,
    parse_filter,
)
from phantoscope.engine.label_words import label_terms
from phantoscope.storage.meta import EntityNarrowing, EntityRow

__all__ = [
    "CHUNK",
    "matching_entities",
    "matching_vector_ids",
    "narrowing_of",
    "request_filter",
    "request_filter_text",
]

CHUNK = 1000  # entity rows read per query
TIME_OPS = ("eq", "gt", "gte", "lt", "lte")


def request_filter(value: object) -> Filter | None:
    """The checked filter of a request (None or ``{}``: no filter), or INVALID_FILTER."""
    if value is None:
        return None
    parsed = parse_filter(value)
    return None if isinstance(parsed, And) and not parsed.parts else parsed


def request_filter_text(text: object) -> Filter | None:
    """A filter sent as JSON text (a form field, a query parameter); None or ``""``: none."""
    if text is None or text == "":
        return None
    if not isinstance(text, str):
        raise BadRequestError("INVALID_FILTER", "filter: give the filter as JSON text")
    try:
        value = json.loads(text)
    except ValueError:
        raise BadRequestError("INVALID_FILTER", "filter: not valid JSON text") from None
    return request_filter(value)


def narrowing_of(filter: Filter) -> EntityNarrowing:
    """What SQL can check of ``filter``: conditions of its top-level AND on the name, on
    taken_at and on labels (every entity the filter selects passes the narrowing)."""
    parts = filter.parts if isinstance(filter, And) else (filter,)
    prefix: str | None = None
    times: list[tuple[str, datetime]] = []
    labels: list[frozenset[str]] = []
    for part in parts:
        if not isinstance(part, Condition):
            continue
        if part.key == "name" and part.op in ("prefix", "eq") and isinstance(part.value, str):
            if prefix is None or len(part.value) > len(prefix):
                prefix = part.value
        elif part.key == "taken_at" and part.op in TIME_OPS and isinstance(part.value, int):
            times.append((part.op, datetime.fromtimestamp(part.value, UTC)))
        elif part.key == "labels" and part.op == "eq":
            labels.extend(label_terms(str(part.value)))
        elif part.key == "labels" and part.op == "in":
            labels.append(frozenset().union(*(classes for words in part.value  # type: ignore
                                              for classes in label_terms(str(words)))))
    return EntityNarrowing(name_prefix=prefix or None, taken_at=tuple(times),
                           labels=tuple(labels), label_min_score=LABEL_MIN_SCORE)


def _matching_rows(stores: Stores, application: str, filter: Filter) -> Iterator[EntityRow]:
    """The application's entities that ``filter`` selects, in id order, read in chunks."""
    narrowing = narrowing_of(filter)
    after = 0
    while True:
        rows = stores.meta.scan_entities(application, after, CHUNK, narrowing)
        for row in rows:
            if matches(filter, record_of(row)):
                yield row
        if len(rows) < CHUNK:
            return
        after = rows[-1].id


def matching_entities(stores: Stores, application: str, filter: Filter, offset: int,
                      limit: int) -> list[EntityRow]:
    """The page of the application's entities ``filter`` selects: ``limit`` of them after
    the first ``offset``, in id order (as an unfiltered listing)."""
    found: list[EntityRow] = []
    for index, row in enumerate(_matching_rows(stores, application, filter)):
        if index >= offset:
            found.append(row)
            if len(found) == limit:
                break
    return found


def matching_vector_ids(stores: Stores, application: str, pipeline: str,
                        filter: Filter) -> list[int]:
    """The ids of ``pipeline``'s vectors of the application's entities ``filter`` selects."""
    return [vector.id for row in _matching_rows(stores, application, filter)
            for vector in row.vectors if vector.pipeline == pipeline]
