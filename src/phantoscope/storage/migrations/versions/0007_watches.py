"""Watch jobs: a job item may remove an entity or replace one, and each watch keeps its scan
lease and the files it has seen.

``job_items`` gets ``action`` (NULL: import the item; ``remove``: delete the entity
``entity_id``, its file being gone) and ``replaces`` (the entity the item's new entity takes
the place of, in the same transaction: a changed file). Existing items keep NULL in both:
imports, as before. ``watches``: per watch job, its scan claim (token and time) and when its
last scan ended. ``watched_files``: per watch job and entity id, the file's path under the
folder, its size and modification time in nanoseconds. Both go with their job.

Tables and columns already there are left (see 0002).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

STATE = 16
CLAIM = 64


def upgrade() -> None:
    found = sa.inspect(op.get_bind())
    columns = {column["name"] for column in found.get_columns("job_items")}
    for column in (sa.Column("action", sa.String(STATE), nullable=True),
                   sa.Column("replaces", sa.BigInteger(), nullable=True)):
        if column.name not in columns:
            op.add_column("job_items", column)
    tables = found.get_table_names()
    if "watches" not in tables:
        op.create_table(
            "watches",
            sa.Column("job_id", sa.BigInteger(), nullable=False, autoincrement=False),
            sa.Column("claim", sa.String(CLAIM), nullable=True),
            sa.Column("claimed_at", sa.DateTime(), nullable=True),
            sa.Column("scanned_at", sa.DateTime(), nullable=True),
            sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], ondelete="CASCADE"),
            sa.PrimaryKeyConstraint("job_id"),
        )
    if "watched_files" not in tables:
        op.create_table(
            "watched_files",
            sa.Column("job_id", sa.BigInteger(), nullable=False, autoincrement=False),
            sa.Column("entity_id", sa.BigInteger(), nullable=False, autoincrement=False),
            sa.Column("item", sa.Text(), nullable=False),
            sa.Column("size", sa.BigInteger(), nullable=False),
            sa.Column("mtime_ns", sa.BigInteger(), nullable=False),
            sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], ondelete="CASCADE"),
            sa.PrimaryKeyConstraint("job_id", "entity_id"),
        )


def downgrade() -> None:
    op.drop_table("watched_files")
    op.drop_table("watches")
    with op.batch_alter_table("job_items") as job_items:
        job_items.drop_column("replaces")
        job_items.drop_column("action")
