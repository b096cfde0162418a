"""Changing an entity's name and attributes after upload (``PATCH .../entity/<id>``).

SQL first, in one transaction, then the payload of each of the entity's vectors in its
pipeline's collection. SQL is the truth: a search checks every hit against it, so a payload
left behind by a failed store call never lets a wrong entity through; it can only cost a
filtered search a hit, until the same change is sent again (which rewrites the payloads).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from phantoscope.engine.attributes import check_attributes
from phantoscope.engine.boundary import entry_point
from phantoscope.engine.context import Stores
from phantoscope.engine.entities import get_entity
from phantoscope.engine.entity_names import check_name
from phantoscope.engine.entity_records import payload_of
from phantoscope.engine.errors import NotFoundError
from phantoscope.engine.model import Entity
from phantoscope.engine.rows import entity_of
from phantoscope.storage.meta import EntityRow

__all__ = ["UNCHANGED", "check_changes", "update_entity"]

UNCHANGED: Any = object()  # a value the request did not give


def check_changes(name: object = UNCHANGED, attributes: object = UNCHANGED) -> dict[str, Any]:
    """The checked columns to set: ``name`` (None or ``""`` removes it) and ``attributes``
    (an object replacing them wholly)."""
    changes: dict[str, Any] = {}
    if name is not UNCHANGED:
        changes["name"] = check_name(name)
    if attributes is not UNCHANGED:
        changes["attributes"] = check_attributes(attributes)
    return changes


@entry_point
def update_entity(stores: Stores, app_name: str, entity_id: int, name: object = UNCHANGED,
                  attributes: object = UNCHANGED) -> Entity:
    """Set the entity's name and/or attributes; the entity as it now is."""
    changes = check_changes(name, attributes)
    current = get_entity(stores, app_name, entity_id)  # the application and entity exist
    if not changes:
        return current
    row = stores.meta.update_entity(app_name, entity_id, changes)
    if row is None:  # deleted meanwhile
        raise NotFoundError("ENTITY_NOT_FOUND", f"application {app_name!r} has no entity "
                                                f"{entity_id}")
    _rewrite_payloads(stores, row)
    return entity_of(row)


def _rewrite_payloads(stores: Stores, row: EntityRow) -> None:
    payload = payload_of(row)
    by_pipeline: dict[str, list[int]] = defaultdict(list)
    for vector in row.vectors:
        by_pipeline[vector.pipeline].append(vector.id)
    for pipeline_name, ids in by_pipeline.items():
        pipeline = stores.meta.get_pipeline(pipeline_name)
        if pipeline is not None:
            stores.vectors.set_payloads(pipeline.collection, ids, [payload] * len(ids))
