"""Background jobs: starting one, reading its progress, cancelling it.

A job is a row of the metadata store with a row per item (:mod:`phantoscope.storage.job_rows`);
the servers sharing that store work through the items (:mod:`phantoscope.engine.job_runner`).
Everything a job needs is checked when it starts: the application, the field, the
attributes and the source (a folder is listed then, so a job starts with its total known);
a refused job leaves no row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from phantoscope.engine.attributes import check_attributes
from phantoscope.engine.boundary import entry_point
from phantoscope.engine.catalog import application_plan
from phantoscope.engine.context import Stores
from phantoscope.engine.errors import BadRequestError, ConflictError, NotFoundError
from phantoscope.engine.ids import new_id, new_ids
from phantoscope.engine.import_sources import (
    checked_folder,
    checked_urls,
    folder_items,
    import_roots,
)
from phantoscope.engine.reindex import start_reindex
from phantoscope.engine.s3_images import s3_items, s3_location, s3_store
from phantoscope.engine.watch_jobs import start_watch
from phantoscope.storage.job_rows import JobRow
from phantoscope.storage.job_store import JobStore

KINDS = ("import", "reindex", "watch")
SOURCES = ("folder", "urls", "s3")
MAX_ERRORS = 100  # errors a job's answer lists (its `failed` counts them all)
RATE_WINDOW_S = 60.0  # a running job's rate: items ended in the last minute
LISTED = 100  # jobs a listing shows, newest first


@dataclass(frozen=True)
class JobStatus:
    """A job as its caller sees it: what it works on (``pipeline``: a reindex's new one,
    else None), ``done`` and ``failed`` count items, ``rate`` is items a second, ``eta_s``
    the seconds left at that rate (None when unknown)."""

    id: int
    kind: str
    application: str
    field: str
    pipeline: str | None
    state: str
    total: int
    done: int
    failed: int
    errors: tuple[tuple[str, str], ...]
    rate: float
    eta_s: float | None


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _source(stores: Stores, source: object) -> tuple[dict[str, Any], list[str]]:
    """The source as the job keeps it, and its items."""
    if not isinstance(source, Mapping) or len(source) != 1 or next(iter(source)) not in SOURCES:
        raise BadRequestError("INVALID_SOURCE", 'source must be one of {"folder": PATH}, '
                                                '{"urls": [URL, ...]} or {"s3": URL}')
    (kind, value), = source.items()
    if kind == "s3":
        bucket, prefix = s3_location(value)
        items = s3_items(s3_store(stores.import_s3), bucket, prefix)
        if not items:
            raise BadRequestError("NO_IMAGES", f"{value!r} holds no image files (.jpg .jpeg "
                                               ".png .gif .webp .bmp .tif .tiff)")
        return {"s3": f"s3://{bucket}/{prefix}"}, items
    if kind == "urls":
        return {"urls": len(value) if isinstance(value, list) else 0}, checked_urls(value)
    folder = checked_folder(value, import_roots(stores.settings.import_roots))
    items = folder_items(folder)
    if not items:
        raise BadRequestError("NO_IMAGES", f"folder {value!r} holds no image files (.jpg .jpeg "
                                           ".png .gif .webp .bmp .tif .tiff)")
    return {"folder": str(folder)}, items


@entry_point
def start_job(stores: Stores, request: Mapping[str, Any]) -> JobStatus:
    """Check a job as a request describes it, record it queued with its items, and answer
    its status."""
    kind = request.get("kind")
    if kind not in KINDS:
        raise BadRequestError("UNKNOWN_JOB_KIND", f"kind {kind!r} is not a job this server "
                                                  f"runs; kinds: {', '.join(KINDS)}")
    application = request.get("application")
    if not isinstance(application, str):
        raise BadRequestError("INVALID_REQUEST", "application must be an application's name")
    field = request.get("field")
    if field is not None and not isinstance(field, str):
        raise BadRequestError("INVALID_REQUEST", "field must be an image field's name")
    plan = application_plan(stores, application).field(field)
    if kind == "reindex":
        return job_status(stores, start_reindex(stores, application, plan.field,
                                                request.get("pipeline")))
    attributes = request.get("attributes")
    checked = check_attributes(attributes) if attributes is not None else None
    if kind == "watch":
        return job_status(stores, start_watch(stores, request.get("source"), application,
                                              plan.field, checked))
    source, items = _source(stores, request.get("source"))
    job = JobRow(id=new_id(), kind=kind, application=application, field=plan.field,
                 source=source, attributes=checked, state="queued", total=len(items))
    JobStore(stores.meta).add_job(job, list(zip(items, new_ids(len(items)), strict=True)))
    return job_status(stores, job.id)


def _job_id(value: object) -> int:
    text = str(value)
    if not text.isdigit() or not 0 < int(text) < 2**63:
        raise NotFoundError("JOB_NOT_FOUND", f"there is no job {text!r}")
    return int(text)


def _status(store: JobStore, job: JobRow) -> JobStatus:
    counts = store.counts(job.id)
    ended = counts.done + counts.failed
    rate, eta = 0.0, None
    if job.state == "running" and job.started_at is not None:
        now = _now()
        window = min(RATE_WINDOW_S, (now - job.started_at).total_seconds())
        since = now - timedelta(seconds=window)
        if window > 0:
            rate = store.finished_since(job.id, since) / window
        if rate > 0:
            eta = round((job.total - ended) / rate, 1)
    elif job.started_at is not None and job.finished_at is not None:
        took = (job.finished_at - job.started_at).total_seconds()
        rate = ended / took if took > 0 else 0.0
        eta = 0.0 if job.state == "done" else None
    errors = tuple(store.errors(job.id, MAX_ERRORS)) if counts.failed else ()
    pipeline = job.source.get("pipeline") if job.kind == "reindex" else None
    return JobStatus(job.id, job.kind, job.application, job.field, pipeline, job.state,
                     job.total, counts.done, counts.failed, errors, round(rate, 2), eta)


@entry_point
def job_status(stores: Stores, job_id: object) -> JobStatus:
    store = JobStore(stores.meta)
    job = store.get_job(_job_id(job_id))
    if job is None:
        raise NotFoundError("JOB_NOT_FOUND", f"there is no job {job_id}")
    return _status(store, job)


@entry_point
def list_jobs(stores: Stores) -> list[JobStatus]:
    """The newest jobs first."""
    store = JobStore(stores.meta)
    return [_status(store, job) for job in store.list_jobs(LISTED)]


@entry_point
def cancel_job(stores: Stores, job_id: object) -> JobStatus:
    """Stop a queued or running job: no more of its items are started (those in work end)."""
    store = JobStore(stores.meta)
    number = _job_id(job_id)
    if not store.set_state(number, "cancelled", among=("queued", "running")):
        job = store.get_job(number)
        if job is None:
            raise NotFoundError("JOB_NOT_FOUND", f"there is no job {job_id}")
        raise ConflictError("JOB_FINISHED", f"job {job_id} is {job.state} already: there is "
                                            "nothing to cancel (start a new job to run it again)")
    return job_status(stores, number)
