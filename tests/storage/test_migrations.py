"""Versioned schema migrations of the metadata database, on SQLite, MariaDB and PostgreSQL:
a database of the previous release is upgraded keeping every row, an empty one is built at
the newest revision, opening again changes nothing, two processes opening at once both
succeed, and `phantoscope migrate` reports it."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta, timezone

import previous_schema
import pytest
import sqlalchemy
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select
from typer.testing import CliRunner

from phantoscope.cli.main import app
from phantoscope.storage import migrations
from phantoscope.storage.duplicate_rows import DecisionRow, DescriptorRow
from phantoscope.storage.job_rows import JobItemRow, JobRow
from phantoscope.storage.meta import (
    ApplicationRow,
    Base,
    CatalogVersionRow,
    EntityRow,
    MetaStore,
    MetaStoreError,
    PipelineRow,
    schema_status,
)
from phantoscope.storage.watch_rows import WatchedFileRow, WatchRow

HEAD = migrations.head()
ALL = [revision.id for revision in migrations.pending(None)]
NEW_COLUMNS = {"name", "attributes", "exif", "taken_at"}


def _sorted_rows() -> dict[str, list[dict]]:
    return {
        name: sorted(rows, key=lambda row, name=name: tuple(
            row[key] for key in row if key in previous_schema.KEYS[name]))
        for name, rows in previous_schema.ROWS.items()
    }


def _schema(url: str) -> dict[str, dict]:
    """Every table as reflected: columns, keys, indexes (alembic_version left out)."""
    engine = sqlalchemy.create_engine(url)
    try:
        found = inspect(engine)
        return {
            table: {
                "columns": [(c["name"], str(c["type"]), c["nullable"])
                            for c in found.get_columns(table)],
                "primary": found.get_pk_constraint(table)["constrained_columns"],
                "foreign": sorted(
                    (fk["constrained_columns"], fk["referred_table"], fk["referred_columns"],
                     (fk.get("options") or {}).get("ondelete"))
                    for fk in found.get_foreign_keys(table)),
                "indexes": sorted((i["name"], i["column_names"], bool(i["unique"]))
                                  for i in found.get_indexes(table)),
                "unique": sorted(u["column_names"] for u in found.get_unique_constraints(table)),
            }
            for table in sorted(found.get_table_names()) if table != "alembic_version"
        }
    finally:
        engine.dispose()


def _drop_all(url: str) -> None:
    engine = sqlalchemy.create_engine(url)
    try:
        tables = sqlalchemy.MetaData()
        tables.reflect(engine)
        tables.drop_all(engine)
    finally:
        engine.dispose()


def _upgrade_to(url: str, revision: str) -> None:
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as connection:
            settings = migrations.config()
            settings.attributes["connection"] = connection
            command.upgrade(settings, revision)
            connection.commit()
    finally:
        engine.dispose()


def test_revision_0001_builds_the_tables_of_the_previous_release(database):
    kind, url = database
    previous_schema.build(kind, url, rows=False)
    released = _schema(url)
    _drop_all(url)
    _upgrade_to(url, "0001")
    assert _schema(url) == released


def test_a_previous_release_database_gets_the_new_columns_and_keeps_every_row(database):
    kind, url = database
    previous_schema.build(kind, url)
    expected = _sorted_rows()
    assert previous_schema.read_rows(url) == expected

    meta = MetaStore(url)
    try:
        migration = meta.migration
        assert (migration.before, migration.after, migration.legacy) == (None, HEAD, True)
        assert [revision.id for revision in migration.applied] == ALL
        columns = {c["name"] for c in inspect(meta.engine).get_columns("entities")}
        assert columns >= NEW_COLUMNS
        indexes = {i["name"] for i in inspect(meta.engine).get_indexes("entities")}
        assert {"ix_entities_application_name", "ix_entities_application_taken_at"} <= indexes

        # the catalog and the entities read back through the store as they were written
        assert {row.name: row.endpoints for row in meta.list_operators()} == \
            previous_schema.ENDPOINTS
        pipeline = meta.get_pipeline("faces")
        assert (pipeline.encoder, pipeline.processors, pipeline.collection) == \
            ("enc", ["det"], "phantoscope_faces")
        assert pipeline.text_encoder is None
        fields = [(f.name, f.type, f.pipeline, f.value)
                  for f in meta.get_application("album").fields]
        assert fields == [("photo", "object", "faces", None),
                          ("owner", "string", None, {"default": "ana", "tags": ["a", "b"]})]
        entities = meta.list_entities("album", 0, 10)
        assert [(e.id, e.object_key, e.sha256, e.size) for e in entities] == [
            (101, "e101.jpg", "a" * 64, 1234), (102, "e102.png", "b" * 64, 5678)]
        assert all(getattr(e, column) is None for e in entities for column in NEW_COLUMNS)
        hits = meta.entities_for_vectors([1001, 1002])
        assert hits[1001][0].id == 101
        box = hits[1002][1]
        assert (box.box_left, box.box_top, box.box_right, box.box_bottom, box.box_score) == \
            (1, 2, 30, 40, 0.5)
        assert [(p.id, p.object_keys, p.vectors) for p in meta.pending_uploads()] == \
            [(7, ["e103.jpg"], {"phantoscope_faces": [1004]})]
        with meta.session("reading the catalog version") as session:
            assert session.scalar(select(CatalogVersionRow.version)) == 5
    finally:
        meta.close()
    assert previous_schema.read_rows(url) == expected  # every row, every column, unchanged


def test_a_database_at_0003_gets_the_pipeline_text_encoder_and_keeps_its_rows(database):
    _, url = database
    _upgrade_to(url, "0003")
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.begin() as connection:
            for name, kind in (("enc", "image"), ("words", "text")):
                connection.execute(sqlalchemy.text(
                    "INSERT INTO operators (name, backend, type, input, output, metric_type, "
                    "dimension, created_at, labels) VALUES (:name, 'b', 'encoder', :input, "
                    "'vector', 'IP', 4, '2026-01-01 00:00:00', '')"),
                    {"name": name, "input": kind})
            connection.execute(sqlalchemy.text(
                "INSERT INTO pipelines (name, input, output, description, encoder, dimension, "
                "metric_type, index_file_size, collection, created_at) VALUES ('pipe', 'image', "
                "'vector', 'old', 'enc', 4, 'IP', 1024, 'phantoscope_pipe', "
                "'2026-01-01 00:00:00')"))
    finally:
        engine.dispose()
    meta = MetaStore(url)
    try:
        applied = [revision.id for revision in meta.migration.applied]
        assert applied[0] == "0004" and applied == [r.id for r in migrations.pending("0003")]
        old = meta.get_pipeline("pipe")
        assert (old.encoder, old.description, old.collection, old.text_encoder) == \
            ("enc", "old", "phantoscope_pipe", None)
        meta.add(PipelineRow(name="paired", input="image", output="vector", encoder="enc",
                             text_encoder="words", dimension=4, metric_type="IP",
                             index_file_size=1024, collection="phantoscope_paired"),
                 "adding a pipeline")
        assert meta.get_pipeline("paired").text_encoder == "words"
        assert meta.pipelines_using("words") == ["paired"]
        assert meta.pipelines_using("enc") == ["paired", "pipe"]
        with pytest.raises(MetaStoreError):  # the column is a key of an operator, as encoder
            meta.add(PipelineRow(name="ghost", input="image", output="vector", encoder="enc",
                                 text_encoder="nope", dimension=4, metric_type="IP",
                                 index_file_size=1024, collection="phantoscope_ghost"),
                     "adding a pipeline")
        assert meta.get_pipeline("ghost") is None
    finally:
        meta.close()


def test_a_database_at_0004_gets_the_duplicate_tables_keeping_its_rows(database):
    _, url = database
    _upgrade_to(url, "0004")
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(sqlalchemy.text(
                "INSERT INTO applications (name, bucket, created_at) "
                "VALUES ('album', 'b', '2026-01-01 00:00:00')"))
            for entity in (1, 2):
                connection.execute(sqlalchemy.text(
                    "INSERT INTO entities (id, application, field, object_key, content_type, "
                    "sha256, size, created_at) VALUES (:id, 'album', 'photo', :key, "
                    "'image/jpeg', :sha, 10, '2026-01-01 00:00:00')"),
                    {"id": entity, "key": f"k{entity}", "sha": str(entity) * 64})
    finally:
        engine.dispose()
    meta = MetaStore(url)
    try:
        applied = [revision.id for revision in meta.migration.applied]
        assert applied[0] == "0005" and applied == [r.id for r in migrations.pending("0004")]
        assert [(e.id, e.object_key) for e in meta.list_entities("album", 0, 10)] == \
            [(1, "k1"), (2, "k2")]
        thumbnail = bytes(range(256)) * 16
        hashes = {f"hash_{turn}": (-1) ** turn * (2**63 - 1 - turn) for turn in range(8)}
        for entity in (1, 2):
            meta.add(DescriptorRow(entity_id=entity, application="album", sha256="e" * 64,
                                   thumbnail=thumbnail, width=4000, height=3000,
                                   format="JPEG", quality=None if entity == 1 else 87,
                                   size=123_456_789_012, **hashes), "adding a descriptor")
        meta.add(DecisionRow(application="album", kind="copies", action="dismissed",
                             members=[1, 2], kept=[1, 2], deleted=[]), "adding a decision")
        with meta.session("reading descriptors") as session:
            rows = list(session.scalars(select(DescriptorRow).order_by(DescriptorRow.entity_id)))
        assert [(r.thumbnail, r.quality, r.size, r.width) for r in rows] == \
            [(thumbnail, None, 123_456_789_012, 4000), (thumbnail, 87, 123_456_789_012, 4000)]
        assert all(getattr(rows[0], key) == value for key, value in hashes.items())
        with pytest.raises(MetaStoreError):  # a descriptor is of an entity that exists
            meta.add(DescriptorRow(entity_id=3, application="album", sha256="e" * 64,
                                   thumbnail=b"", width=1, height=1, format="PNG",
                                   size=1, **hashes), "adding a descriptor")
        meta.delete_entity(1)  # a descriptor goes with its entity
        with meta.session("reading descriptors") as session:
            assert list(session.scalars(select(DescriptorRow.entity_id))) == [2]
            [decision] = session.scalars(select(DecisionRow))
        assert (decision.members, decision.kept, decision.deleted, decision.action) == \
            ([1, 2], [1, 2], [], "dismissed")
        meta.delete_application("album")  # and decisions with their application
        with meta.session("reading what is left") as session:
            assert list(session.scalars(select(DescriptorRow))) == []
            assert list(session.scalars(select(DecisionRow))) == []
    finally:
        meta.close()


def test_a_database_at_0005_gets_the_job_tables_keeping_its_rows(database):
    _, url = database
    _upgrade_to(url, "0005")
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(sqlalchemy.text(
                "INSERT INTO applications (name, bucket, created_at) "
                "VALUES ('album', 'b', '2026-01-01 00:00:00')"))
            connection.execute(sqlalchemy.text(
                "INSERT INTO entities (id, application, field, object_key, content_type, "
                "sha256, size, created_at) VALUES (1, 'album', 'photo', 'k1', 'image/jpeg', "
                ":sha, 10, '2026-01-01 00:00:00')"), {"sha": "1" * 64})
    finally:
        engine.dispose()
    meta = MetaStore(url)
    try:
        applied = [revision.id for revision in meta.migration.applied]
        assert applied == ALL[ALL.index("0006"):] == [r.id for r in migrations.pending("0005")]
        assert [(e.id, e.object_key) for e in meta.list_entities("album", 0, 10)] == \
            [(1, "k1")]
        meta.add(JobRow(id=2**62, kind="import", application="album", field="photo",
                        source={"folder": "/photos/été"}, attributes={"trip": "alps"},
                        state="queued", total=1), "adding a job")
        long_item = "a/" * 600 + "b.jpg"  # items are paths or URLs of any length
        meta.add(JobItemRow(job_id=2**62, position=0, item=long_item, entity_id=2**63 - 1,
                            state="pending"), "adding a job item")
        with meta.session("reading jobs") as session:
            job = session.get(JobRow, 2**62)
            item = session.get(JobItemRow, (2**62, 0))
        assert (job.source, job.attributes, job.state, job.started_at) == \
            ({"folder": "/photos/été"}, {"trip": "alps"}, "queued", None)
        assert (item.item, item.entity_id, item.claim) == (long_item, 2**63 - 1, None)
        with pytest.raises(MetaStoreError):  # a job is of an application that exists
            meta.add(JobRow(id=3, kind="import", application="nope", field="photo",
                            source={}, state="queued", total=0), "adding a job")
        meta.delete_application("album")  # jobs and their items go with their application
        with meta.session("reading what is left") as session:
            assert list(session.scalars(select(JobRow))) == []
            assert list(session.scalars(select(JobItemRow))) == []
    finally:
        meta.close()


def test_a_database_at_0006_gets_the_watch_tables_and_item_columns_keeping_its_rows(database):
    _, url = database
    _upgrade_to(url, "0006")
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(sqlalchemy.text(
                "INSERT INTO applications (name, bucket, created_at) "
                "VALUES ('album', 'b', '2026-01-01 00:00:00')"))
            connection.execute(sqlalchemy.text(
                "INSERT INTO jobs (id, kind, application, field, source, state, total, "
                "created_at) VALUES (7, 'import', 'album', 'photo', '{\"folder\": \"/p\"}', "
                "'running', 1, '2026-01-01 00:00:00')"))
            connection.execute(sqlalchemy.text(
                "INSERT INTO job_items (job_id, position, item, entity_id, state) "
                "VALUES (7, 0, 'a.jpg', 11, 'pending')"))
    finally:
        engine.dispose()
    meta = MetaStore(url)
    try:
        applied = [revision.id for revision in meta.migration.applied]
        assert applied == ALL[ALL.index("0007"):] == [r.id for r in migrations.pending("0006")]
        with meta.session("reading the job") as session:
            item = session.get(JobItemRow, (7, 0))
            assert (item.item, item.entity_id, item.action, item.replaces) == \
                ("a.jpg", 11, None, None)  # an import, as before
        meta.add(JobRow(id=2**62, kind="watch", application="album", field="photo",
                        source={"folder": "/photos/été"}, state="running", total=0),
                 "adding a watch")
        meta.add(WatchRow(job_id=2**62, claim="host:1:abc", claimed_at=datetime(2026, 1, 2)),
                 "adding a watch lease")
        long_item = "a/" * 600 + "b.jpg"
        meta.add(WatchedFileRow(job_id=2**62, entity_id=2**63 - 1, item=long_item,
                                size=2**40, mtime_ns=1_780_000_000_123_456_789),
                 "adding a watched file")
        meta.add(JobItemRow(job_id=2**62, position=0, item="b.jpg", entity_id=5,
                            state="pending", action="remove", replaces=2**63 - 2),
                 "adding a watch item")
        with meta.session("reading the watch") as session:
            lease = session.get(WatchRow, 2**62)
            seen = session.get(WatchedFileRow, (2**62, 2**63 - 1))
            item = session.get(JobItemRow, (2**62, 0))
            assert (lease.claim, lease.claimed_at, lease.scanned_at) == \
                ("host:1:abc", datetime(2026, 1, 2), None)
            assert (seen.item, seen.size, seen.mtime_ns) == \
                (long_item, 2**40, 1_780_000_000_123_456_789)
            assert (item.action, item.replaces) == ("remove", 2**63 - 2)
        with pytest.raises(MetaStoreError):  # a watch's rows are of a job that exists
            meta.add(WatchRow(job_id=3), "adding a lease of no job")
        meta.delete_application("album")  # the watch's rows go with its job
        with meta.session("reading what is left") as session:
            assert list(session.scalars(select(WatchRow))) == []
            assert list(session.scalars(select(WatchedFileRow))) == []
            assert list(session.scalars(select(JobItemRow))) == []
    finally:
        meta.close()


def test_the_new_entity_columns_hold_a_name_attributes_exif_and_a_time(database):
    _, url = database
    meta = MetaStore(url)
    try:
        meta.add(ApplicationRow(name="album", bucket="b"), "adding an application")
        taken = datetime(2023, 7, 14, 18, 30, 5, tzinfo=timezone(timedelta(hours=2)))
        meta.add_entities([
            EntityRow(id=1, application="album", field="photo", object_key="k1",
                      content_type="image/jpeg", sha256="c" * 64, size=1,
                      name="IMG_0001 beach " + "x" * 1000, attributes={"place": "Nice"},
                      exif={"Model": "X100", "FNumber": 2.8}, taken_at=taken),
            EntityRow(id=2, application="album", field="photo", object_key="k2",
                      content_type="image/jpeg", sha256="d" * 64, size=1, name="DSC_7"),
        ])
        with meta.session("prefix search") as session:
            query = select(EntityRow).where(EntityRow.application == "album",
                                            EntityRow.name.like("IMG\\_%", escape="\\"))
            [row] = session.scalars(query)
        assert row.id == 1 and len(row.name) == 1015
        assert (row.attributes, row.exif) == ({"place": "Nice"}, {"Model": "X100", "FNumber": 2.8})
        # the moment is written in UTC; SQLite and MariaDB give back its UTC wall clock
        assert row.taken_at_utc == taken and row.taken_at_utc.utcoffset() == timedelta(0)
        if row.taken_at.tzinfo is None:  # SQLite, MariaDB: the UTC wall clock
            assert row.taken_at == datetime(2023, 7, 14, 16, 30, 5)
    finally:
        meta.close()


def test_an_empty_database_is_built_at_the_newest_revision_matching_the_models(database):
    _, url = database
    assert [revision.id for revision in schema_status(url).pending] == ALL
    meta = MetaStore(url)
    try:
        migration = meta.migration
        assert (migration.before, migration.after, migration.legacy) == (None, HEAD, False)
        assert [revision.id for revision in migration.applied] == ALL
        with meta.engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection),
                                           Base.metadata)
        assert differences == []
        with meta.session("reading the catalog version") as session:
            assert session.scalar(select(CatalogVersionRow.version)) == 0
    finally:
        meta.close()
    status = schema_status(url)
    assert (status.current, status.pending, status.up_to_date) == (HEAD, (), True)


@pytest.mark.parametrize("previous", [False, True], ids=["empty", "previous-release"])
def test_opening_again_changes_nothing(database, previous):
    kind, url = database
    if previous:
        previous_schema.build(kind, url)
    MetaStore(url).close()
    schema = _schema(url)
    meta = MetaStore(url)
    try:
        assert (meta.migration.before, meta.migration.applied) == (HEAD, ())
        assert meta.count_entities("album") == (2 if previous else 0)
    finally:
        meta.close()
    assert _schema(url) == schema


OPEN = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    go = Path(sys.argv[2])
    while not go.exists():
        time.sleep(0.005)
    try:
        from phantoscope.storage.meta import MetaStore
        meta = MetaStore(sys.argv[1])
        print(json.dumps({"applied": [r.id for r in meta.migration.applied]}))
        meta.close()
    except Exception as exc:
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
""")


