"""The watch tables on SQLite, MariaDB and PostgreSQL: of servers racing for a folder's scan
one takes it, a scan is not due again before its interval, a stale scan claim is taken over
and its old holder records nothing, and a recorded scan appends its items to the job."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from phantoscope.storage.job_rows import JobRow
from phantoscope.storage.job_store import JobStore
from phantoscope.storage.meta import ApplicationRow, MetaStore
from phantoscope.storage.watch_store import (
    REMOVE,
    NewItem,
    ScanResult,
    WatchedFile,
    WatchStore,
)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _watched(database: tuple[str, str], job: int, claim: str | None = None
             ) -> tuple[MetaStore, WatchStore, JobStore]:
    """A fresh store holding a running watch ``job`` into application "album", its first
    scan claimed under ``claim``."""
    meta = MetaStore(database[1])
    meta.add(ApplicationRow(name="album", bucket="b"), "adding an application")
    watches = WatchStore(meta)
    watches.add_watch(JobRow(id=job, kind="watch", application="album", field="photo",
                             source={"folder": "/photos"}, state="running", total=0),
                      claim=claim)
    return meta, watches, JobStore(meta)


def test_a_watch_started_with_its_first_scan_claimed_is_scanned_by_its_starter(database):
    meta, watches, jobs = _watched(database, 7, claim="starter")
    try:
        due, old = _now() + timedelta(seconds=1), _now() - timedelta(hours=1)
        assert not watches.claim_scan(7, "job-runner", due, old)  # held, and not stale
        assert watches.record_scan(7, "starter", ScanResult(
            [NewItem("a.jpg", 11)], [WatchedFile("a.jpg", 100, 1, 11)], []))
        assert jobs.get_job(7).total == 1
    finally:
        meta.close()


def test_one_server_scans_at_a_time_and_only_its_claim_records(database):
    meta, watches, jobs = _watched(database, 9)
    try:
        due, old = _now() + timedelta(seconds=1), _now() - timedelta(hours=1)

        with ThreadPoolExecutor(4) as pool:
            won = list(pool.map(lambda n: watches.claim_scan(9, f"s{n}", due, old), range(4)))
        assert sorted(won) == [False, False, False, True]
        holder = f"s{won.index(True)}"
        assert not watches.record_scan(9, "someone-else", None)
        assert watches.record_scan(9, holder, ScanResult(
            [NewItem("a.jpg", 11), NewItem("b.jpg", 12)],
            [WatchedFile("a.jpg", 100, 1, 11), WatchedFile("b.jpg", 200, 2, 12)], []))
        assert jobs.get_job(9).total == 2
        assert watches.open_items(9) == {"a.jpg", "b.jpg"}
        assert sorted(watches.seen(9), key=lambda f: f.item) == \
            [WatchedFile("a.jpg", 100, 1, 11), WatchedFile("b.jpg", 200, 2, 12)]
        # scanned a moment ago: not due until the interval has passed
        assert not watches.claim_scan(9, "early", _now() - timedelta(seconds=30), old)

        assert watches.claim_scan(9, "slow", due, old)
        assert not watches.claim_scan(9, "eager", due, old)  # held, and not stale
        assert watches.claim_scan(9, "late", due, stale_before=_now() + timedelta(seconds=1))
        assert not watches.record_scan(9, "slow", ScanResult(
            [NewItem("c.jpg", 13)], [WatchedFile("c.jpg", 1, 1, 13)], []))
        assert jobs.get_job(9).total == 2  # the slow scan's claim was taken: nothing of it
        assert watches.record_scan(9, "late", ScanResult(
            [NewItem("a.jpg", 21, replaces=11), NewItem("b.jpg", 12, action=REMOVE)],
            [WatchedFile("a.jpg", 150, 3, 21)], [12]))
        assert jobs.get_job(9).total == 4
        assert watches.seen(9) == [WatchedFile("a.jpg", 150, 3, 21)]
        claimed = jobs.claim(9, "worker", 10, stale_before=old)
        assert [(i.position, i.item, i.entity_id, i.action, i.replaces) for i in claimed] == [
            (0, "a.jpg", 11, None, None), (1, "b.jpg", 12, None, None),
            (2, "a.jpg", 21, None, 11), (3, "b.jpg", 12, REMOVE, None)]

        watches.keep_entity(9, failed=21, kept=11)  # the new version was not stored
        assert watches.seen(9) == [WatchedFile("a.jpg", 150, 3, 11)]
        meta.delete_application("album")  # a watch's rows go with it
        assert watches.seen(9) == [] and jobs.get_job(9) is None
    finally:
        meta.close()


def test_a_cancelled_watch_neither_scans_nor_records_nor_starts_items(database):
    """A cancel that lands while a server runs the watch: the scan in progress adds nothing,
    no scan is claimed after it, and items already recorded are never claimed."""
    meta, watches, jobs = _watched(database, 5)
    try:
        due, old = _now() + timedelta(seconds=1), _now() - timedelta(hours=1)
        assert watches.claim_scan(5, "first", due, old)
        assert watches.record_scan(5, "first", ScanResult(
            [NewItem("a.jpg", 11)], [WatchedFile("a.jpg", 100, 1, 11)], []))
        assert watches.claim_scan(5, "second", due + timedelta(seconds=1), old)

        assert jobs.set_state(5, "cancelled", among=("queued", "running"))
        assert watches.record_scan(5, "second", ScanResult(
            [NewItem("b.jpg", 12)], [WatchedFile("b.jpg", 200, 2, 12)], []))
        assert jobs.get_job(5).total == 1 and watches.open_items(5) == {"a.jpg"}
        assert not watches.claim_scan(5, "third", due + timedelta(hours=2), old)
        assert jobs.claim(5, "worker", 10, stale_before=old) == []
        assert (jobs.get_job(5).state, jobs.counts(5).pending) == ("cancelled", 1)
    finally:
        meta.close()
