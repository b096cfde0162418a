"""Queries of watch jobs over the metadata database (tables in :mod:`watch_rows`).

Only one server scans a watched folder at a time: a scan is claimed in one conditional
UPDATE of the watch's row naming a fresh token (taken only when the last scan is older than
the interval and no live claim holds it), and what the scan found is recorded in one
transaction that first releases that claim, again conditionally on the token: a server
whose claim was taken over for being too old records nothing. The recording server alone
appends items to the job while it holds the row, so positions never collide.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, func, insert, or_, select, update

from phantoscope.storage.job_rows import JobItemRow, JobRow
from phantoscope.storage.job_store import CLAIMED, INSERT_CHUNK, PENDING, unfinished
from phantoscope.storage.meta import MetaStore
from phantoscope.storage.watch_rows import WatchedFileRow, WatchRow

REMOVE = "remove"  # a job item's action: delete its entity


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class WatchedFile:
    """A file as a scan saw it, and the entity id its newest item gives it."""

    item: str
    size: int
    mtime_ns: int
    entity_id: int


@dataclass(frozen=True)
class NewItem:
    """An item a scan adds: import ``item`` as ``entity_id`` (replacing ``replaces``), or,
    with ``action`` ``remove``, delete ``entity_id``."""

    item: str
    entity_id: int
    action: str | None = None
    replaces: int | None = None


@dataclass(frozen=True)
class ScanResult:
    """What a scan changes: items to add, files seen anew (or seen changed), and the
    entity ids of files gone."""

    items: Sequence[NewItem]
    seen: Sequence[WatchedFile]
    gone: Sequence[int]


class WatchStore:
    """The watch tables of one metadata store; every method is one transaction."""

    def __init__(self, meta: MetaStore) -> None:
        self.meta = meta

    def add_watch(self, job: JobRow, claim: str | None = None) -> None:
        """The watch job with its never scanned watch row, its first scan claimed under
        ``claim`` (unclaimed: None)."""
        with self.meta.session("recording a watch") as session:
            session.add(job)
            session.flush()
            session.add(WatchRow(job_id=job.id, claim=claim,
                                 claimed_at=None if claim is None else _now()))

    def claim_scan(self, job_id: int, token: str, scanned_before: datetime,
                   stale_before: datetime) -> bool:
        """Take the watch's next scan under ``token`` if one is due (its last scan ended
        before ``scanned_before``) and nobody holds it (or the holder's claim is older than
        ``stale_before``) and the watch is not cancelled; whether it was taken."""
        due = (or_(WatchRow.scanned_at.is_(None), WatchRow.scanned_at < scanned_before),
               or_(WatchRow.claim.is_(None), WatchRow.claimed_at < stale_before))
        with self.meta.session("claiming a folder scan") as session:
            if session.scalar(select(WatchRow.job_id).where(
                    WatchRow.job_id == job_id, *due, unfinished(job_id))) is None:
                return False  # the usual answer, without writing
            taken = session.execute(update(WatchRow).where(WatchRow.job_id == job_id, *due)
                                    .values(claim=token, claimed_at=_now()))
            return taken.rowcount == 1

    def seen(self, job_id: int) -> list[WatchedFile]:
        """The files the watch's last scans saw."""
        with self.meta.session("reading a watch's files") as session:
            rows = session.execute(select(
                WatchedFileRow.item, WatchedFileRow.size, WatchedFileRow.mtime_ns,
                WatchedFileRow.entity_id).where(WatchedFileRow.job_id == job_id))
            return [WatchedFile(item, int(size), int(mtime), int(entity))
                    for item, size, mtime, entity in rows]

    def open_items(self, job_id: int) -> set[str]:
        """The items of the job still pending or claimed."""
        with self.meta.session("reading a watch's open items") as session:
            return set(session.scalars(select(JobItemRow.item).where(
                JobItemRow.job_id == job_id, JobItemRow.state.in_((PENDING, CLAIMED)))))

    def record_scan(self, job_id: int, token: str, result: ScanResult | None) -> bool:
        """End the scan claimed under ``token``: add its items (the job's total grows by
        them) and its view of the folder, in one transaction; ``None``: a scan that found
        nothing to do (the folder could not be read). Whether the claim was still the
        token's (otherwise nothing is written). The scan of a watch cancelled while it ran
        adds nothing."""
        with self.meta.session("recording a folder scan") as session:
            ended = session.execute(update(WatchRow).where(
                WatchRow.job_id == job_id, WatchRow.claim == token
            ).values(claim=None, claimed_at=None, scanned_at=_now()))
            if ended.rowcount != 1 or result is None \
                    or not session.scalar(select(unfinished(job_id))):
                return ended.rowcount == 1
            if result.items:
                first = session.scalar(select(func.coalesce(func.max(JobItemRow.position), -1))
                                       .where(JobItemRow.job_id == job_id)) + 1
                for start in range(0, len(result.items), INSERT_CHUNK):
                    session.execute(insert(JobItemRow), [
                        {"job_id": job_id, "position": first + start + offset,
                         "item": each.item, "entity_id": each.entity_id, "state": PENDING,
                         "action": each.action, "replaces": each.replaces}
                        for offset, each in enumerate(result.items[start:start + INSERT_CHUNK])])
                session.execute(update(JobRow).where(JobRow.id == job_id)
                                .values(total=JobRow.total + len(result.items)))
            gone = [*result.gone, *(each.replaces for each in result.items
                                    if each.replaces is not None)]
            for start in range(0, len(gone), INSERT_CHUNK):
                session.execute(delete(WatchedFileRow).where(
                    WatchedFileRow.job_id == job_id,
                    WatchedFileRow.entity_id.in_(gone[start:start + INSERT_CHUNK])))
            for start in range(0, len(result.seen), INSERT_CHUNK):
                session.execute(insert(WatchedFileRow), [
                    {"job_id": job_id, "entity_id": each.entity_id, "item": each.item,
                     "size": each.size, "mtime_ns": each.mtime_ns}
                    for each in result.seen[start:start + INSERT_CHUNK]])
            return True

    def keep_entity(self, job_id: int, failed: int, kept: int) -> None:
        """A changed file's new entity ``failed`` was not stored: its old entity ``kept``
        stands for the file still (removed when the file goes, replaced when it changes)."""
        with self.meta.session("keeping a watched file's entity") as session:
            session.execute(update(WatchedFileRow).where(
                WatchedFileRow.job_id == job_id, WatchedFileRow.entity_id == failed
            ).values(entity_id=kept))
