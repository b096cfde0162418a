"""An operator's replica endpoints as rows of `operator_endpoints`, and the migration of
databases made when they were one comma-joined `operators.endpoint` column; on SQLite,
MariaDB and PostgreSQL."""

from __future__ import annotations

import sqlalchemy
from sqlalchemy import inspect, text

from phantoscope.storage.meta import (
    Base,
    MetaStore,
    OperatorRow,
    PipelineRow,
    endpoint_rows,
    migrate_operator_endpoints,
)

# The tables as the code before `operator_endpoints` made them (its create_all, per dialect).
OLD_SCHEMA = """
CREATE TABLE operators (
    name VARCHAR(64) NOT NULL,
    backend VARCHAR(255) NOT NULL,
    type VARCHAR(16) NOT NULL,
    input VARCHAR(32) NOT NULL,
    output VARCHAR(32) NOT NULL,
    endpoint VARCHAR(255) NOT NULL,
    metric_type VARCHAR(16) NOT NULL,
    dimension INTEGER NOT NULL,
    created_at {datetime} NOT NULL,
    PRIMARY KEY (name)
);
CREATE TABLE pipelines (
    name VARCHAR(64) NOT NULL,
    input VARCHAR(32) NOT NULL,
    output VARCHAR(32) NOT NULL,
    description TEXT NOT NULL,
    encoder VARCHAR(64) NOT NULL,
    dimension INTEGER NOT NULL,
    metric_type VARCHAR(16) NOT NULL,
    index_file_size INTEGER NOT NULL,
    collection VARCHAR(255) NOT NULL,
    created_at {datetime} NOT NULL,
    PRIMARY KEY (name),
    FOREIGN KEY(encoder) REFERENCES operators (name),
    UNIQUE (collection)
);
INSERT INTO operators VALUES ('single', 'lite0', 'encoder', 'image', 'vector',
    '127.0.0.1:50001', 'IP', 1280, '2024-05-01 10:00:00');
INSERT INTO operators VALUES ('replicated', 'lite0', 'encoder', 'image', 'vector',
    '10.0.0.1:50001,10.0.0.2:50001,op-3:50001', 'IP', 1280, '2024-05-01 10:00:01');
INSERT INTO pipelines VALUES ('search', 'image', 'vector', '', 'replicated', 1280, 'IP',
    1024, 'phantoscope_search', '2024-05-01 10:00:02');
"""
DATETIME = {"sqlite": "DATETIME", "mariadb": "DATETIME", "postgres": "TIMESTAMP"}
REPLICATED = ["10.0.0.1:50001", "10.0.0.2:50001", "op-3:50001"]


def _old_database(kind: str, url: str) -> sqlalchemy.Engine:
    """An engine on ``url`` after the old code made its tables and rows there."""
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as connection:
        for statement in OLD_SCHEMA.format(datetime=DATETIME[kind]).split(";"):
            if statement.strip():
                connection.execute(text(statement))
    return engine


def _operator(name: str, endpoints: list[str]) -> OperatorRow:
    return OperatorRow(name=name, backend="test", type="encoder", input="image",
                       output="vector", endpoint_rows=endpoint_rows(endpoints),
                       metric_type="IP", dimension=3)


def test_endpoints_are_rows_in_order_replaced_at_once_and_deleted_with_the_operator(database):
    _, url = database
    meta = MetaStore(url)
    try:
        meta.add(_operator("enc", ["b:2", "a:1", "c:3"]), "adding an operator")
        assert meta.get_operator("enc").endpoints == ["b:2", "a:1", "c:3"]
        assert meta.row_counts()["operator_endpoints"] == 3

        meta.set_operator_endpoints("enc", ["a:1", "b:2"])
        assert meta.get_operator("enc").endpoints == ["a:1", "b:2"]
        meta.set_operator_endpoints("enc", ["z:9", "a:1", "b:2", "d:4"])
        assert meta.list_operators()[0].endpoints == ["z:9", "a:1", "b:2", "d:4"]
        assert meta.get_operators(["enc"])["enc"].endpoints == ["z:9", "a:1", "b:2", "d:4"]

        meta.delete_operator("enc")
        assert meta.row_counts()["operator_endpoints"] == 0
    finally:
        meta.close()


def test_an_earlier_database_gets_its_endpoints_as_rows_and_loses_the_column(database):
    kind, url = database
    engine = _old_database(kind, url)
    try:
        Base.metadata.create_all(engine)
        assert migrate_operator_endpoints(engine) == 2
        assert "endpoint" not in {c["name"] for c in inspect(engine).get_columns("operators")}
        assert migrate_operator_endpoints(engine) == 0
    finally:
        engine.dispose()

    meta = MetaStore(url)
    try:
        assert meta.get_operator("single").endpoints == ["127.0.0.1:50001"]
        assert meta.get_operator("replicated").endpoints == REPLICATED
        assert meta.get_pipeline("search").encoder == "replicated"
        meta.add(_operator("new", ["127.0.0.1:50002"]), "adding an operator")
        assert [row.name for row in meta.list_operators()] == ["single", "replicated", "new"]
        assert meta.row_counts()["operator_endpoints"] == 5
    finally:
        meta.close()


def test_opening_an_earlier_database_migrates_it_and_finishes_a_cut_short_migration(database):
    kind, url = database
    engine = _old_database(kind, url)
    try:
        Base.metadata.create_all(engine)
        with engine.begin() as connection:  # as if a migration stopped before dropping
            connection.execute(text("INSERT INTO operator_endpoints (operator, position, "
                                    "endpoint) VALUES ('single', 0, '127.0.0.1:50001')"))
    finally:
        engine.dispose()

    meta = MetaStore(url)
    try:
        assert meta.get_operator("single").endpoints == ["127.0.0.1:50001"]
        assert meta.get_operator("replicated").endpoints == REPLICATED
        meta.add(PipelineRow(name="other", input="image", output="vector", encoder="single",
                             dimension=1280, metric_type="IP", index_file_size=1024,
                             collection="phantoscope_other"), "adding a pipeline")
        assert meta.pipelines_using("single") == ["other"]
    finally:
        meta.close()
    reopened = MetaStore(url)
    try:
        assert reopened.get_operator("replicated").endpoints == REPLICATED
        assert reopened.row_counts()["operator_endpoints"] == 4
    finally:
        reopened.close()
