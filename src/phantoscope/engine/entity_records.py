"""An entity row as the two places that filter on it see it: the record
:func:`phantoscope.engine.filters.matches` evaluates (SQL is the truth), and the payload its
vectors carry in the vector store (a copy, so the store can filter inside a search)."""

from __future__ import annotations

from typing import Any

from phantoscope.engine.filters import LABEL_MIN_SCORE
from phantoscope.storage.meta import EntityRow
from phantoscope.storage.vectors import VectorPayload

__all__ = ["payload_of", "record_of"]

EXIF_KEYS = ("camera", "width", "height")  # what filters read of the EXIF besides taken_at


def record_of(row: EntityRow) -> dict[str, Any]:
    """The keys filters name (``name``, ``camera``, ``width``, ``height``, ``taken_at``,
    ``attributes``, ``labels``); None where the entity has none. ``labels``: the class ids
    of its labels (any field's) of probability at least ``LABEL_MIN_SCORE``."""
    exif = row.exif or {}
    return {
        "name": row.name,
        "attributes": row.attributes or {},
        "taken_at": row.taken_at_utc,
        "labels": frozenset(label.label for label in row.labels
                            if label.score >= LABEL_MIN_SCORE) if row.labels else None,
        **{key: exif.get(key) for key in EXIF_KEYS},
    }


def payload_of(row: EntityRow) -> VectorPayload:
    """What each vector of the entity carries for filtered search (taken_at in whole epoch
    seconds)."""
    stored = row.exif or {}
    exif: dict[str, Any] = {key: stored[key] for key in EXIF_KEYS if stored.get(key) is not None}
    taken_at = row.taken_at_utc
    if taken_at is not None:
        exif["taken_at"] = int(taken_at.timestamp())
    return VectorPayload(name=row.name or "", attributes=dict(row.attributes or {}), exif=exif)
