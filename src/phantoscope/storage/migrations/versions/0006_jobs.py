"""Background jobs: a row per job and a row per item it works through.

``jobs``: kind, application (deleted with it), field, source, attributes, state, total, and
when it was made, started and ended. ``job_items``: per image of a job, the item (a path
under the job's folder, or a URL), the entity id it gets, its state, its claim (who and
when) and how it ended. ``ix_job_items_state`` (job_id, state, position) finds a job's next
pending items and counts them by state; ``ix_job_items_claim`` finds the items of a claim.

Tables already there are left (see 0002).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

NAME = 64
STATE = 16
CLAIM = 64


def upgrade() -> None:
    tables = sa.inspect(op.get_bind()).get_table_names()
    if "jobs" not in tables:
        op.create_table(
            "jobs",
            sa.Column("id", sa.BigInteger(), nullable=False, autoincrement=False),
            sa.Column("kind", sa.String(STATE), nullable=False),
            sa.Column("application", sa.String(NAME), nullable=False),
            sa.Column("field", sa.String(NAME), nullable=False),
            sa.Column("source", sa.JSON(), nullable=False),
            sa.Column("attributes", sa.JSON(), nullable=True),
            sa.Column("state", sa.String(STATE), nullable=False),
            sa.Column("total", sa.Integer(), nullable=False),
            sa.Column("created_at", sa.DateTime(), nullable=False),
            sa.Column("started_at", sa.DateTime(), nullable=True),
            sa.Column("finished_at", sa.DateTime(), nullable=True),
            sa.ForeignKeyConstraint(["application"], ["applications.name"], ondelete="CASCADE"),
            sa.PrimaryKeyConstraint("id"),
        )
        op.create_index("ix_jobs_application", "jobs", ["application"])
        op.create_index("ix_jobs_state", "jobs", ["state"])
    if "job_items" not in tables:
        op.create_table(
            "job_items",
            sa.Column("job_id", sa.BigInteger(), nullable=False, autoincrement=False),
            sa.Column("position", sa.Integer(), nullable=False, autoincrement=False),
            sa.Column("item", sa.Text(), nullable=False),
            sa.Column("entity_id", sa.BigInteger(), nullable=False),
            sa.Column("state", sa.String(STATE), nullable=False),
            sa.Column("claim", sa.String(CLAIM), nullable=True),
            sa.Column("claimed_at", sa.DateTime(), nullable=True),
            sa.Column("finished_at", sa.DateTime(), nullable=True),
            sa.Column("error", sa.Text(), nullable=True),
            sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], ondelete="CASCADE"),
            sa.PrimaryKeyConstraint("job_id", "position"),
        )
        op.create_index("ix_job_items_state", "job_items", ["job_id", "state", "position"])
        op.create_index("ix_job_items_claim", "job_items", ["claim"])


def downgrade() -> None:
    op.drop_index("ix_job_items_claim", table_name="job_items")
    op.drop_index("ix_job_items_state", table_name="job_items")
    op.drop_table("job_items")
    op.drop_index("ix_jobs_state", table_name="jobs")
    op.drop_index("ix_jobs_application", table_name="jobs")
    op.drop_table("jobs")
