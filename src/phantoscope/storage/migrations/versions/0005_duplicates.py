"""Entities get copy descriptors, and applications a record of duplicate decisions.

``entity_descriptors``: one row per entity whose copy descriptor is known (SHA-256, the
perceptual hashes of its eight orientations, its 64x64 grey thumbnail, its size as shown,
format, JPEG quality and bytes), keyed by the entity and deleted with it. Entities stored
before this revision have none: the engine computes theirs from their stored images on first
need (:mod:`phantoscope.engine.duplicate_backfill`).

``duplicate_decisions``: one row per group of duplicates a user resolved or dismissed (its
kind, members, the ids kept and deleted, when), deleted with its application.

Tables already there are left (see 0002).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

NAME = 64
HASHES = 8


def upgrade() -> None:
    tables = sa.inspect(op.get_bind()).get_table_names()
    if "entity_descriptors" not in tables:
        op.create_table(
            "entity_descriptors",
            sa.Column("entity_id", sa.BigInteger(), nullable=False, autoincrement=False),
            sa.Column("application", sa.String(NAME), nullable=False),
            sa.Column("sha256", sa.String(64), nullable=False),
            *(sa.Column(f"hash_{turn}", sa.BigInteger(), nullable=False)
              for turn in range(HASHES)),
            sa.Column("thumbnail", sa.LargeBinary(), nullable=False),
            sa.Column("width", sa.Integer(), nullable=False),
            sa.Column("height", sa.Integer(), nullable=False),
            sa.Column("format", sa.String(16), nullable=False),
            sa.Column("quality", sa.Integer(), nullable=True),
            sa.Column("size", sa.BigInteger(), nullable=False),
            sa.ForeignKeyConstraint(["entity_id"], ["entities.id"], ondelete="CASCADE"),
            sa.PrimaryKeyConstraint("entity_id"),
        )
        op.create_index("ix_entity_descriptors_application", "entity_descriptors",
                        ["application", "entity_id"])
    if "duplicate_decisions" not in tables:
        op.create_table(
            "duplicate_decisions",
            sa.Column("id", sa.Integer(), nullable=False, autoincrement=True),
            sa.Column("application", sa.String(NAME), nullable=False),
            sa.Column("kind", sa.String(16), nullable=False),
            sa.Column("action", sa.String(16), nullable=False),
            sa.Column("members", sa.JSON(), nullable=False),
            sa.Column("kept", sa.JSON(), nullable=False),
            sa.Column("deleted", sa.JSON(), nullable=False),
            sa.Column("created_at", sa.DateTime(), nullable=False),
            sa.ForeignKeyConstraint(["application"], ["applications.name"], ondelete="CASCADE"),
            sa.PrimaryKeyConstraint("id"),
        )
        op.create_index("ix_duplicate_decisions_application", "duplicate_decisions",
                        ["application"])


def downgrade() -> None:
    op.drop_index("ix_duplicate_decisions_application", table_name="duplicate_decisions")
    op.drop_table("duplicate_decisions")
    op.drop_index("ix_entity_descriptors_application", table_name="entity_descriptors")
    op.drop_table("entity_descriptors")
