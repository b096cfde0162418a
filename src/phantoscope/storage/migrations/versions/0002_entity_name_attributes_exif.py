"""Entities get a name, user attributes, EXIF and the time the photo was taken.

All four are nullable: existing entities keep NULL until something fills them in. A column
or index already there is left (a database made by ``create_all`` of these models, not by
the revisions, is taken for an earlier release's and comes through here).
The two indexes lead with the application (every entity query names one):

- ``ix_entities_application_name``: a name prefix within an application. On PostgreSQL
  with ``varchar_pattern_ops``, so that ``name LIKE 'abc%'`` uses it whatever the database's
  collation; on MySQL/MariaDB over the first 512 characters of the name (an InnoDB key holds
  at most 3072 bytes: 4 per utf8mb4 character), which still serves a prefix ``LIKE``; on
  SQLite a plain index, which serves ``name >= 'abc' AND name < 'abd'`` (and ``GLOB 'abc*'``;
  SQLite's ``LIKE`` ignores case and so no index).
- ``ix_entities_application_taken_at``: ranges of, and ordering by, capture time.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ENTITY_NAME = 1024


def upgrade() -> None:
    found = sa.inspect(op.get_bind())
    columns = {column["name"] for column in found.get_columns("entities")}
    indexes = {index["name"] for index in found.get_indexes("entities")}
    for column in (
        sa.Column("name", sa.String(ENTITY_NAME), nullable=True),
        sa.Column("attributes", sa.JSON(), nullable=True),
        sa.Column("exif", sa.JSON(), nullable=True),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=True),
    ):
        if column.name not in columns:
            op.add_column("entities", column)
    if "ix_entities_application_name" not in indexes:
        op.create_index(
            "ix_entities_application_name", "entities", ["application", "name"],
            postgresql_ops={"name": "varchar_pattern_ops"}, mysql_length={"name": 512},
        )
    if "ix_entities_application_taken_at" not in indexes:
        op.create_index(
            "ix_entities_application_taken_at", "entities", ["application", "taken_at"])


def downgrade() -> None:
    op.drop_index("ix_entities_application_taken_at", table_name="entities")
    op.drop_index("ix_entities_application_name", table_name="entities")
    with op.batch_alter_table("entities") as entities:
        for column in ("taken_at", "exif", "attributes", "name"):
            entities.drop_column(column)
