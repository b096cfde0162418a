"""The metadata tables of the release before versioned migrations (0.2), with some rows.

``SCHEMA`` is the DDL that release's ``Base.metadata.create_all`` sent to each database
(captured from SQLite, MariaDB 10.11 and PostgreSQL 15), written out here so that the tests
do not depend on the models of today or on the repository's history. ``ROWS`` is a small
catalog and data set in those tables: an operator with two replica endpoints and one with
one, a pipeline with a processor, an application with two fields, entities with vectors
(one with a crop box), an upload journal row and the catalog version.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy
from sqlalchemy import text

SCHEMA = """
CREATE TABLE operators (
    name VARCHAR(64) NOT NULL,
    backend VARCHAR(255) NOT NULL,
    type VARCHAR(16) NOT NULL,
    input VARCHAR(32) NOT NULL,
    output VARCHAR(32) NOT NULL,
    metric_type VARCHAR(16) NOT NULL,
    dimension INTEGER NOT NULL,
    created_at {datetime} NOT NULL,
    PRIMARY KEY (name)
);
CREATE TABLE applications (
    name VARCHAR(64) NOT NULL,
    bucket VARCHAR(63) NOT NULL,
    created_at {datetime} NOT NULL,
    PRIMARY KEY (name)
);
CREATE TABLE pending_uploads (
    id BIGINT NOT NULL,
    application VARCHAR(64) NOT NULL,
    bucket VARCHAR(63) NOT NULL,
    object_keys JSON NOT NULL,
    vectors JSON NOT NULL,
    claimed {boolean} NOT NULL,
    created_at {datetime} NOT NULL,
    PRIMARY KEY (id)
);
CREATE INDEX ix_pending_uploads_created_at ON pending_uploads (created_at);
CREATE TABLE catalog_version (
    id INTEGER NOT NULL,
    version BIGINT NOT NULL,
    PRIMARY KEY (id)
);
CREATE TABLE operator_endpoints (
    operator VARCHAR(64) NOT NULL,
    {position} INTEGER NOT NULL,
    endpoint VARCHAR(255) NOT NULL,
    PRIMARY KEY (operator, {position}),
    FOREIGN KEY(operator) REFERENCES operators (name) ON DELETE CASCADE
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
CREATE TABLE entities (
    id BIGINT NOT NULL,
    application VARCHAR(64) NOT NULL,
    field VARCHAR(64) NOT NULL,
    object_key VARCHAR(255) NOT NULL,
    content_type VARCHAR(64) NOT NULL,
    sha256 VARCHAR(64) NOT NULL,
    size BIGINT NOT NULL,
    created_at {datetime} NOT NULL,
    PRIMARY KEY (id),
    FOREIGN KEY(application) REFERENCES applications (name) ON DELETE CASCADE
);
CREATE INDEX ix_entities_sha256 ON entities (sha256);
CREATE INDEX ix_entities_application ON entities (application);
CREATE TABLE pipeline_processors (
    pipeline VARCHAR(64) NOT NULL,
    {position} INTEGER NOT NULL,
    operator VARCHAR(64) NOT NULL,
    PRIMARY KEY (pipeline, {position}),
    FOREIGN KEY(pipeline) REFERENCES pipelines (name) ON DELETE CASCADE,
    FOREIGN KEY(operator) REFERENCES operators (name)
);
CREATE TABLE application_fields (
    application VARCHAR(64) NOT NULL,
    name VARCHAR(64) NOT NULL,
    {position} INTEGER NOT NULL,
    type VARCHAR(16) NOT NULL,
    pipeline VARCHAR(64),
    value JSON,
    PRIMARY KEY (application, name),
    FOREIGN KEY(application) REFERENCES applications (name) ON DELETE CASCADE,
    FOREIGN KEY(pipeline) REFERENCES pipelines (name)
);
CREATE TABLE vectors (
    id BIGINT NOT NULL,
    entity_id BIGINT NOT NULL,
    pipeline VARCHAR(64) NOT NULL,
    box_left INTEGER,
    box_top INTEGER,
    box_right INTEGER,
    box_bottom INTEGER,
    box_score FLOAT,
    PRIMARY KEY (id),
    FOREIGN KEY(entity_id) REFERENCES entities (id) ON DELETE CASCADE
);
CREATE INDEX ix_vectors_entity_id ON vectors (entity_id);
"""

TYPES = {
    "sqlite": {"datetime": "DATETIME", "boolean": "BOOLEAN", "position": "position"},
    "mariadb": {"datetime": "DATETIME", "boolean": "BOOL", "position": "`position`"},
    "postgres": {"datetime": "TIMESTAMP WITHOUT TIME ZONE", "boolean": "BOOLEAN",
                 "position": "position"},
}

AT = datetime(2024, 5, 1, 10, 0, 0)
ENDPOINTS = {"enc": ["10.0.0.1:50001", "10.0.0.2:50001"], "det": ["det:50002"]}

# Table by table, each after those it references.
ROWS: dict[str, list[dict[str, Any]]] = {
    "operators": [
        {"name": "enc", "backend": "lite0", "type": "encoder", "input": "image",
         "output": "vector", "metric_type": "IP", "dimension": 3, "created_at": AT},
        {"name": "det", "backend": "mtcnn", "type": "processor", "input": "image",
         "output": "images", "metric_type": "", "dimension": 0,
         "created_at": AT + timedelta(seconds=1)},
    ],
    "operator_endpoints": [
        {"operator": name, "position": position, "endpoint": endpoint}
        for name, endpoints in ENDPOINTS.items()
        for position, endpoint in enumerate(endpoints)
    ],
    "pipelines": [
        {"name": "faces", "input": "image", "output": "vector", "description": "faces",
         "encoder": "enc", "dimension": 3, "metric_type": "IP", "index_file_size": 1024,
         "collection": "phantoscope_faces", "created_at": AT + timedelta(seconds=2)},
    ],
    "pipeline_processors": [{"pipeline": "faces", "position": 0, "operator": "det"}],
    "applications": [
        {"name": "album", "bucket": "album-bucket", "created_at": AT + timedelta(seconds=3)},
    ],
    "application_fields": [
        {"application": "album", "name": "photo", "position": 0, "type": "object",
         "pipeline": "faces", "value": None},
        {"application": "album", "name": "owner", "position": 1, "type": "string",
         "pipeline": None, "value": {"default": "ana", "tags": ["a", "b"]}},
    ],
    "entities": [
        {"id": 101, "application": "album", "field": "photo", "object_key": "e101.jpg",
         "content_type": "image/jpeg", "sha256": "a" * 64, "size": 1234,
         "created_at": AT + timedelta(seconds=4)},
        {"id": 102, "application": "album", "field": "photo", "object_key": "e102.png",
         "content_type": "image/png", "sha256": "b" * 64, "size": 5678,
         "created_at": AT + timedelta(seconds=5)},
    ],
    "vectors": [
        {"id": 1001, "entity_id": 101, "pipeline": "faces", "box_left": None,
         "box_top": None, "box_right": None, "box_bottom": None, "box_score": None},
        {"id": 1002, "entity_id": 102, "pipeline": "faces", "box_left": 1, "box_top": 2,
         "box_right": 30, "box_bottom": 40, "box_score": 0.5},
        {"id": 1003, "entity_id": 102, "pipeline": "faces", "box_left": None,
         "box_top": None, "box_right": None, "box_bottom": None, "box_score": None},
    ],
    "pending_uploads": [
        {"id": 7, "application": "album", "bucket": "album-bucket",
         "object_keys": ["e103.jpg"], "vectors": {"phantoscope_faces": [1004]},
         "claimed": False, "created_at": AT + timedelta(seconds=6)},
    ],
    "catalog_version": [{"id": 1, "version": 5}],
}
JSON_COLUMNS = {"application_fields": {"value"}, "pending_uploads": {"object_keys", "vectors"}}


def _type(table: str, column: str) -> Any:
    if column in JSON_COLUMNS.get(table, ()):
        return sqlalchemy.JSON
    return sqlalchemy.DateTime if column.endswith("_at") else None


def row_table(name: str) -> sqlalchemy.TableClause:
    """A bare table clause for ``ROWS[name]`` (JSON and time columns typed)."""
    return sqlalchemy.table(name, *(sqlalchemy.column(key, _type(name, key))
                                    for key in ROWS[name][0]))


def build(kind: str, url: str, rows: bool = True, without: tuple[str, ...] = ()) -> None:
    """Make the previous release's tables in the empty database at ``url``, with ``ROWS``
    (but for the tables named in ``without``)."""
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.begin() as connection:
            for statement in SCHEMA.format(**TYPES[kind]).split(";"):
                if statement.strip():
                    connection.execute(text(statement))
            if rows:
                for name, values in ROWS.items():
                    if name not in without:
                        connection.execute(row_table(name).insert(), values)
    finally:
        engine.dispose()


def read_rows(url: str) -> dict[str, list[dict[str, Any]]]:
    """The rows of every ``ROWS`` table, in key order, with only the previous columns."""
    engine = sqlalchemy.create_engine(url)
    try:
        found = {}
        with engine.connect() as connection:
            for name, values in ROWS.items():
                table = row_table(name)
                query = sqlalchemy.select(*table.c).order_by(*(
                    table.c[key] for key in values[0] if key in KEYS[name]))
                found[name] = [dict(row._mapping) for row in connection.execute(query)]
        return found
    finally:
        engine.dispose()


KEYS = {
    "operators": {"name"}, "operator_endpoints": {"operator", "position"},
    "pipelines": {"name"}, "pipeline_processors": {"pipeline", "position"},
    "applications": {"name"}, "application_fields": {"application", "name"},
    "entities": {"id"}, "vectors": {"id"}, "pending_uploads": {"id"}, "catalog_version": {"id"},
}
