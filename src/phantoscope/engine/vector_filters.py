"""A search filter as the vector store applies it inside a search.

A collection whose vectors carry payloads (``VectorStore.filterable``) takes the filter as
a Milvus expression over them (:data:`phantoscope.storage.vectors.FILTER_FIELDS`). One made
by an earlier release carries none, and no payload holds labels: such a collection, or a
filter on ``labels``, takes ``id in [...]``, the vector ids of the application's entities the
filter selects in SQL (:mod:`phantoscope.engine.entity_filters`; its cost is reading those
entities, and the list grows with them).

Either way the search keeps only hits whose SQL row passes the filter (SQL is the truth,
the payload an index of it): see :mod:`phantoscope.engine.search`.
"""

from __future__ import annotations

from dataclasses import replace

from phantoscope.engine.context import Stores
from phantoscope.engine.entity_filters import matching_vector_ids
from phantoscope.engine.filters import (
    And,
    Condition,
    Filter,
    Not,
    Or,
    label_conditions,
    milvus_expression,
)
from phantoscope.engine.model import Application, Pipeline
from phantoscope.storage.vectors import FILTER_FIELDS

__all__ = ["NOTHING", "vector_filter"]

NOTHING = "nothing"  # no vector can pass: skip the search


def _payload_form(node: Filter) -> Filter:
    """``node`` as the payload holds the name: ``""`` for an entity without one (a VARCHAR
    always holds a value), so ``name exists`` becomes ``name > ""``."""
    if isinstance(node, Condition):
        if node.key == "name" and node.op == "exists":
            return replace(node, op="gt", value="")
        return node
    if isinstance(node, Not):
        return Not(_payload_form(node.part))
    parts = tuple(_payload_form(part) for part in node.parts)
    return And(parts) if isinstance(node, And) else Or(parts)


def vector_filter(stores: Stores, application: Application, pipeline: Pipeline,
                  filter: Filter | None) -> str | None:
    """The expression to search ``pipeline``'s collection with (None: no filter;
    :data:`NOTHING`: no vector of the application passes)."""
    if filter is None:
        return None
    if not label_conditions(filter) and stores.vectors.filterable(pipeline.collection):
        return milvus_expression(_payload_form(filter), FILTER_FIELDS) or None
    ids = matching_vector_ids(stores, application.name, pipeline.name, filter)
    if not ids:
        return NOTHING
    return f"id in [{', '.join(str(int(vector_id)) for vector_id in ids)}]"