@pytest.mark.parametrize("previous", [False, True], ids=["empty", "previous-release"])
def test_two_processes_opening_at_once_both_succeed_and_one_migrates(database, previous,
                                                                      tmp_path):
    kind, url = database
    if previous:
        previous_schema.build(kind, url)
    go = tmp_path / "go"
    children = [
        subprocess.Popen([sys.executable, "-c", OPEN, url, str(go)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    time.sleep(3)  # both children are polling for the file: then they race
    go.touch()
    results = []
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert all("error" not in result for result in results), results
    assert sorted(result["applied"] for result in results) == [[], ALL]
    meta = MetaStore(url)
    try:
        assert meta.migration.applied == ()
        with meta.session("counting catalog version rows") as session:
            assert len(session.scalars(select(CatalogVersionRow)).all()) == 1
    finally:
        meta.close()
    if previous:
        assert previous_schema.read_rows(url) == _sorted_rows()


def test_the_migrate_command_shows_and_applies_the_revisions(database, tmp_path):
    kind, url = database
    previous_schema.build(kind, url)
    env = {"PHANTOSCOPE_HOME": str(tmp_path / "home"), "PHANTOSCOPE_META": url}
    runner = CliRunner()

    shown = runner.invoke(app, ["migrate", "--status"], env=env)
    assert shown.exit_code == 0, shown.output
    assert "earlier release" in shown.output and "pending: 0001" in shown.output
    assert "pending: 0002" in shown.output and "pending: 0003" in shown.output
    assert "pending: 0004" in shown.output and "pending: 0005" in shown.output
    assert "pending: 0006" in shown.output and "pending: 0007" in shown.output
    assert schema_status(url).current is None  # --status changed nothing

    done = runner.invoke(app, ["migrate"], env=env)
    assert done.exit_code == 0, done.output
    assert all(f"applied: {revision}" in done.output for revision in ALL)
    assert f"revision: {HEAD}" in done.output

    again = runner.invoke(app, ["migrate"], env=env)
    assert "nothing to apply" in again.output and f"revision: {HEAD}" in again.output
    shown = runner.invoke(app, ["migrate", "--status"], env=env)
    assert "up to date" in shown.output


def test_the_migrate_command_on_a_missing_sqlite_file_makes_nothing(tmp_path):
    env = {"PHANTOSCOPE_HOME": str(tmp_path / "home"), "PHANTOSCOPE_META": None}
    shown = CliRunner().invoke(app, ["migrate", "--status"], env=env)
    assert shown.exit_code == 0, shown.output
    assert "none (empty database)" in shown.output
    assert not (tmp_path / "home" / "meta.db").exists()
