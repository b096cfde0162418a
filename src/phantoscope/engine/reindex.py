"""Starting a reindex job: every stored image of an application's field embedded again with
another pipeline, in the background, while searches keep using the field's own.

The job's items are the field's entities (item: the entity id, as text). In the transaction
that records the job, the pipeline goes on standby in the field (``engine.standby``), so
that every upload from then on is embedded with it too; the job ends by taking up any image
stored meanwhile that still lacks its vectors (``engine.reindex_batch.catch_up``).
"""

from __future__ import annotations

from phantoscope.engine.context import Stores
from phantoscope.engine.errors import BadRequestError, ConflictError
from phantoscope.engine.ids import new_id
from phantoscope.engine.model import Pipeline
from phantoscope.engine.registry import TEXT_INPUT, get_operator, get_pipeline
from phantoscope.engine.standby import Standby, now, replaced, standby_of
from phantoscope.storage.job_rows import JobRow
from phantoscope.storage.reindex_store import ImageField, ReindexStore

UNFINISHED = ("queued", "running")


def image_pipeline(stores: Stores, name: object) -> Pipeline:
    """The pipeline ``name`` names, checked to embed images (PIPELINE_NOT_IMAGE)."""
    if not isinstance(name, str):
        raise BadRequestError("INVALID_REQUEST", "pipeline must be a pipeline's name")
    pipeline = get_pipeline(stores, name)
    if pipeline.input != "image" or get_operator(stores, pipeline.encoder).input == TEXT_INPUT:
        raise BadRequestError(
            "PIPELINE_NOT_IMAGE",
            f"pipeline {name!r} does not embed images (its encoder {pipeline.encoder!r} takes "
            f"{TEXT_INPUT}s): reindex with a pipeline whose encoder is an image encoder")
    return pipeline


def field_of(stores: Stores, application: str, field: str) -> ImageField:
    """The stored image field (read inside a transaction of its own, after the plan)."""
    found = ReindexStore(stores.meta).image_field(application, field)
    if found is None:
        raise ConflictError("FIELD_CHANGED", f"field {field!r} of application {application!r} "
                                             "changed meanwhile: try again")
    return found


def _refuse_taken(stores: Stores, seen: ImageField, pipeline: str) -> None:
    if pipeline == seen.pipeline:
        raise ConflictError(
            "PIPELINE_IN_USE", f"field {seen.name!r} of application {seen.application!r} uses "
                               f"pipeline {pipeline!r} already: name another pipeline")
    entry = standby_of(seen.value).get(pipeline)
    if entry is None:
        return
    if entry.sweep_since is not None:
        raise ConflictError(
            "PIPELINE_BEING_REMOVED", f"the vectors of pipeline {pipeline!r} are being removed "
                                      f"from field {seen.name!r}: start the reindex again in "
                                      "a minute")
    if entry.job is not None:
        states = ReindexStore(stores.meta).job_states([entry.job])
        if states.get(entry.job) in UNFINISHED:
            raise ConflictError(
                "REINDEX_RUNNING", f"job {entry.job} is reindexing field {seen.name!r} with "
                                   f"pipeline {pipeline!r} already: follow it at "
                                   f"GET /v1/jobs/{entry.job}, or cancel it first")


def start_reindex(stores: Stores, application: str, field: str, pipeline_name: object) -> int:
    """Check a reindex of the application's image field ``field`` (both checked by the
    caller) with ``pipeline_name`` and record its job (queued, or done at once for a field
    without images); the job's id. A pipeline already on standby for the field (a reindex
    that failed or was cancelled, or the pipeline switched away from) is taken over: images
    that have its vectors are done without embedding them again."""
    pipeline = image_pipeline(stores, pipeline_name)
    store = ReindexStore(stores.meta)
    seen = field_of(stores, application, field)
    _refuse_taken(stores, seen, pipeline.name)
    entities = store.field_entities(application, field)
    job = JobRow(id=new_id(), kind="reindex", application=application, field=field,
                 source={"pipeline": pipeline.name}, attributes=None,
                 state="queued" if entities else "done", total=len(entities))
    if not entities:
        job.started_at = job.finished_at = now().replace(tzinfo=None)
    value = replaced(seen.value, Standby(pipeline.name, job=job.id))
    if not store.start_job(seen, value, job, [(str(each), each) for each in entities]):
        raise ConflictError("FIELD_CHANGED", f"field {field!r} of application "
                                             f"{application!r} changed meanwhile: try again")
    return job.id
