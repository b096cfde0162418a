"""Starting a watch job: its folder checked as an import's is, the job recorded running
with its first scan already claimed (no job runner takes it meanwhile), and that scan made
at once, so that the answer has its total."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

from phantoscope.engine.context import Stores
from phantoscope.engine.errors import BadRequestError, ConflictError
from phantoscope.engine.ids import new_id
from phantoscope.engine.import_sources import checked_folder, import_roots
from phantoscope.engine.watch_scan import scan_claimed, scan_token
from phantoscope.storage.job_rows import JobRow
from phantoscope.storage.job_store import JobStore
from phantoscope.storage.watch_store import WatchStore


def start_watch(stores: Stores, source: object, application: str, field: str,
                attributes: dict[str, Any] | None) -> int:
    """Check and record a watch of ``source`` into the application's field; its job id."""
    if not isinstance(source, dict) or set(source) != {"folder"}:
        raise BadRequestError("INVALID_SOURCE", 'a watch follows a folder on the server: give '
                                                'source {"folder": PATH}')
    folder = str(checked_folder(source["folder"], import_roots(stores.settings.import_roots)))
    for job in JobStore(stores.meta).unfinished_jobs():
        if job.kind == "watch" and job.application == application \
                and job.source.get("folder") == folder:
            raise ConflictError("ALREADY_WATCHED",
                                f"job {job.id} watches {folder} into {application!r} already: "
                                "cancel it first to watch the folder anew")
    job = JobRow(id=new_id(), kind="watch", application=application, field=field,
                 source={"folder": folder}, attributes=attributes, state="running", total=0,
                 started_at=datetime.now(UTC).replace(tzinfo=None))
    token = scan_token(f"start:{os.getpid()}")
    WatchStore(stores.meta).add_watch(job, claim=token)
    scan_claimed(stores, job, token)
    return job.id
