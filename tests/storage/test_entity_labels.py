"""Entity labels in the metadata store (revision 0003), on SQLite, MariaDB and PostgreSQL:
a database at revision 0002 is upgraded keeping its rows (its operators get no label
vocabulary, its entities no labels), labels are written with their entity and go with it,
and the text-search ranking aggregates them in SQL (mean over label sets of the capped sum
of probabilities, best first, ties by id)."""

from __future__ import annotations

import sqlalchemy
from alembic import command
from sqlalchemy import inspect, text

from phantoscope.storage import migrations
from phantoscope.storage.meta import (
    ApplicationRow,
    EntityRow,
    LabelRow,
    MetaStore,
    OperatorRow,
)


def _entity(entity_id: int, labels: dict[str, float], application: str = "album",
            field: str = "photo") -> EntityRow:
    return EntityRow(
        id=entity_id, application=application, field=field, object_key=f"k{entity_id}",
        content_type="image/jpeg", sha256=f"{entity_id:064d}", size=1,
        labels=[LabelRow(label=label, score=score, application=application, field=field)
                for label, score in labels.items()])


def _at_0002(url: str) -> None:
    """The database as the release before labels left it, with an operator and an entity."""
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as connection:
            settings = migrations.config()
            settings.attributes["connection"] = connection
            command.upgrade(settings, "0002")
            connection.commit()
        with engine.begin() as connection:
            connection.execute(text(
                "INSERT INTO operators (name, backend, type, input, output, metric_type, "
                "dimension, created_at) VALUES ('enc', 'e', 'encoder', 'image', 'vector', "
                "'IP', 4, '2026-01-01 00:00:00')"))
            connection.execute(text(
                "INSERT INTO applications (name, bucket, created_at) "
                "VALUES ('album', 'b', '2026-01-01 00:00:00')"))
            connection.execute(text(
                "INSERT INTO entities (id, application, field, object_key, content_type, "
                "sha256, size, created_at) VALUES (7, 'album', 'photo', 'k7', 'image/jpeg', "
                f"'{'a' * 64}', 1, '2026-01-01 00:00:00')"))
    finally:
        engine.dispose()


def test_a_database_at_0002_gets_labels_and_keeps_its_rows(database):
    _, url = database
    _at_0002(url)
    meta = MetaStore(url)
    try:
        applied = [revision.id for revision in meta.migration.applied]
        assert applied[0] == "0003"
        assert applied == [revision.id for revision in migrations.pending("0002")]
        assert "entity_labels" in inspect(meta.engine).get_table_names()
        indexes = {i["name"] for i in inspect(meta.engine).get_indexes("entity_labels")}
        assert "ix_entity_labels_search" in indexes
        assert meta.get_operator("enc").labels == ""
        [old] = meta.list_entities("album", 0, 10)
        assert (old.id, old.labels) == (7, [])
        assert meta.ranked_by_labels("album", "photo", [{"n1"}], 0, 10) == []
        meta.add_entities([_entity(8, {"n1": 0.5})])  # a new entity beside the old one
        assert meta.ranked_by_labels("album", "photo", [{"n1"}], 0, 10) == [(8, 0.5)]
    finally:
        meta.close()


def test_labels_are_ranked_in_sql_and_go_with_their_entity(database):
    _, url = database
    meta = MetaStore(url)
    try:
        meta.add(OperatorRow(name="enc", backend="e", type="encoder", input="image",
                             output="vector", metric_type="IP", dimension=4,
                             labels="imagenet-1k"), "adding an operator")
        assert meta.get_operator("enc").labels == "imagenet-1k"
        meta.set_operator_labels("enc", "")
        assert meta.get_operator("enc").labels == ""
        for name in ("album", "other"):
            meta.add(ApplicationRow(name=name, bucket="b"), "adding an application")
        meta.add_entities([
            _entity(1, {"cat1": 0.5, "cat2": 0.25, "dog": 0.25}),
            _entity(2, {"cat1": 0.75, "cat2": 0.5}),  # capped at 1
            _entity(3, {"dog": 0.75, "cat2": 0.125}),
            _entity(4, {"car": 0.75}),
            _entity(5, {"cat1": 0.875}, field="other_field"),
            _entity(6, {"cat1": 0.875}, application="other"),
            _entity(9, {"cat1": 0.625}),
        ])
        cats = {"cat1", "cat2"}
        ranked = meta.ranked_by_labels("album", "photo", [cats], 0, 10)
        assert [entity for entity, _ in ranked] == [2, 1, 9, 3]
        assert [score for _, score in ranked] == [1.0, 0.75, 0.625, 0.125]
        both = meta.ranked_by_labels("album", "photo", [cats, {"dog"}], 0, 10)
        assert both == [(1, 0.5), (2, 0.5), (3, 0.4375), (9, 0.3125)]  # ties by id
        assert meta.ranked_by_labels("album", "photo", [cats], 1, 2) == ranked[1:3]
        assert meta.ranked_by_labels("album", "photo", [{"nothing"}], 0, 10) == []
        quoted = meta.ranked_by_labels("album", "photo", [{"' OR 1=1 --"}], 0, 10)
        assert quoted == []  # a label is a bound parameter
        found = meta.entities_by_id("album", [1, 4, 6, 404])
        assert sorted(found) == [1, 4]  # 6 is another application's
        assert [(row.label, row.score) for row in found[1].labels] == \
            [("cat1", 0.5), ("cat2", 0.25), ("dog", 0.25)]

        meta.delete_entity(1)
        meta.delete_entities([2])
        assert [e for e, _ in meta.ranked_by_labels("album", "photo", [cats], 0, 10)] == [9, 3]
        meta.delete_application("album")
        assert meta.row_counts()["entity_labels"] == 1  # application "other"'s
    finally:
        meta.close()
