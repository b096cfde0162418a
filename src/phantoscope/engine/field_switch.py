"""Switching an application's image field to another pipeline, at once for every search.

The pipeline must be on standby in the field (``engine.standby``) with every image's vectors:
its reindex job done with no image failed, or it is the pipeline the field was switched away
from less than the switch grace ago. One conditional transaction gives the field the
pipeline and puts the one it used on standby until the grace is over (the catalog's version
goes up with it, so every server's next search plans with the new pipeline).
"""

from __future__ import annotations

from datetime import timedelta

from phantoscope.engine.boundary import entry_point
from phantoscope.engine.catalog import application_plan
from phantoscope.engine.context import Stores
from phantoscope.engine.errors import ConflictError
from phantoscope.engine.jobs import job_status
from phantoscope.engine.model import Application
from phantoscope.engine.registry import get_application
from phantoscope.engine.reindex import field_of, image_pipeline
from phantoscope.engine.standby import Standby, now, standby_of, value_of
from phantoscope.storage.reindex_store import ImageField, ReindexStore


def _reindex_first(seen: ImageField, pipeline: str) -> ConflictError:
    return ConflictError(
        "REINDEX_REQUIRED",
        f"field {seen.name!r} of application {seen.application!r} has no vectors of pipeline "
        f"{pipeline!r}: start a reindex (POST /v1/jobs {{\"kind\": \"reindex\", "
        f"\"application\": {seen.application!r}, \"field\": {seen.name!r}, \"pipeline\": "
        f"{pipeline!r}}}) and switch once it is done")


def _check_ready(stores: Stores, seen: ImageField, pipeline: str) -> None:
    """PIPELINE_IN_USE, REINDEX_REQUIRED or REINDEX_NOT_FINISHED unless every image of the
    field has the pipeline's vectors."""
    if pipeline == seen.pipeline:
        raise ConflictError("PIPELINE_IN_USE", f"field {seen.name!r} of application "
                                               f"{seen.application!r} uses pipeline "
                                               f"{pipeline!r} already")
    entry = standby_of(seen.value).get(pipeline)
    if entry is None or entry.sweep_since is not None:
        raise _reindex_first(seen, pipeline)
    if entry.job is None:  # switched away from within the grace
        lacking = ReindexStore(stores.meta).lacking(seen.application, seen.name, pipeline)
        if lacking:  # uploads its operator was down for
            raise ConflictError(
                "REINDEX_REQUIRED",
                f"{len(lacking)} image(s) of field {seen.name!r} stored since the switch lack "
                f"pipeline {pipeline!r}'s vectors (its operator was unavailable): start a "
                f"reindex with it (only those are embedded) and switch once it is done")
        return
    status = job_status(stores, entry.job)
    if status.state != "done" or status.failed:
        how = (f"is {status.state}, {status.done} of {status.total} images done"
               if status.state in ("queued", "running") else
               f"ended {status.state} with {status.failed} image(s) failed (their reasons: "
               f"GET /v1/jobs/{entry.job}); delete those images or fix the pipeline, then "
               "start the reindex again")
        raise ConflictError("REINDEX_NOT_FINISHED",
                            f"the reindex of field {seen.name!r} with pipeline {pipeline!r} "
                            f"(job {entry.job}) {how}; switch once it is done")
    lacking = ReindexStore(stores.meta).lacking(seen.application, seen.name, pipeline)
    if lacking:  # stored as the job started, by uploads that had not seen it yet
        ReindexStore(stores.meta).add_items(entry.job, lacking)
        raise ConflictError("REINDEX_NOT_FINISHED",
                            f"{len(lacking)} image(s) stored as job {entry.job} started lack "
                            f"pipeline {pipeline!r}'s vectors; the job embeds them now: "
                            "switch once it is done again")


@entry_point
def switch_field(stores: Stores, app_name: str, field: str, pipeline_name: object
                 ) -> Application:
    """Make ``pipeline_name`` the pipeline of the application's image field ``field``; the
    application as it now is."""
    plan = application_plan(stores, app_name).field(field)
    pipeline = image_pipeline(stores, pipeline_name)
    seen = field_of(stores, app_name, plan.field)
    _check_ready(stores, seen, pipeline.name)
    entries = standby_of(seen.value)
    entries.pop(pipeline.name)
    if seen.pipeline:
        grace = timedelta(seconds=stores.settings.switch_grace_s)
        entries[seen.pipeline] = Standby(seen.pipeline, kept_until=now() + grace)
    if not ReindexStore(stores.meta).set_field(seen, pipeline.name, value_of(entries)):
        raise ConflictError("FIELD_CHANGED", f"field {field!r} of application {app_name!r} "
                                             "changed meanwhile: try again")
    return get_application(stores, app_name)
