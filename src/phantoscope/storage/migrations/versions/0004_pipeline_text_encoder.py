"""Pipelines may pair their image encoder with a text encoder of the same embedding space.

``pipelines.text_encoder`` names that operator (a foreign key to ``operators.name``, as
``encoder`` is), or is NULL: pipelines made before this revision have none, and search by
words as they did (through labels, where their encoder gives them). A column already there
is left (see 0002).

SQLite cannot add a foreign key to a table, only a column that carries one: the reference is
written inline there. MySQL/MariaDB ignore an inline reference, so there and on PostgreSQL the
constraint is added after the column.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

NAME = 64


def upgrade() -> None:
    bind = op.get_bind()
    if "text_encoder" in {column["name"] for column in sa.inspect(bind).get_columns("pipelines")}:
        return
    op.add_column(
        "pipelines",
        sa.Column("text_encoder", sa.String(NAME), sa.ForeignKey("operators.name"),
                  nullable=True),
        inline_references=bind.dialect.name == "sqlite",
    )


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        for key in sa.inspect(bind).get_foreign_keys("pipelines"):
            if key["constrained_columns"] == ["text_encoder"] and key.get("name"):
                op.drop_constraint(key["name"], "pipelines", type_="foreignkey")
    with op.batch_alter_table("pipelines") as pipelines:
        pipelines.drop_column("text_encoder")
