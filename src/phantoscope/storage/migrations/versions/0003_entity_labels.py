"""Entities get labels (class id and probability) and operators name their label vocabulary.

``operators.labels`` names the vocabulary of the labels an encoder gives with its vectors
(``imagenet-1k``: WordNet 3.0 noun synsets of the ImageNet-1k classes), or ``""`` when it
gives none; operators registered before this revision get ``""`` (registering them again, or
the next ``phantoscope up`` for the default operator, asks them again).

``entity_labels`` holds one row per label of an entity: the labels of its whole image, as the
encoder of its field's pipeline gave them (pipelines with processors keep none: their
vectors describe crops). ``application`` and ``field`` are copies of the entity's, so that
``ix_entity_labels_search`` (application, field, label, entity_id, score) answers "the
entities of this field with any of these labels, with their probabilities" from the index
alone, for a text search's GROUP BY. Entities made before this revision have no rows: they
match no text.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

NAME = 64
LABEL = 64


def upgrade() -> None:
    found = sa.inspect(op.get_bind())
    if "labels" not in {column["name"] for column in found.get_columns("operators")}:
        op.add_column("operators", sa.Column("labels", sa.String(NAME), nullable=False,
                                             server_default=""))
    if "entity_labels" not in found.get_table_names():
        op.create_table(
            "entity_labels",
            sa.Column("entity_id", sa.BigInteger(), nullable=False),
            sa.Column("label", sa.String(LABEL), nullable=False),
            sa.Column("application", sa.String(NAME), nullable=False),
            sa.Column("field", sa.String(NAME), nullable=False),
            sa.Column("score", sa.Double(), nullable=False),  # MySQL FLOAT is single precision
            sa.ForeignKeyConstraint(["entity_id"], ["entities.id"], ondelete="CASCADE"),
            sa.PrimaryKeyConstraint("entity_id", "label"),
        )
        op.create_index("ix_entity_labels_search", "entity_labels",
                        ["application", "field", "label", "entity_id", "score"])


def downgrade() -> None:
    op.drop_index("ix_entity_labels_search", table_name="entity_labels")
    op.drop_table("entity_labels")
    with op.batch_alter_table("operators") as operators:
        operators.drop_column("labels")
