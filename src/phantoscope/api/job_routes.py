"""/v1/jobs: background jobs (import, watch, reindex), their progress, cancelling them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from phantoscope.api.deps import stores_of
from phantoscope.api.responses import COMMON, errors
from phantoscope.api.serialize import job_json
from phantoscope.engine import jobs

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], responses=COMMON)


class StartJob(BaseModel):
    """Each value is checked by the engine, which names what to fix."""

    model_config = ConfigDict(extra="ignore")

    kind: Any = Field(description='"import", "watch" or "reindex"')
    application: Any = Field(description="The application the images go into (import, "
                                         "watch) or whose images are embedded again "
                                         "(reindex)")
    source: Any = Field(None, description='import: {"folder": PATH} (a folder on the server, '
                        'under PHANTOSCOPE_IMPORT_ROOTS), {"urls": [URL, ...]} or {"s3": '
                        '"s3://BUCKET/PREFIX"} (the server\'s S3 endpoint); watch: '
                        '{"folder": PATH}')
    field: Any = Field(None, description="The image field (default: the only one)")
    attributes: Any = Field(None, description="import, watch: attributes every imported "
                                              "image gets")
    pipeline: Any = Field(None, description="reindex: the pipeline every stored image of the "
                                            "field is embedded with (searches keep the "
                                            "field's own until POST /v1/application/<app>/"
                                            "fields/<field>/switch)")


@router.post("", responses=errors(403, 409))
@router.post("/", include_in_schema=False)
def start_job(body: StartJob, request: Request) -> dict[str, Any]:
    """Start a job; it runs in the background on the servers sharing this database. Import
    images named by their path under the folder (their URL's file name, their key under the
    S3 prefix), watch a folder (files added, changed and removed follow until the job is
    cancelled), or reindex an application's field with another pipeline (uploads meanwhile
    get both pipelines' vectors). Answers the job as GET /v1/jobs/<id> does."""
    started = jobs.start_job(stores_of(request), body.model_dump())
    request.app.state.job_runner.wake()  # this server starts on it at once
    return job_json(started)


@router.get("")
@router.get("/", include_in_schema=False)
def list_jobs(request: Request) -> list[dict[str, Any]]:
    """The newest 100 jobs, newest first, each as GET /v1/jobs/<id> answers it."""
    return [job_json(status) for status in jobs.list_jobs(stores_of(request))]


@router.get("/{job_id}")
def get_job(job_id: str, request: Request) -> dict[str, Any]:
    """A job: {"id", "kind", "application", "field", "pipeline", "state", "total", "done",
    "failed", "errors": [{"item", "reason"}], "rate", "eta_s"}. `application` and `field`
    are what it works on, `pipeline` the one a reindex embeds with (null for an import or a
    watch); then its state and progress: items done and failed, the first 100 errors, items
    a second, seconds left."""
    return job_json(jobs.job_status(stores_of(request), job_id))


@router.post("/{job_id}/cancel", responses=errors(409))
def cancel_job(job_id: str, request: Request) -> dict[str, Any]:
    """Stop a queued or running job: no more of its items start (those in work end)."""
    return job_json(jobs.cancel_job(stores_of(request), job_id))
