"""Searching an image field with one of its standby pipelines instead of its own: the
pipeline a finished reindex embedded every image with, so that a user can compare it with
the field's own on their images before switching (``phantoscope eval --app``)."""

from __future__ import annotations

from phantoscope.engine.boundary import entry_point
from phantoscope.engine.catalog import FieldPlan
from phantoscope.engine.context import Stores
from phantoscope.engine.errors import BadRequestError, ConflictError
from phantoscope.engine.jobs import job_status
from phantoscope.engine.standby import standby_of


@entry_point
def searched_with(stores: Stores, plan: FieldPlan, pipeline: object) -> FieldPlan:
    """``plan`` searching with ``pipeline`` (None: the field's own). Another pipeline must
    hold every image of the field: REINDEX_REQUIRED or REINDEX_NOT_FINISHED (409) if not."""
    if pipeline is None or pipeline == plan.pipeline.name:
        return plan
    if not isinstance(pipeline, str):
        raise BadRequestError("INVALID_REQUEST", "pipeline must be a pipeline's name")
    field = next(each for each in plan.application.fields if each.name == plan.field)
    entry = standby_of(field.value).get(pipeline)
    found = [each for each in plan.standby if each.pipeline.name == pipeline]
    if entry is None or not found:
        raise ConflictError(
            "REINDEX_REQUIRED",
            f"field {plan.field!r} of application {plan.application.name!r} is searched with "
            f"its pipeline {plan.pipeline.name!r}, or one a finished reindex job embedded "
            f"every image with; {pipeline!r} is neither: start a reindex with it first")
    if entry.job is not None:
        status = job_status(stores, entry.job)
        if status.state != "done" or status.failed:
            raise ConflictError(
                "REINDEX_NOT_FINISHED",
                f"the reindex of field {plan.field!r} with pipeline {pipeline!r} (job "
                f"{entry.job}) is {status.state} with {status.done} of {status.total} images "
                f"done and {status.failed} failed: search with it once it is done")
    return found[0]
