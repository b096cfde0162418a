"""One batch of a reindex job's items: each entity's stored image embedded with the job's
pipeline, its vectors written to that pipeline's collection and their rows added.

An item is done once however often it is tried: an entity that has vectors of the pipeline
(stored by a try a killed server made, or by an upload during the job) or that was deleted
meanwhile (even as its image was read) is done without embedding it. The rows are added in
one transaction that checks that again under a lock of the entities, and closes the journal
row that named the vectors before they were written (a killed server's vectors without rows
are the journal's to repair, as an upload's are). An image the pipeline fails on fails alone.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from phantoscope.engine import journal
from phantoscope.engine.catalog import FieldPlan, application_plan
from phantoscope.engine.context import Stores
from phantoscope.engine.entities import embed_each
from phantoscope.engine.entity_records import payload_of
from phantoscope.engine.errors import EngineError, OperatorFailedError
from phantoscope.engine.ids import new_id
from phantoscope.engine.import_batch import BatchResult
from phantoscope.engine.intake import ImageInput
from phantoscope.engine.names import partition_name
from phantoscope.engine.pipeline import PipelineVector
from phantoscope.engine.rows import vector_row
from phantoscope.storage.job_rows import JobRow
from phantoscope.storage.job_store import ClaimedItem
from phantoscope.storage.meta import EntityRow, VectorRow
from phantoscope.storage.objects import ObjectNotFoundError
from phantoscope.storage.reindex_store import ReindexStore

log = logging.getLogger(__name__)
DELETION_WAIT_S = 2.0  # an image missing while its rows stay: how long they may take to go


def target_plan(stores: Stores, job: JobRow) -> FieldPlan | None:
    """The job's field run through the job's pipeline, while that pipeline is on standby in
    the field; None once it is not (the job was cancelled, or its pipeline removed)."""
    plan = application_plan(stores, job.application).fields.get(job.field)
    pipeline = job.source.get("pipeline")
    found = [each for each in plan.standby if each.pipeline.name == pipeline] if plan else []
    return found[0] if found else None


def reindex_items(stores: Stores, job: JobRow, items: list[ClaimedItem]) -> BatchResult:
    """Embed and store the claimed items of a reindex job; what each came to. A store
    failing or an operator out of reach is raised (nothing of the batch is kept)."""
    result = BatchResult()
    plan = target_plan(stores, job)
    if plan is None:
        result.failed.update((each.position, "REINDEX_STOPPED: the pipeline is no longer on "
                                             "standby in the field") for each in items)
        return result
    pipeline = plan.pipeline.name
    rows = ReindexStore(stores.meta).entities_with_vectors(
        job.application, [each.entity_id for each in items])
    todo: list[tuple[ClaimedItem, EntityRow, ImageInput]] = []
    for each in items:
        row = rows.get(each.entity_id)
        if row is None or any(vector.pipeline == pipeline for vector in row.vectors):
            result.done.append(each.position)
            continue
        try:
            data, content_type = stores.objects.get(plan.application.bucket, row.object_key)
        except ObjectNotFoundError as exc:
            if _deleted(stores, job, each.entity_id):  # its image went with it meanwhile
                result.done.append(each.position)
            else:
                result.failed[each.position] = f"IMAGE_NOT_FOUND: {exc}"
            continue
        todo.append((each, row, ImageInput(data, content_type, row.sha256)))
    if not todo:
        return result
    embedded = _embedded(stores, plan, [image for _, _, image in todo])
    stored: dict[int, tuple[EntityRow, list[PipelineVector]]] = {}
    for (each, row, _), outcome in zip(todo, embedded, strict=True):
        if isinstance(outcome, EngineError):
            result.failed[each.position] = f"{outcome.code}: {outcome.message}"
        else:
            stored[row.id] = (row, outcome)
            result.done.append(each.position)
    if stored:
        _write(stores, plan, stored)
    return result


def _deleted(stores: Stores, job: JobRow, entity_id: int) -> bool:
    """Whether an entity whose image is missing is being deleted: a deletion removes the
    image, then the rows, so its rows are given a moment to go."""
    store = ReindexStore(stores.meta)
    deadline = time.monotonic() + DELETION_WAIT_S
    while store.entities_with_vectors(job.application, [entity_id]):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def _embedded(stores: Stores, plan: FieldPlan, images: Sequence[ImageInput]
              ) -> list[list[PipelineVector] | EngineError]:
    """Each image's vectors or error. An operator answering an error for several images is
    asked again for each alone, so that an image it cannot take fails alone."""
    try:
        return embed_each(stores, plan, images)
    except OperatorFailedError as exc:
        if len(images) == 1:
            return [exc]
        return [outcome for image in images for outcome in _embedded(stores, plan, [image])]


def _write(stores: Stores, plan: FieldPlan,
           stored: dict[int, tuple[EntityRow, list[PipelineVector]]]) -> None:
    """Journal the vectors, write them, then add their rows (closing the journal row); the
    vectors of entities that turned out deleted or done meanwhile are deleted again. On a
    failure, what was written is undone."""
    application, pipeline = plan.application, plan.pipeline
    rows: dict[int, list[VectorRow]] = defaultdict(list)
    ids: list[int] = []
    vectors: list[np.ndarray] = []
    payloads = []
    for entity_id, (entity, found) in stored.items():
        payload = payload_of(entity)
        for vector in found:
            rows[entity_id].append(vector_row(new_id(), pipeline.name, vector.box))
            rows[entity_id][-1].entity_id = entity_id
            ids.append(rows[entity_id][-1].id)
            vectors.append(vector.vector)
            payloads.append(payload)
    upload = journal.open_upload(stores, application.name, application.bucket, [],
                                 {pipeline.collection: ids})
    try:
        stores.vectors.insert(pipeline.collection, ids, np.stack(vectors),
                              partition=partition_name(application.name), payloads=payloads)
        added = ReindexStore(stores.meta).add_vectors(pipeline.name, rows, upload)
    except BaseException:
        try:
            stores.vectors.delete(pipeline.collection, ids)
            journal.close_failed(stores, upload)
        except Exception:  # the journal row stays: the repair removes what is left
            log.exception("could not undo a failed reindex write")
        raise
    unused = [row.id for entity_id, found in rows.items() if entity_id not in added
              for row in found]
    if unused:
        stores.vectors.delete(pipeline.collection, unused)


def catch_up(stores: Stores, job: JobRow) -> int:
    """Give a reindex job whose items are all ended the field's images that still lack the
    pipeline's vectors (stored while the job started, by uploads that had not seen it yet);
    how many it got."""
    if target_plan(stores, job) is None:
        return 0
    store = ReindexStore(stores.meta)
    lacking = store.lacking(job.application, job.field, job.source["pipeline"])
    failed = store.failed_entities(job.id)
    more = [each for each in lacking if each not in failed]
    return len(more) if more and store.add_items(job.id, more) else 0
