"""Queries of reindexing an application's field with another pipeline and switching it.

An image field's standby pipelines (those its uploads are embedded with besides its own, see
``engine.standby``) are kept in the field's ``value``, a column image fields leave empty
otherwise: changing them is a change of the catalog (its version goes up in the same
transaction), so every server's next upload plan sees them. Each change here is conditional
on the field being as its caller last read it: two changes racing never both apply.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, exists, func, select, update
from sqlalchemy.orm import Session

from phantoscope.storage.job_rows import JobItemRow, JobRow
from phantoscope.storage.job_store import insert_items
from phantoscope.storage.meta import (
    EntityRow,
    FieldRow,
    MetaStore,
    PendingUploadRow,
    UploadAbandonedError,
    VectorRow,
)

CHUNK = 1000  # ids in one IN list


@dataclass(frozen=True)
class ImageField:
    """An image field as stored: its pipeline and its ``value`` (the standby state)."""

    application: str
    name: str
    pipeline: str | None
    value: Any


def _locked_field(session: Session, application: str, field: str) -> FieldRow | None:
    query = (select(FieldRow).where(FieldRow.application == application, FieldRow.name == field)
             .with_for_update())
    return session.scalars(query).first()


def _unchanged(row: FieldRow | None, seen: ImageField) -> bool:
    return row is not None and (row.pipeline, row.value) == (seen.pipeline, seen.value)


class ReindexStore:
    """The reindex and switch transactions of one metadata store."""

    def __init__(self, meta: MetaStore) -> None:
        self.meta = meta

    def image_fields(self) -> list[ImageField]:
        """Every application's image fields."""
        with self.meta.session("reading image fields") as session:
            rows = session.scalars(select(FieldRow).where(FieldRow.type == "object"))
            return [ImageField(row.application, row.name, row.pipeline, row.value)
                    for row in rows]

    def image_field(self, application: str, field: str) -> ImageField | None:
        with self.meta.session("reading an image field") as session:
            row = session.get(FieldRow, (application, field))
            if row is None or row.type != "object":
                return None
            return ImageField(row.application, row.name, row.pipeline, row.value)

    def set_field(self, seen: ImageField, pipeline: str | None, value: Any) -> bool:
        """Give the field ``pipeline`` and ``value`` if it is still as ``seen``; whether it
        was."""
        with self.meta.session("changing an image field") as session:
            row = _locked_field(session, seen.application, seen.name)
            if not _unchanged(row, seen):
                return False
            row.pipeline, row.value = pipeline, value  # type: ignore[union-attr]
            return True

    def start_job(self, seen: ImageField, value: Any, job: JobRow,
                  items: Sequence[tuple[str, int]]) -> bool:
        """Record the job with its items and give the field ``value``, in one transaction,
        if the field is still as ``seen``; whether it was."""
        with self.meta.session("recording a reindex job") as session:
            row = _locked_field(session, seen.application, seen.name)
            if not _unchanged(row, seen):
                return False
            row.value = value  # type: ignore[union-attr]
            session.add(job)
            session.flush()
            insert_items(session, job.id, items)
            return True

    def field_entities(self, application: str, field: str) -> list[int]:
        """The ids of the field's entities, in order."""
        with self.meta.session("listing a field's entities") as session:
            return [int(i) for i in session.scalars(
                select(EntityRow.id).where(EntityRow.application == application,
                                           EntityRow.field == field).order_by(EntityRow.id))]

    def lacking(self, application: str, field: str, pipeline: str) -> list[int]:
        """The ids of the field's entities that have no vector of ``pipeline``."""
        has = exists().where(VectorRow.entity_id == EntityRow.id, VectorRow.pipeline == pipeline)
        with self.meta.session("finding entities to reindex") as session:
            return [int(i) for i in session.scalars(
                select(EntityRow.id).where(EntityRow.application == application,
                                           EntityRow.field == field, ~has)
                .order_by(EntityRow.id))]

    def add_items(self, job_id: int, entity_ids: Sequence[int]) -> bool:
        """More items for a job that has not ended badly (a done job runs again for them);
        whether it took them."""
        with self.meta.session("adding items to a job") as session:
            moved = session.execute(update(JobRow).where(
                JobRow.id == job_id, JobRow.state.in_(("running", "done"))
            ).values(total=JobRow.total + len(entity_ids), state="running", finished_at=None))
            if moved.rowcount != 1:
                return False
            last = session.scalar(select(func.max(JobItemRow.position))
                                  .where(JobItemRow.job_id == job_id))
            insert_items(session, job_id, [(str(i), i) for i in entity_ids],
                         first=0 if last is None else int(last) + 1)
            return True

    def failed_entities(self, job_id: int) -> set[int]:
        """The entity ids of the job's failed items."""
        with self.meta.session("reading a job's failed items") as session:
            return {int(i) for i in session.scalars(select(JobItemRow.entity_id).where(
                JobItemRow.job_id == job_id, JobItemRow.state == "failed"))}

    def entities_with_vectors(self, application: str, ids: Sequence[int]
                              ) -> dict[int, EntityRow]:
        """The application's entities of these ids that exist, with their vector rows."""
        with self.meta.session("reading entities to reindex") as session:
            query = select(EntityRow).where(EntityRow.id.in_(list(ids)))
            return {row.id: row for row in session.scalars(query)
                    if row.application == application}

    def add_vectors(self, pipeline: str, rows: Mapping[int, Sequence[VectorRow]],
                    pending_upload: int) -> set[int]:
        """Add each entity's ``pipeline`` vector rows unless the entity is gone or has some
        already (another try stored them), and close the journal row, in one transaction;
        the entities whose rows were added. UploadAbandonedError when a repair took the
        journal row (nothing is added)."""
        wanted = list(rows)
        with self.meta.session("saving reindexed vectors") as session:
            present = set(session.scalars(
                select(EntityRow.id).where(EntityRow.id.in_(wanted)).with_for_update()))
            done = set(session.scalars(select(VectorRow.entity_id).where(
                VectorRow.entity_id.in_(wanted), VectorRow.pipeline == pipeline)))
            added = present - done
            closed = session.execute(delete(PendingUploadRow).where(
                PendingUploadRow.id == pending_upload, PendingUploadRow.claimed.is_(False)))
            if closed.rowcount != 1:
                raise UploadAbandonedError(
                    f"reindex write {pending_upload} outlived the repair grace time and was "
                    "taken for interrupted; nothing of it was kept")
            session.add_all(row for entity in sorted(added) for row in rows[entity])
            return added

    def pipeline_vectors(self, application: str, field: str, pipeline: str,
                         limit: int = CHUNK) -> list[int]:
        """Up to ``limit`` ids of the field's vectors of ``pipeline``."""
        with self.meta.session("finding a pipeline's vectors") as session:
            return [int(i) for i in session.scalars(
                select(VectorRow.id).join(EntityRow, EntityRow.id == VectorRow.entity_id)
                .where(EntityRow.application == application, EntityRow.field == field,
                       VectorRow.pipeline == pipeline).limit(limit))]

    def delete_vector_rows(self, ids: Iterable[int]) -> None:
        with self.meta.session("deleting vector rows") as session:
            session.execute(delete(VectorRow).where(VectorRow.id.in_(list(ids))))

    def job_states(self, ids: Sequence[int]) -> dict[int, str]:
        """The state of each of these jobs that exists."""
        with self.meta.session("reading jobs' states") as session:
            return {int(i): state for i, state in session.execute(
                select(JobRow.id, JobRow.state).where(JobRow.id.in_(list(ids))))}
