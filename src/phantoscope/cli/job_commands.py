"""`phantoscope jobs start|list|show|cancel`: work a server does in the background."""

from __future__ import annotations

import json
import os
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from phantoscope.cli.filter_options import Attrs, parse_attributes
from phantoscope.cli.output import Url, connect, console, details, fail, row, table
from phantoscope.client import DEFAULT_URL, Job, PhantoscopeClient

KINDS = ("import", "reindex", "watch")
jobs_app = typer.Typer(no_args_is_help=True, help="Background jobs on a Phantoscope server.")

JobId = Annotated[int, typer.Argument(help="The job's id (phantoscope jobs list).",
                                      show_default=False)]
AsJson = Annotated[bool, typer.Option("--json", help="Print the job as the API gives it.")]


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    minutes, seconds = divmod(int(value), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{seconds:02d}"


def _job_json(job: Job) -> str:
    return json.dumps({
        "id": job.id, "kind": job.kind, "application": job.application, "field": job.field,
        "pipeline": job.pipeline, "state": job.state, "total": job.total,
        "done": job.done, "failed": job.failed,
        "errors": [{"item": item, "reason": reason} for item, reason in job.errors],
        "rate": job.rate, "eta_s": job.eta_s}, ensure_ascii=False)


def _target(job: Job) -> str:
    """What a job works on: ``album · image``, ``album · image → clip`` for a reindex."""
    return f"{job.application} · {job.field}" + (f" → {job.pipeline}" if job.pipeline else "")


def _show(job: Job) -> None:
    console.print(details([
        ("job", str(job.id)), ("kind", job.kind), ("application", job.application),
        ("field", job.field), *([("pipeline", job.pipeline)] if job.pipeline else []),
        ("state", job.state),
        ("done", f"{job.done} of {job.total}"), ("failed", str(job.failed)),
        ("rate", f"{job.rate:.1f} images/s"), ("eta", _seconds(job.eta_s)),
    ]))
    if job.errors:
        shown = table("item", "reason", title=f"failed items (first {len(job.errors)})")
        for item, reason in job.errors:
            shown.add_row(*row(item, reason))
        console.print(shown)


def _follow(client: PhantoscopeClient, job: Job) -> Job:
    """Show the job's progress until it ends; the job then."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]}"), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        bar = progress.add_task(f"job {job.id}", total=job.total, rate="")

        def shown(now: Job) -> None:
            progress.update(bar, completed=now.done + now.failed,
                            description=f"job {now.id} {now.state}",
                            rate=f"{now.rate:.1f} images/s, eta {_seconds(now.eta_s)}")

        return client.jobs.wait(job.id, on_progress=shown)


@jobs_app.command("start")
def jobs_start(
    kind: Annotated[str, typer.Argument(help="What the job does: import, watch (a folder, "
                                             "until cancelled), or reindex (APP's images "
                                             "with another pipeline).", show_default=False)],
    app: Annotated[str, typer.Argument(help="The application.", show_default=False)],
    sources: Annotated[list[str] | None, typer.Argument(
        help="A folder on the server (under its PHANTOSCOPE_IMPORT_ROOTS; a relative path is "
             "taken from here), or http(s) URLs of images; for reindex, the pipeline.",
        show_default=False)] = None,
    s3: Annotated[str | None, typer.Option(
        "--s3", help="Import the images under s3://BUCKET/PREFIX of the server's S3 "
                     "endpoint instead.", show_default=False)] = None,
    field: Annotated[str | None, typer.Option(
        "--field", help="The image field (default: the only one).", show_default=False)] = None,
    attrs: Attrs = None,
    wait: Annotated[bool, typer.Option(
        "--wait", help="Show its progress until it ends; exit 1 if items failed.")] = False,
    url: Url = DEFAULT_URL,
) -> None:
    """Start a job: import a folder the server reads, URLs or an S3 prefix into APP in the
    background, or watch a folder (files added, changed and removed follow, until the job
    is cancelled), or reindex: embed every image of APP's field again with another pipeline
    (`phantoscope jobs start reindex APP PIPELINE`; searches keep the field's pipeline until
    `phantoscope app switch APP FIELD PIPELINE`).

    Images are named by their path under the folder (their URL's file name, their key
    under the prefix) and carry their EXIF and the --attr attributes; an import does not
    store again images the application holds already (same SHA-256). The job goes on if
    this command stops, or the server restarts.
    """
    if kind not in KINDS:
        raise fail(f"no job of kind {kind!r}: kinds are {', '.join(KINDS)}", 2)
    sources = sources or []
    if kind == "reindex":
        if len(sources) != 1 or s3 is not None or attrs:
            raise fail("a reindex takes one pipeline: phantoscope jobs start reindex APP "
                       "PIPELINE [--field FIELD]", 2)
        _reindex(app, sources[0], field, wait, url)
        return
    urls = [source for source in sources if source.startswith(("http://", "https://"))]
    if kind == "watch" and (urls or s3 or len(sources) != 1):
        raise fail("a watch follows one folder: give its path", 2)
    if kind == "watch" and wait:
        raise fail("a watch runs until cancelled: follow it with phantoscope jobs show", 2)
    folders = len(sources) - len(urls)
    if not (not sources if s3 is not None else (not folders if urls else folders == 1)):
        raise fail("give one folder, one or more http(s) URLs, or --s3 s3://BUCKET/PREFIX", 2)
    attributes = parse_attributes(attrs or ()) or None
    with connect(url) as client:
        if kind == "watch":
            job = client.jobs.start_watch(app, os.path.abspath(sources[0]), field=field,
                                          attributes=attributes)
        elif urls or s3:
            job = client.jobs.start_import(app, urls=urls or None, s3=s3, field=field,
                                           attributes=attributes)
        else:
            job = client.jobs.start_import(app, folder=os.path.abspath(sources[0]),
                                           field=field, attributes=attributes)
        console.print(f"job {job.id}: {kind} of {job.total} images into {app}, {job.state}",
                      highlight=False)
        if wait:
            job = _follow(client, job)
            _show(job)
    if wait and (job.failed or job.state != "done"):
        raise typer.Exit(1)


def _reindex(app: str, pipeline: str, field: str | None, wait: bool, url: str) -> None:
    with connect(url) as client:
        job = client.jobs.start_reindex(app, pipeline, field=field)
        console.print(f"job {job.id}: reindex of {job.total} images of {app} with {pipeline}, "
                      f"{job.state}", highlight=False)
        if wait:
            job = _follow(client, job)
            _show(job)
    if wait and (job.failed or job.state != "done"):
        raise typer.Exit(1)


@jobs_app.command("list")
def jobs_list(url: Url = DEFAULT_URL) -> None:
    """The newest jobs, newest first."""
    with connect(url) as client:
        jobs = client.jobs.list()
    shown = table("id", "kind", "application", "state", "done", "failed", "rate", "eta")
    for job in jobs:
        shown.add_row(*row(str(job.id), job.kind, _target(job), job.state,
                           f"{job.done}/{job.total}", str(job.failed), f"{job.rate:.1f}/s",
                           _seconds(job.eta_s)))
    console.print(shown)


@jobs_app.command("show")
def jobs_show(job_id: JobId, as_json: AsJson = False, url: Url = DEFAULT_URL) -> None:
    """A job's state, progress and failed items."""
    with connect(url) as client:
        job = client.jobs.get(job_id)
    if as_json:
        console.print_json(_job_json(job))
    else:
        _show(job)


@jobs_app.command("cancel")
def jobs_cancel(job_id: JobId, url: Url = DEFAULT_URL) -> None:
    """Stop a queued or running job: no more of its images start (those in work end)."""
    with connect(url) as client:
        job = client.jobs.cancel(job_id)
    console.print(f"job {job.id} cancelled: {job.done} of {job.total} images done",
                  highlight=False)
