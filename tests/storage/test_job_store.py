"""The job tables on SQLite, MariaDB and PostgreSQL: claims racing from several connections
never share an item, a stale claim is taken again and its old holder changes nothing, and a
job ends only when none of its items is left."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from phantoscope.storage.job_rows import JobRow
from phantoscope.storage.job_store import JobStore
from phantoscope.storage.meta import ApplicationRow, MetaStore

ITEMS = 60


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def test_racing_claims_share_no_item_and_stale_claims_are_taken_again(database):
    _, url = database
    meta = MetaStore(url)
    try:
        meta.add(ApplicationRow(name="album", bucket="b"), "adding an application")
        store = JobStore(meta)
        store.add_job(JobRow(id=7, kind="import", application="album", field="photo",
                             source={"folder": "/photos"}, state="queued", total=ITEMS),
                      [(f"{n:02d}.jpg", 1000 + n) for n in range(ITEMS)])
        old = _now() - timedelta(hours=1)

        def claim_all(worker: int) -> list[int]:
            taken: list[int] = []
            for turn in range(ITEMS):
                claimed = store.claim(7, f"w{worker}-{turn}", 3, stale_before=old)
                if not claimed:
                    return taken
                taken.extend(item.position for item in claimed)
            return taken

        with ThreadPoolExecutor(4) as pool:
            per_worker = list(pool.map(claim_all, range(4)))
        taken = sorted(p for positions in per_worker for p in positions)
        assert taken == list(range(ITEMS))  # each item claimed once, all of them
        assert store.get_job(7).state == "running" and store.get_job(7).started_at

        # a claim older than the lease is taken again; its old holder changes nothing
        first_claim = store.claim(7, "late", 5, stale_before=_now() + timedelta(seconds=1))
        assert len(first_claim) == 5
        holders = {item.position for item in first_claim}
        store.finish(7, "w0-0", sorted(holders), {})
        assert store.counts(7).done == 0
        store.finish(7, "late", sorted(holders)[:4], {sorted(holders)[4]: "NOT_AN_IMAGE: x"})
        counts = store.counts(7)
        assert (counts.done, counts.failed, counts.claimed) == (4, 1, ITEMS - 5)
        assert store.errors(7, 10) == [(f"{sorted(holders)[4]:02d}.jpg", "NOT_AN_IMAGE: x")]
        assert not store.end_if_complete(7, "done")  # claims are still open
        store.release("late")  # nothing of it is left claimed
        rest = store.claim(7, "rest", ITEMS, stale_before=_now() + timedelta(seconds=1))
        store.finish(7, "rest", [item.position for item in rest], {})
        assert store.end_if_complete(7, "done")
        job = store.get_job(7)
        assert (job.state, job.finished_at is not None) == ("done", True)
        assert store.finished_since(7, _now() - timedelta(minutes=1)) == ITEMS
        assert not store.set_state(7, "cancelled", among=("queued", "running"))
        meta.delete_application("album")  # a job goes with its application
        assert store.get_job(7) is None and store.counts(7).pending == 0
    finally:
        meta.close()
