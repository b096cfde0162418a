"""The tables of duplicate review (revision 0005): each entity's copy descriptor, and the
decisions a user took about groups of duplicates.

``entity_descriptors`` holds one row per entity whose descriptor is known (entities stored
before revision 0005 get theirs on first need, from their stored image): the SHA-256 of its
bytes, the perceptual hashes of its eight orientations (signed 64-bit, as
:func:`phantoscope.imaging.phash.to_signed` writes them), its 64x64 grey thumbnail and what
says which copy is best (size as shown, format, JPEG quality, bytes), and (revision 0008) when
it was stored. It goes with its
entity: the key cascades on delete, as the entity's vectors and labels do.

``duplicate_decisions`` holds one row per resolved or dismissed group: the application, the
kind of group, its members, the ids kept and deleted, and when. The application's deletion
takes its decisions with it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from phantoscope.storage.row_base import NAME, Base

HASHES = 8
FORMAT = 16


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class DescriptorRow(Base):
    """One entity's copy descriptor."""

    __tablename__ = "entity_descriptors"
    entity_id: Mapped[int] = mapped_column(
        ForeignKey("entities.id", ondelete="CASCADE"), primary_key=True, autoincrement=False)
    application: Mapped[str] = mapped_column(String(NAME))
    sha256: Mapped[str] = mapped_column(String(64))
    hash_0: Mapped[int] = mapped_column(BigInteger)  # upright
    hash_1: Mapped[int] = mapped_column(BigInteger)
    hash_2: Mapped[int] = mapped_column(BigInteger)
    hash_3: Mapped[int] = mapped_column(BigInteger)
    hash_4: Mapped[int] = mapped_column(BigInteger)
    hash_5: Mapped[int] = mapped_column(BigInteger)
    hash_6: Mapped[int] = mapped_column(BigInteger)
    hash_7: Mapped[int] = mapped_column(BigInteger)
    thumbnail: Mapped[bytes] = mapped_column(LargeBinary)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    format: Mapped[str] = mapped_column(String(FORMAT))
    quality: Mapped[int | None] = mapped_column(Integer, nullable=True)
    size: Mapped[int] = mapped_column(BigInteger)
    # revision 0008: when the row was written (NULL for older rows)
    stored_at: Mapped[datetime | None] = mapped_column(
        DateTime, nullable=True, default=_now, index=True)
    # never loaded: it makes a flush insert entities before the descriptors naming them
    entity: Mapped[Any] = relationship("EntityRow", lazy="raise")

    __table_args__ = (
        Index("ix_entity_descriptors_application", "application", "entity_id"),
    )


class DecisionRow(Base):
    """A group of duplicates a user resolved (kept some, deleted the rest) or dismissed."""

    __tablename__ = "duplicate_decisions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    application: Mapped[str] = mapped_column(
        ForeignKey("applications.name", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # copies | similar
    action: Mapped[str] = mapped_column(String(16))  # resolved | dismissed
    members: Mapped[list[int]] = mapped_column(JSON)
    kept: Mapped[list[int]] = mapped_column(JSON)
    deleted: Mapped[list[int]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=_now)
