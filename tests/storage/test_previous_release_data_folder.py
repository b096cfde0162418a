"""A data folder of the previous release (SQLite made by its tables, Milvus Lite, image
folder) opened the way the server opens it: the metadata is upgraded and the folder still
searches — the catalog plans the query, the nearest vectors map to their entities, whose
images are there — and the stores agree.

The operators are not run (the query vector is given): this is about the stored data."""

from __future__ import annotations

import numpy as np
import previous_schema
import pytest

from phantoscope.config import ServerSettings
from phantoscope.engine.consistency import scan
from phantoscope.engine.context import Stores
from phantoscope.engine.names import partition_name
from phantoscope.engine.search import plan_search
from phantoscope.storage import migrations
from phantoscope.storage.open_stores import open_object_store, open_vector_store

VECTORS = {1001: [1.0, 0.0, 0.0], 1002: [0.0, 1.0, 0.0], 1003: [0.0, 0.0, 1.0]}
IMAGES = {"e101.jpg": b"\xff\xd8\xff jpeg 101", "e102.png": b"\x89PNG png 102"}


@pytest.fixture
def previous_data_folder(tmp_path, monkeypatch):
    for setting in ("PHANTOSCOPE_META", "PHANTOSCOPE_VECTORS", "PHANTOSCOPE_OBJECTS"):
        monkeypatch.delenv(setting, raising=False)
    home = tmp_path / "data"
    home.mkdir()
    settings = ServerSettings(home=home)
    previous_schema.build("sqlite", settings.meta_url, without=("pending_uploads",))
    vectors = open_vector_store(settings.vectors_uri)
    try:
        vectors.create_collection("phantoscope_faces", 3, "IP")
        vectors.insert("phantoscope_faces", list(VECTORS),
                       np.array(list(VECTORS.values()), dtype=np.float32),
                       partition=partition_name("album"))
    finally:
        vectors.close()
    with open_object_store(settings.objects_url) as objects:
        objects.ensure_bucket("album-bucket")
        for key, data in IMAGES.items():
            objects.put("album-bucket", key, data, "application/octet-stream")
    return settings


def test_a_previous_release_data_folder_is_upgraded_and_still_searches(previous_data_folder):
    stores = Stores.open(previous_data_folder)
    try:
        assert stores.meta.migration.legacy
        assert stores.meta.migration.after == migrations.head()
        plan = plan_search(stores, "album", "photo")
        assert (plan.pipeline.collection, plan.encoder.name) == ("phantoscope_faces", "enc")
        [hits] = stores.vectors.search(plan.pipeline.collection,
                                       np.array([[0.1, 0.9, 0.2]], dtype=np.float32), 3,
                                       partition=partition_name(plan.application.name))
        assert [hit.id for hit in hits] == [1002, 1003, 1001]
        rows = stores.meta.entities_for_vectors([hit.id for hit in hits])
        entity, vector = rows[1002]
        assert (entity.id, entity.name, vector.box_right) == (102, None, 30)
        data, _ = stores.objects.get("album-bucket", entity.object_key)
        assert data == IMAGES["e102.png"]
        assert scan(stores, grace_s=0).clean
    finally:
        stores.close()
