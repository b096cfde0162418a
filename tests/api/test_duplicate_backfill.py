"""A data folder written before duplicate detection (its database at revision 0004, no
descriptors): the first listing describes the stored images from the object store, once,
going on from what still lacks a descriptor; an image gone from the store is skipped."""

from __future__ import annotations

import io
import sqlite3

import sqlalchemy
from alembic import command

from api_server import ApiServer
from phantoscope.duplicate_set import COPY_EDITS
from phantoscope.storage import migrations
from photos import b64, photo


def _png(name: str) -> str:
    buffer = io.BytesIO()
    photo(name).save(buffer, format="PNG")
    return b64(buffer.getvalue())


def _downgrade_to_0004(url: str) -> None:
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as connection:
            settings = migrations.config()
            settings.attributes["connection"] = connection
            command.downgrade(settings, "0004")
            connection.commit()
    finally:
        engine.dispose()


def test_entities_stored_without_descriptors_are_described_on_first_need(
        encoder_endpoint, tmp_path):
    server = ApiServer(tmp_path / "home", {}).start()
    database = server.home / "meta.db"
    try:
        api = server.client
        assert api.post("/v1/operator/regist", json={
            "name": "enc", "endpoint": encoder_endpoint}).status_code == 200
        assert api.post("/v1/pipeline/pipe", json={"encoder": "enc"}).status_code == 200
        assert api.post("/v1/application/album", json={
            "fields": {"image": {"type": "object", "pipeline": "pipe"}}}).status_code == 200
        images = {"coffee": _png("coffee"), "horse": _png("horse"), "rocket": _png("rocket"),
                  "coffee-jpeg-75": b64(COPY_EDITS["jpeg-75"](photo("coffee")).data),
                  "coffee-tilted-3": b64(COPY_EDITS["tilted-3"](photo("coffee")).data)}
        ids = {}
        for name, data in images.items():
            answer = api.post("/v1/application/album/upload",
                              json={"fields": {"image": {"data": data}}, "name": name})
            assert answer.status_code == 200, answer.text
            ids[name] = answer.json()[0]["_id"]
        server.stop()

        # the folder as an earlier release left it: no duplicate tables, no descriptors
        _downgrade_to_0004(f"sqlite:///{database}")
        with sqlite3.connect(database) as db:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
            assert "entity_descriptors" not in tables
            [(key,)] = db.execute("SELECT object_key FROM entities WHERE id = ?",
                                  (ids["rocket"],))
        gone = next((server.home / "objects").rglob(key))
        gone.unlink()  # one image lost from the store: it is skipped, not fatal

        server.start()
        with sqlite3.connect(database) as db:
            assert db.execute("SELECT count(*) FROM entity_descriptors").fetchone() == (0,)
        answer = api.get("/v1/application/album/duplicates")
        assert answer.status_code == 200, answer.text
        [group] = answer.json()["groups"]
        assert {each["_id"] for each in group["entities"]} == \
            {ids["coffee"], ids["coffee-jpeg-75"], ids["coffee-tilted-3"]}
        assert group["keep"] == ids["coffee"]
        with sqlite3.connect(database) as db:
            described = {row[0] for row in db.execute("SELECT entity_id FROM entity_descriptors")}
        assert described == set(ids.values()) - {ids["rocket"]}
        assert "has no usable image to describe" in server.log()

        # once described, a new copy is checked at upload against the described ones
        answer = api.post("/v1/application/album/upload", json={"fields": {"image": {
            "data": b64(COPY_EDITS["mirrored"](photo("horse")).data)}}})
        assert answer.json()[0]["duplicate_of"]["_id"] == ids["horse"]

        # a backfill cut short goes on from what still lacks a descriptor
        server.stop()
        with sqlite3.connect(database) as db:
            db.execute("DELETE FROM entity_descriptors WHERE entity_id = ?",
                       (ids["coffee-jpeg-75"],))
        server.start()
        again = api.get("/v1/application/album/duplicates").json()["groups"]
        assert group["id"] in [each["id"] for each in again]  # and the horse's copies
        assert "described 1 entities of 'album'" in server.log()
    finally:
        server.stop()
