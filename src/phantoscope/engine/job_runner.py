"""The background work of a server: its worker threads take batches of the unfinished jobs'
items and run them, the oldest job first.

Several servers sharing the metadata store share the work: each batch is claimed atomically
(:class:`~phantoscope.storage.job_store.JobStore`). A claim is renewed while its batch runs;
a claim left by a killed server is taken again once older than ``job_lease_s``. A batch
that fails on a store or an operator (down, restarting) is given back whole and tried again
after a pause that doubles up to :data:`MAX_PAUSE_S`: the job waits, its items do not fail.
A watch job never ends by itself: each look for work scans its folder when a scan is due
(:mod:`engine.watch_scan`), which adds the items the folder's changes make.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from phantoscope.engine.context import Stores
from phantoscope.engine.errors import StorageError
from phantoscope.engine.import_batch import import_items
from phantoscope.engine.reindex_batch import catch_up, reindex_items
from phantoscope.engine.watch_scan import scan_if_due
from phantoscope.storage.job_rows import JobRow
from phantoscope.storage.job_store import ClaimedItem, JobStore
from phantoscope.storage.store_error import StoreError

log = logging.getLogger(__name__)

MAX_PAUSE_S = 30.0
STOP_WAIT_S = 30.0


def _running(pid: int) -> bool:
    """Whether another process with this id runs here (this process started after every
    claim it finds at its start, so its own id in one names an earlier process)."""
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's
    return True


class JobRunner:
    """``settings.job_concurrency`` worker threads over the stores' jobs."""

    def __init__(self, stores: Stores) -> None:
        settings = stores.settings
        self.stores = stores
        self.jobs = JobStore(stores.meta)
        self.worker = f"{socket.gethostname()[:32]}:{os.getpid()}"
        self.batch_size = settings.job_batch_size
        self.lease = timedelta(seconds=settings.job_lease_s)
        self.poll_s = settings.job_poll_s
        self._stopping = threading.Event()
        self._woken = threading.Event()
        self._threads = [threading.Thread(target=self._work, name=f"job-worker-{n}", daemon=True)
                         for n in range(settings.job_concurrency)]

    def start(self) -> None:
        try:
            self.release_orphans()
        except StoreError as exc:  # their leases run out instead
            log.warning("could not look for claims of stopped servers: %s", exc)
        for thread in self._threads:
            thread.start()

    def release_orphans(self) -> int:
        """Give back the claims of this host's servers that are gone (a server killed and
        started again), so that their items are taken at once rather than when their lease
        runs out; how many. A claim of a live process, or another host's, waits its lease."""
        host = self.worker.rsplit(":", 1)[0]
        released = 0
        for token in self.jobs.claims_in_work():
            claimant, _, pid = token.rsplit(":", 1)[0].rpartition(":")
            if claimant == host and pid.isdigit() and not _running(int(pid)):
                self.jobs.release(token)
                released += 1
        if released:
            log.info("gave back %d job claim(s) of this host's stopped servers", released)
        return released

    def wake(self) -> None:
        """Look for work now (a job was just started here), not at the next poll."""
        self._woken.set()

    def stop(self) -> None:
        """Start no more batches; wait for those in work (a claim not finished in time is
        taken again by a server once its lease is over)."""
        self._stopping.set()
        self._woken.set()
        deadline = time.monotonic() + STOP_WAIT_S
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _work(self) -> None:
        pause = self.poll_s
        while not self._stopping.is_set():
            try:
                worked = self.work_once()
                pause = self.poll_s
            except (StorageError, StoreError) as exc:
                worked, pause = False, min(2 * pause, MAX_PAUSE_S)
                log.warning("job work waits %.0f s for the stores: %s", pause, exc)
            except Exception as exc:  # an operator down, or anything a batch did not expect
                worked, pause = False, min(2 * pause, MAX_PAUSE_S)
                log.warning("job work waits %.0f s: %s: %s", pause, type(exc).__name__, exc)
            if not worked:
                self._woken.wait(pause)
                self._woken.clear()

    def work_once(self) -> bool:
        """Claim and run one batch of the oldest job with items to do; whether there was one.
        A job none of whose items is left to do ends."""
        for job in self.jobs.unfinished_jobs():
            if job.kind == "watch":
                scan_if_due(self.stores, job, self.worker)
            token = f"{self.worker}:{uuid.uuid4().hex[:16]}"
            stale = datetime.now(UTC).replace(tzinfo=None) - self.lease
            items = self.jobs.claim(job.id, token, self.batch_size, stale_before=stale)
            if items:
                self._run(job, token, items)
                return True
            self._end(job)
        return False

    def _run(self, job: JobRow, token: str, items: list[ClaimedItem]) -> None:
        try:
            with self._renewing(token):
                run = reindex_items if job.kind == "reindex" else import_items
                result = run(self.stores, job, items)
        except BaseException:
            self.jobs.release(token)
            raise
        self.jobs.finish(job.id, token, result.done, result.failed)

    def _end(self, job: JobRow) -> None:
        if job.kind == "watch":
            return  # a watch runs until cancelled
        counts = self.jobs.counts(job.id)
        if counts.pending or counts.claimed:
            return  # in work elsewhere
        if job.kind == "reindex" and catch_up(self.stores, job):
            return  # images stored as it started, to do before it ends
        state = "failed" if counts.failed and not counts.done else "done"
        if self.jobs.end_if_complete(job.id, state):
            log.info("job %d (%s into %s) %s: %d done, %d failed", job.id, job.kind,
                     job.application, state, counts.done, counts.failed)

    @contextmanager
    def _renewing(self, token: str) -> Iterator[None]:
        """Renew the claim every third of the lease while the block runs."""
        finished = threading.Event()

        def renew() -> None:
            while not finished.wait(self.lease.total_seconds() / 3):
                try:
                    self.jobs.renew(token)
                except StoreError as exc:
                    log.warning("could not renew a job claim: %s", exc)

        renewer = threading.Thread(target=renew, name="job-claim-renewer", daemon=True)
        renewer.start()
        try:
            yield
        finally:
            finished.set()
            renewer.join()
