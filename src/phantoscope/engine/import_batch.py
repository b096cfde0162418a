"""One batch of an import job's items: read, checked, stored as one upload.

Each item is stored under the entity id the job gave it, so an item is stored once however
often it is tried: one whose entity exists already (a server killed after storing it, before
recording it done) is recorded done, and two servers storing the same item at once collide
on the entities' primary key (the loser's upload undoes itself). An image the application's
field holds already (same SHA-256), or one repeated in the batch, is done without storing
it again, as `phantoscope import` skips it. An image the operator fails on (an error
answered, not an operator out of reach) fails alone: the batch is asked again image by image.

A watch job's items keep one entity per file (no image is skipped for being held already):
an item may replace the entity of the file's earlier version, in the new entity's
transaction, or remove the entity of a file gone (:mod:`engine.watch_items`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from phantoscope.engine.catalog import ApplicationPlan
from phantoscope.engine.context import Stores
from phantoscope.engine.entities import UploadItem, plan_upload, upload
from phantoscope.engine.errors import EngineError, OperatorFailedError
from phantoscope.engine.import_sources import import_roots, read_file, read_url
from phantoscope.engine.intake import ImageInput
from phantoscope.engine.s3_images import read_s3
from phantoscope.engine.watch_items import keep_replaced, remove_entities
from phantoscope.metrics import INGESTED_IMAGES
from phantoscope.storage.job_rows import JobRow
from phantoscope.storage.job_store import ClaimedItem, JobStore
from phantoscope.storage.watch_store import REMOVE


@dataclass
class BatchResult:
    """Positions done, and failed positions with their reasons (``CODE: message``)."""

    done: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)


def _reason(error: EngineError) -> str:
    return f"{error.code}: {error.message}"


def _read(stores: Stores, job: JobRow, item: str) -> tuple[ImageInput, str | None]:
    if "folder" in job.source:
        return read_file(Path(job.source["folder"]), item,
                         import_roots(stores.settings.import_roots), stores.limits)
    if "s3" in job.source:
        return read_s3(stores.import_s3, job.source["s3"], item, stores.limits)
    return read_url(item, stores.limits)


def import_items(stores: Stores, job: JobRow, items: list[ClaimedItem]) -> BatchResult:
    """Store the claimed items of an import job; what each came to. A store failing or an
    operator out of reach is raised (nothing of the batch is kept): the caller tries it
    again later."""
    result = BatchResult()
    removals = [each for each in items if each.action == REMOVE]
    if removals:
        result.done.extend(remove_entities(stores, job, removals))
        items = [each for each in items if each.action != REMOVE]
        if not items:
            return result
    plan = plan_upload(stores, job.application)
    jobs = JobStore(stores.meta)
    stored = jobs.existing_entities(job.application, [each.entity_id for each in items])
    result.done.extend(each.position for each in items if each.entity_id in stored)
    read: list[tuple[ClaimedItem, ImageInput, str | None]] = []
    for each in items:
        if each.entity_id in stored:
            continue
        try:
            image, name = _read(stores, job, each.item)
        except EngineError as exc:
            result.failed[each.position] = _reason(exc)
            continue
        read.append((each, image, name))
    held = jobs.hashes_held(job.application, job.field, [image.sha256 for _, image, _ in read]
                            ) if job.kind == "import" else set()
    uploads: list[tuple[ClaimedItem, UploadItem]] = []
    for each, image, name in read:
        if image.sha256 in held:
            result.done.append(each.position)
            continue
        if job.kind == "import":
            held.add(image.sha256)
        uploads.append((each, UploadItem(job.field, image, name, job.attributes or {},
                                         entity_id=each.entity_id, replaces=each.replaces)))
    if uploads:
        errors = _store(stores, plan, [item for _, item in uploads])
        for (each, _), error in zip(uploads, errors, strict=True):
            if error is not None:
                result.failed[each.position] = _reason(error)
            else:
                result.done.append(each.position)
        INGESTED_IMAGES.labels(job.application).inc(sum(error is None for error in errors))
    keep_replaced(stores, job, items, result.failed)
    return result


def _store(stores: Stores, plan: ApplicationPlan, items: list[UploadItem]
           ) -> list[EngineError | None]:
    """Each item's error, or None where it was stored (without a copy check: the duplicates
    listing judges an import's images). An operator answering an error for several images
    at once is asked again for each alone, so an image it cannot take fails alone instead of
    holding the job; one that fails twice alone is that image's error."""

    def stored() -> list[EngineError | None]:
        return [outcome.error
                for outcome in upload(stores, plan, items, atomic=False, check_duplicates=False)]

    try:
        return stored()
    except OperatorFailedError as exc:
        if len(items) > 1:
            return [error for item in items for error in _store(stores, plan, [item])]
        try:
            return stored()
        except OperatorFailedError:
            return [exc]
