"""The tables of background jobs (revision 0006): a job, and the items it works through.

``jobs`` holds one row per job: its kind (``import``), application and field, its source
(``{"folder": PATH}`` or ``{"urls": N}``), the attributes every entity it makes gets, its
state and when it was made, started and ended. A job goes with its application.

``job_items`` holds one row per image of a job: the item (a path relative to the folder, or
a URL), the id its entity gets (fixed when the job is made, so that an item done twice
collides with itself on the entities' primary key instead of being stored twice), its state
(``pending``, ``claimed``, ``done``, ``failed``), who claimed it and when (a claim older than
the lease is taken for abandoned: its server was killed), when it ended and why it failed.
A watch job's items (revision 0007) may also remove an entity, or replace one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from phantoscope.storage.row_base import NAME, Base

STATE = 16
CLAIM = 64


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class JobRow(Base):
    """One background job."""

    __tablename__ = "jobs"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(STATE))
    application: Mapped[str] = mapped_column(
        ForeignKey("applications.name", ondelete="CASCADE"), index=True)
    field: Mapped[str] = mapped_column(String(NAME))
    source: Mapped[dict[str, Any]] = mapped_column(JSON)
    attributes: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    state: Mapped[str] = mapped_column(String(STATE), index=True)
    total: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=_now)
    started_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class JobItemRow(Base):
    """One image of a job."""

    __tablename__ = "job_items"
    job_id: Mapped[int] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True, autoincrement=False)
    position: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    item: Mapped[str] = mapped_column(Text)
    entity_id: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(STATE))
    claim: Mapped[str | None] = mapped_column(String(CLAIM), nullable=True)
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # None: import the item; "remove": delete entity ``entity_id`` (a watched file is gone)
    action: Mapped[str | None] = mapped_column(String(STATE), nullable=True)
    # the entity that ``entity_id`` takes the place of, in one transaction (a file changed)
    replaces: Mapped[int | None] = mapped_column(BigInteger, nullable=True)

    __table_args__ = (
        Index("ix_job_items_state", "job_id", "state", "position"),
        Index("ix_job_items_claim", "claim"),
    )
