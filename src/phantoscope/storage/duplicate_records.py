"""Reading and writing the duplicate-review tables (:mod:`phantoscope.storage.duplicate_rows`)
through a :class:`~phantoscope.storage.meta.MetaStore`'s transactions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select

from phantoscope.storage.duplicate_rows import HASHES, DecisionRow, DescriptorRow
from phantoscope.storage.meta import (
    DuplicateError,
    EntityRow,
    LabelRow,
    MetaStore,
    MetaStoreError,
    VectorRow,
)

CHUNK = 1000
_HASH_COLUMNS = [getattr(DescriptorRow, f"hash_{turn}") for turn in range(HASHES)]


class EntitiesGoneError(MetaStoreError):
    """Some of the entities a change named no longer exist; nothing was changed."""


@dataclass(frozen=True)
class StoredDescriptor:
    """A descriptor as stored, without its thumbnail."""

    entity_id: int
    hashes: tuple[int, ...]  # signed, upright first
    width: int
    height: int
    format: str
    quality: int | None
    size: int


class DuplicateRecords:
    """Descriptors and decisions of the metadata store's applications."""

    def __init__(self, meta: MetaStore) -> None:
        self.meta = meta

    def descriptors(self, application: str, ids: Sequence[int] | None = None
                    ) -> list[StoredDescriptor]:
        """The application's descriptors (of ``ids`` only, if given), by entity id."""
        columns = (DescriptorRow.entity_id, *_HASH_COLUMNS, DescriptorRow.width,
                   DescriptorRow.height, DescriptorRow.format, DescriptorRow.quality,
                   DescriptorRow.size)
        base = (select(*columns).where(DescriptorRow.application == application)
                .order_by(DescriptorRow.entity_id))
        queries = ([base] if ids is None else
                   [base.where(DescriptorRow.entity_id.in_(list(ids[at:at + CHUNK])))
                    for at in range(0, len(ids), CHUNK)])
        found = []
        with self.meta.session("reading image descriptors") as session:
            for query in queries:
                for row in session.execute(query):
                    found.append(StoredDescriptor(
                        int(row[0]), tuple(int(value) for value in row[1:1 + HASHES]),
                        *row[1 + HASHES:]))
        return found

    def descriptor_ids(self, application: str) -> list[int]:
        query = (select(DescriptorRow.entity_id).where(DescriptorRow.application == application)
                 .order_by(DescriptorRow.entity_id))
        with self.meta.session("listing image descriptors") as session:
            return [int(entity) for entity in session.scalars(query)]

    def descriptor_ids_since(self, application: str, since: datetime) -> list[int]:
        """The entities whose descriptors were stored at ``since`` (UTC) or later."""
        query = select(DescriptorRow.entity_id).where(
            DescriptorRow.stored_at >= since, DescriptorRow.application == application)
        with self.meta.session("listing new image descriptors") as session:
            return [int(entity) for entity in session.scalars(query)]

    def whole_vectors(self, application: str, ids: Sequence[int] | None = None
                      ) -> list[tuple[int, str, int]]:
        """(entity id, pipeline, vector id) of the vectors of whole images (no crop box) of
        the application's entities (of ``ids`` only, if given)."""
        base = (select(VectorRow.entity_id, VectorRow.pipeline, VectorRow.id).join(EntityRow)
                .where(EntityRow.application == application, VectorRow.box_left.is_(None)))
        queries = ([base] if ids is None else
                   [base.where(VectorRow.entity_id.in_(list(ids[at:at + CHUNK])))
                    for at in range(0, len(ids), CHUNK)])
        with self.meta.session("reading entity vectors") as session:
            return [(int(entity), pipeline, int(vector)) for query in queries
                    for entity, pipeline, vector in session.execute(query)]

    def thumbnails(self, ids: Sequence[int]) -> dict[int, bytes]:
        found: dict[int, bytes] = {}
        with self.meta.session("reading thumbnails") as session:
            for at in range(0, len(ids), CHUNK):
                query = select(DescriptorRow.entity_id, DescriptorRow.thumbnail).where(
                    DescriptorRow.entity_id.in_(list(ids[at:at + CHUNK])))
                found.update((int(entity), bytes(data)) for entity, data in session.execute(query))
        return found

    def missing_descriptors(self, application: str, after_id: int, limit: int
                            ) -> list[tuple[int, str]]:
        """(id, object key) of up to ``limit`` of the application's entities above
        ``after_id`` that have no descriptor, by id."""
        described = select(DescriptorRow.entity_id).where(
            DescriptorRow.entity_id == EntityRow.id)
        query = (select(EntityRow.id, EntityRow.object_key)
                 .where(EntityRow.application == application, EntityRow.id > after_id,
                        ~described.exists())
                 .order_by(EntityRow.id).limit(limit))
        with self.meta.session("finding entities without descriptors") as session:
            return [(int(entity), key) for entity, key in session.execute(query)]

    def add_descriptors(self, rows: Sequence[DescriptorRow]) -> int:
        """Store descriptors computed after their entities; those whose entity was deleted
        (or described by another process) meanwhile are skipped. How many were stored."""
        try:
            with self.meta.session("storing image descriptors") as session:
                session.add_all(rows)
            return len(rows)
        except DuplicateError:
            stored = 0
            for row in rows:  # one at a time: keep all but the ones refused
                try:
                    with self.meta.session("storing an image descriptor") as session:
                        session.add(row)
                    stored += 1
                except DuplicateError:
                    continue
            return stored

    def decisions(self, application: str, kind: str) -> list[DecisionRow]:
        query = (select(DecisionRow).where(DecisionRow.application == application,
                                           DecisionRow.kind == kind).order_by(DecisionRow.id))
        with self.meta.session("reading duplicate decisions") as session:
            return list(session.scalars(query))

    def decide(self, decision: DecisionRow, deleted: Sequence[int]) -> None:
        """Record the decision and delete the rows of the ``deleted`` entities of its
        application (vectors, labels, descriptors with them), in one transaction: all of them
        or, when one is gone already, nothing (:class:`EntitiesGoneError`)."""
        ids = sorted(set(deleted))
        with self.meta.session("resolving duplicates") as session:
            if ids:
                session.execute(delete(VectorRow).where(VectorRow.entity_id.in_(ids)))
                session.execute(delete(LabelRow).where(LabelRow.entity_id.in_(ids)))
                session.execute(delete(DescriptorRow).where(DescriptorRow.entity_id.in_(ids)))
                gone = session.execute(delete(EntityRow).where(
                    EntityRow.application == decision.application, EntityRow.id.in_(ids)))
                if gone.rowcount != len(ids):
                    raise EntitiesGoneError(
                        f"{len(ids) - gone.rowcount} of the entities to delete are gone")
            session.add(decision)
