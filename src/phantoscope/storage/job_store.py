"""Queries of background jobs over the metadata database (tables in :mod:`job_rows`).

Items are claimed in one conditional UPDATE naming a fresh claim token: a row moves to
``claimed`` only if it is still pending (or its claim is older than the lease), so two
servers sharing the database never both take it; each then reads back the rows bearing its
own token. Finishing an item is again conditional on the token: a server whose claim was
taken over for being too old changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import Exists

from phantoscope.storage.job_rows import JobItemRow, JobRow
from phantoscope.storage.meta import EntityRow, MetaStore

PENDING, CLAIMED, DONE, FAILED = "pending", "claimed", "done", "failed"
UNFINISHED_JOBS = ("queued", "running")
INSERT_CHUNK = 1000
CLAIM_TRIES = 3


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def unfinished(job_id: int) -> Exists:
    """A condition: the job is queued or running (not cancelled, not ended)."""
    return exists().where(JobRow.id == job_id, JobRow.state.in_(UNFINISHED_JOBS))


def insert_items(session: Session, job_id: int, items: Sequence[tuple[str, int]],
                 first: int = 0) -> None:
    """Pending items (item, entity id) of the job, at positions from ``first`` on."""
    for start in range(0, len(items), INSERT_CHUNK):
        session.execute(JobItemRow.__table__.insert(), [
            {"job_id": job_id, "position": first + start + offset, "item": item,
             "entity_id": entity_id, "state": PENDING}
            for offset, (item, entity_id) in enumerate(items[start:start + INSERT_CHUNK])
        ])


@dataclass(frozen=True)
class ItemCounts:
    pending: int = 0
    claimed: int = 0
    done: int = 0
    failed: int = 0


@dataclass(frozen=True)
class ClaimedItem:
    position: int
    item: str
    entity_id: int
    action: str | None = None  # None: import; "remove": delete entity_id (a watch's)
    replaces: int | None = None  # the entity entity_id takes the place of (a watch's)


class JobStore:
    """The job tables of one metadata store; every method is one transaction."""

    def __init__(self, meta: MetaStore) -> None:
        self.meta = meta

    def add_job(self, job: JobRow, items: Sequence[tuple[str, int]]) -> None:
        """The job with its items, (item, entity id) in order, in one transaction."""
        with self.meta.session("recording a job") as session:
            session.add(job)
            session.flush()
            insert_items(session, job.id, items)

    def get_job(self, job_id: int) -> JobRow | None:
        with self.meta.session("reading a job") as session:
            return session.get(JobRow, job_id)

    def list_jobs(self, limit: int) -> list[JobRow]:
        """The newest jobs first."""
        with self.meta.session("listing jobs") as session:
            query = select(JobRow).order_by(JobRow.created_at.desc(), JobRow.id.desc())
            return list(session.scalars(query.limit(limit)))

    def unfinished_jobs(self) -> list[JobRow]:
        """Queued and running jobs, oldest first."""
        with self.meta.session("finding jobs to run") as session:
            query = (select(JobRow).where(JobRow.state.in_(UNFINISHED_JOBS))
                     .order_by(JobRow.created_at, JobRow.id))
            return list(session.scalars(query))

    def counts(self, job_id: int) -> ItemCounts:
        with self.meta.session("counting a job's items") as session:
            found = dict(session.execute(
                select(JobItemRow.state, func.count()).where(JobItemRow.job_id == job_id)
                .group_by(JobItemRow.state)).all())
        return ItemCounts(**{state: int(found.get(state, 0))
                             for state in (PENDING, CLAIMED, DONE, FAILED)})

    def finished_since(self, job_id: int, since: datetime) -> int:
        """How many of the job's items ended (done or failed) after ``since``."""
        with self.meta.session("measuring a job's rate") as session:
            return int(session.scalar(select(func.count()).where(
                JobItemRow.job_id == job_id, JobItemRow.finished_at >= since)) or 0)

    def errors(self, job_id: int, limit: int) -> list[tuple[str, str]]:
        """(item, reason) of the job's first ``limit`` failed items, in the job's order."""
        with self.meta.session("reading a job's errors") as session:
            query = (select(JobItemRow.item, JobItemRow.error)
                     .where(JobItemRow.job_id == job_id, JobItemRow.state == FAILED)
                     .order_by(JobItemRow.position).limit(limit))
            return [(item, error or "") for item, error in session.execute(query)]

    def set_state(self, job_id: int, state: str, among: Sequence[str]) -> bool:
        """Move the job to ``state`` if it is in one of ``among``; whether it moved. Ending
        states stamp ``finished_at``."""
        values: dict[str, object] = {"state": state}
        if state not in UNFINISHED_JOBS:
            values["finished_at"] = _now()
        with self.meta.session("changing a job's state") as session:
            moved = session.execute(update(JobRow).where(
                JobRow.id == job_id, JobRow.state.in_(among)).values(**values))
            return moved.rowcount == 1

    def claim(self, job_id: int, token: str, limit: int,
              stale_before: datetime) -> list[ClaimedItem]:
        """Take up to ``limit`` of the job's pending items (or items whose claim is older
        than ``stale_before``) under ``token``, in the job's order; a queued job becomes
        running. The items taken: none only when none is left (a try that another server's
        claim beat to every item it chose is made again)."""
        for _ in range(CLAIM_TRIES):
            chosen = self._claim_once(job_id, token, limit, stale_before)
            if chosen is None:
                return []
            with self.meta.session("reading claimed items") as session:
                rows = session.execute(
                    select(JobItemRow.position, JobItemRow.item, JobItemRow.entity_id,
                           JobItemRow.action, JobItemRow.replaces)
                    .where(JobItemRow.claim == token, JobItemRow.state == CLAIMED)
                    .order_by(JobItemRow.position))
                taken = [ClaimedItem(int(p), item, int(e), action, replaces)
                         for p, item, e, action, replaces in rows]
            if taken:
                return taken
        return []

    def _claim_once(self, job_id: int, token: str, limit: int,
                    stale_before: datetime) -> list[int] | None:
        """One conditional claim; the positions it chose (None: nothing was claimable)."""
        claimable = or_(JobItemRow.state == PENDING,
                        and_(JobItemRow.state == CLAIMED, JobItemRow.claimed_at < stale_before))
        with self.meta.session("claiming a job's items") as session:
            # A cancelled job's items are never started. The job's state is checked in this
            # plain read only: in the UPDATE, InnoDB would lock the job's row for it, and two
            # servers claiming at once deadlocked over it (one then moves it to running).
            positions = list(session.scalars(
                select(JobItemRow.position)
                .where(JobItemRow.job_id == job_id, claimable, unfinished(job_id))
                .order_by(JobItemRow.position).limit(limit)))
            if not positions:
                return None
            session.execute(update(JobItemRow).where(
                JobItemRow.job_id == job_id, JobItemRow.position.in_(positions), claimable
            ).values(state=CLAIMED, claim=token, claimed_at=_now()))
            session.execute(update(JobRow).where(JobRow.id == job_id, JobRow.state == "queued")
                            .values(state="running", started_at=_now()))
            return positions

    def renew(self, token: str) -> None:
        """The claim is still being worked on: its lease starts again."""
        with self.meta.session("renewing a claim") as session:
            session.execute(update(JobItemRow).where(
                JobItemRow.claim == token, JobItemRow.state == CLAIMED
            ).values(claimed_at=_now()))

    def finish(self, job_id: int, token: str, done: Sequence[int],
               failed: Mapping[int, str]) -> None:
        """Items of the claim ended: ``done`` positions, ``failed`` positions with reasons."""
        now = _now()
        mine = and_(JobItemRow.job_id == job_id, JobItemRow.claim == token,
                    JobItemRow.state == CLAIMED)
        with self.meta.session("recording items done") as session:
            if done:
                session.execute(update(JobItemRow).where(
                    mine, JobItemRow.position.in_(done)).values(state=DONE, finished_at=now))
            for position, reason in failed.items():
                session.execute(update(JobItemRow).where(
                    mine, JobItemRow.position == position
                ).values(state=FAILED, finished_at=now, error=reason))

    def release(self, token: str) -> None:
        """Give the claim's unfinished items back, to be claimed again."""
        with self.meta.session("releasing claimed items") as session:
            session.execute(update(JobItemRow).where(
                JobItemRow.claim == token, JobItemRow.state == CLAIMED
            ).values(state=PENDING, claim=None, claimed_at=None))

    def claims_in_work(self) -> list[str]:
        """The tokens of every claim with items still claimed."""
        with self.meta.session("finding claims in work") as session:
            return list(session.scalars(select(JobItemRow.claim).where(
                JobItemRow.state == CLAIMED, JobItemRow.claim.is_not(None)).distinct()))

    def end_if_complete(self, job_id: int, state: str) -> bool:
        """A running job none of whose items is pending or claimed moves to ``state``."""
        open_items = exists().where(JobItemRow.job_id == job_id,
                                    JobItemRow.state.in_((PENDING, CLAIMED)))
        with self.meta.session("ending a job") as session:
            moved = session.execute(update(JobRow).where(
                JobRow.id == job_id, JobRow.state == "running", ~open_items
            ).values(state=state, finished_at=_now()))
            return moved.rowcount == 1

    def existing_entities(self, application: str, ids: Sequence[int]) -> set[int]:
        """Which of these entity ids the application's entities have."""
        with self.meta.session("finding entities of job items") as session:
            return {int(i) for i in session.scalars(select(EntityRow.id).where(
                EntityRow.application == application, EntityRow.id.in_(list(ids))))}

    def hashes_held(self, application: str, field: str, hashes: Sequence[str]) -> set[str]:
        """Which of these SHA-256 the application's field holds."""
        with self.meta.session("finding images already held") as session:
            return set(session.scalars(select(EntityRow.sha256).where(
                EntityRow.application == application, EntityRow.field == field,
                EntityRow.sha256.in_(list(hashes)))))
