"""The tables of watch jobs (revision 0007): the scan lease of each watch, and the files it
has seen.

``watches`` holds one row per watch job: who is scanning its folder now and since when (a
scan is claimed in one conditional UPDATE, so only one server scans a folder at a time; a
claim older than the lease is taken for abandoned) and when its last scan ended.

``watched_files`` holds the folder as the watch last saw it: one row per file, its path
relative to the folder, its size and modification time (a file whose either changed is
imported again), and the entity id its newest item gives it. A watch's rows go with its
job, and so with its application.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from phantoscope.storage.job_rows import CLAIM
from phantoscope.storage.row_base import Base


class WatchRow(Base):
    """The scan lease of one watch job."""

    __tablename__ = "watches"
    job_id: Mapped[int] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True, autoincrement=False)
    claim: Mapped[str | None] = mapped_column(String(CLAIM), nullable=True)
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    scanned_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class WatchedFileRow(Base):
    """One file of a watched folder, as its last scan saw it."""

    __tablename__ = "watched_files"
    job_id: Mapped[int] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True, autoincrement=False)
    entity_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    item: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BigInteger)
    mtime_ns: Mapped[int] = mapped_column(BigInteger)
