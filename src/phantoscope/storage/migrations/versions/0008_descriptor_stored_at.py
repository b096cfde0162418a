"""When each copy descriptor was stored, so that an API process can take in the descriptors
other processes sharing the database stored since it last looked.

``entity_descriptors`` gets ``stored_at`` (UTC, NULL for the rows already there: a process
reads those in whole when it starts) and an index on it.

A column or index already there is left (see 0002).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

INDEX = "ix_entity_descriptors_stored_at"


def upgrade() -> None:
    found = sa.inspect(op.get_bind())
    if "stored_at" not in {column["name"] for column in found.get_columns("entity_descriptors")}:
        op.add_column("entity_descriptors", sa.Column("stored_at", sa.DateTime(), nullable=True))
    if INDEX not in {index["name"] for index in found.get_indexes("entity_descriptors")}:
        op.create_index(INDEX, "entity_descriptors", ["stored_at"])


def downgrade() -> None:
    op.drop_index(INDEX, table_name="entity_descriptors")
    with op.batch_alter_table("entity_descriptors") as descriptors:
        descriptors.drop_column("stored_at")
