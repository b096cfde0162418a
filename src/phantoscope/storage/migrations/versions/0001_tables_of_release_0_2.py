"""The tables as the releases before versioned migrations made them.

Written out here, not taken from the models, so that later model changes leave this revision
as it is. A table that already exists is left alone: a database made by an earlier release
(with ``create_all``) gets only the tables it lacks (one older than `operator_endpoints` or
`catalog_version`), then is at this revision.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

NAME = 64


def _operators() -> None:
    op.create_table(
        "operators",
        sa.Column("name", sa.String(NAME), nullable=False),
        sa.Column("backend", sa.String(255), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("input", sa.String(32), nullable=False),
        sa.Column("output", sa.String(32), nullable=False),
        sa.Column("metric_type", sa.String(16), nullable=False),
        sa.Column("dimension", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def _applications() -> None:
    op.create_table(
        "applications",
        sa.Column("name", sa.String(NAME), nullable=False),
        sa.Column("bucket", sa.String(63), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def _pending_uploads() -> None:
    op.create_table(
        "pending_uploads",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("application", sa.String(NAME), nullable=False),
        sa.Column("bucket", sa.String(63), nullable=False),
        sa.Column("object_keys", sa.JSON(), nullable=False),
        sa.Column("vectors", sa.JSON(), nullable=False),
        sa.Column("claimed", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_pending_uploads_created_at", "pending_uploads", ["created_at"])


def _catalog_version() -> None:
    version = op.create_table(
        "catalog_version",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.bulk_insert(version, [{"id": 1, "version": 0}])


def _operator_endpoints() -> None:
    op.create_table(
        "operator_endpoints",
        sa.Column("operator", sa.String(NAME), nullable=False),
        sa.Column("position", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("endpoint", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("operator", "position"),
        sa.ForeignKeyConstraint(["operator"], ["operators.name"], ondelete="CASCADE"),
    )


def _pipelines() -> None:
    op.create_table(
        "pipelines",
        sa.Column("name", sa.String(NAME), nullable=False),
        sa.Column("input", sa.String(32), nullable=False),
        sa.Column("output", sa.String(32), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("encoder", sa.String(NAME), nullable=False),
        sa.Column("dimension", sa.Integer(), nullable=False),
        sa.Column("metric_type", sa.String(16), nullable=False),
        sa.Column("index_file_size", sa.Integer(), nullable=False),
        sa.Column("collection", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
        sa.ForeignKeyConstraint(["encoder"], ["operators.name"]),
        sa.UniqueConstraint("collection"),
    )


def _entities() -> None:
    op.create_table(
        "entities",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("application", sa.String(NAME), nullable=False),
        sa.Column("field", sa.String(NAME), nullable=False),
        sa.Column("object_key", sa.String(255), nullable=False),
        sa.Column("content_type", sa.String(64), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.ForeignKeyConstraint(["application"], ["applications.name"], ondelete="CASCADE"),
    )
    op.create_index("ix_entities_sha256", "entities", ["sha256"])
    op.create_index("ix_entities_application", "entities", ["application"])


def _pipeline_processors() -> None:
    op.create_table(
        "pipeline_processors",
        sa.Column("pipeline", sa.String(NAME), nullable=False),
        sa.Column("position", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("operator", sa.String(NAME), nullable=False),
        sa.PrimaryKeyConstraint("pipeline", "position"),
        sa.ForeignKeyConstraint(["pipeline"], ["pipelines.name"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["operator"], ["operators.name"]),
    )


def _application_fields() -> None:
    op.create_table(
        "application_fields",
        sa.Column("application", sa.String(NAME), nullable=False),
        sa.Column("name", sa.String(NAME), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("pipeline", sa.String(NAME), nullable=True),
        sa.Column("value", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("application", "name"),
        sa.ForeignKeyConstraint(["application"], ["applications.name"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["pipeline"], ["pipelines.name"]),
    )


def _vectors() -> None:
    op.create_table(
        "vectors",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("entity_id", sa.BigInteger(), nullable=False),
        sa.Column("pipeline", sa.String(NAME), nullable=False),
        sa.Column("box_left", sa.Integer(), nullable=True),
        sa.Column("box_top", sa.Integer(), nullable=True),
        sa.Column("box_right", sa.Integer(), nullable=True),
        sa.Column("box_bottom", sa.Integer(), nullable=True),
        sa.Column("box_score", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.ForeignKeyConstraint(["entity_id"], ["entities.id"], ondelete="CASCADE"),
    )
    op.create_index("ix_vectors_entity_id", "vectors", ["entity_id"])


# In the order the release's create_all made them: a table after those it references.
TABLES = {
    "operators": _operators,
    "applications": _applications,
    "pending_uploads": _pending_uploads,
    "catalog_version": _catalog_version,
    "operator_endpoints": _operator_endpoints,
    "pipelines": _pipelines,
    "entities": _entities,
    "pipeline_processors": _pipeline_processors,
    "application_fields": _application_fields,
    "vectors": _vectors,
}


def upgrade() -> None:
    present = set(sa.inspect(op.get_bind()).get_table_names())
    for name, create in TABLES.items():
        if name not in present:
            create()


def downgrade() -> None:
    for name in reversed(TABLES):
        op.drop_table(name)
