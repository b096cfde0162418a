"""A data folder of the previous release (SQLite made by its tables, Milvus Lite, image
folder) opened the way the server opens it: the metadata is upgraded and the folder still
searches — the catalog plans the query, the nearest vectors map to their entities, whose
images are there — and the stores agree. Its collection has no payload fields (the previous
release made only `id` and `vector`): a filtered search goes through the fallback that
searches the ids of the entities SQL selects.

The operators are not run (the query vector is given): this is about the stored data."""

from __future__ import annotations

import numpy as np
import previous_schema
import pytest
from pymilvus import DataType, MilvusClient

from phantoscope.config import ServerSettings
from phantoscope.engine.consistency import scan
from phantoscope.engine.context import Stores
from phantoscope.engine.entities import list_entities
from phantoscope.engine.entity_updates import update_entity
from phantoscope.engine.errors import BadRequestError
from phantoscope.engine.filters import parse_filter
from phantoscope.engine.names import partition_name
from phantoscope.engine.pipeline import PipelineVector
from phantoscope.engine.registry import get_operator
from phantoscope.engine.search import nearest, plan_search
from phantoscope.engine.text_search import text_search
from phantoscope.storage import migrations
from phantoscope.storage.open_stores import open_object_store

VECTORS = {1001: [1.0, 0.0, 0.0], 1002: [0.0, 1.0, 0.0], 1003: [0.0, 0.0, 1.0]}
IMAGES = {"e101.jpg": b"\xff\xd8\xff jpeg 101", "e102.png": b"\x89PNG png 102"}


def _previous_release_collection(uri: str, name: str) -> None:
    """The collection as the previous release made it: an `id` and a `vector`, no payload."""
    client = MilvusClient(uri)
    try:
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=3)
        index = client.prepare_index_params()
        index.add_index("vector", index_type="FLAT", metric_type="IP")
        client.create_collection(name, schema=schema, index_params=index)
        client.create_partition(name, partition_name("album"))
        client.insert(name, [{"id": key, "vector": vector} for key, vector in VECTORS.items()],
                      partition_name=partition_name("album"))
    finally:
        client.close()


@pytest.fixture
def previous_data_folder(tmp_path, monkeypatch):
    for setting in ("PHANTOSCOPE_META", "PHANTOSCOPE_VECTORS", "PHANTOSCOPE_OBJECTS"):
        monkeypatch.delenv(setting, raising=False)
    home = tmp_path / "data"
    home.mkdir()
    settings = ServerSettings(home=home)
    previous_schema.build("sqlite", settings.meta_url, without=("pending_uploads",))
    _previous_release_collection(settings.vectors_uri, "phantoscope_faces")
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


def test_a_previous_release_collection_answers_filtered_searches_through_sql(
        previous_data_folder):
    stores = Stores.open(previous_data_folder)
    try:
        plan = plan_search(stores, "album", "photo")
        assert not stores.vectors.filterable(plan.pipeline.collection)
        query = [PipelineVector(np.array([0.1, 0.9, 0.2], dtype=np.float32), 0, None)]

        def found(value: object) -> list[int]:
            filter = parse_filter(value) if value is not None else None
            return [hit.entity.id for hit in nearest(stores, plan, query, 3, filter)]

        assert found(None) == [102, 101]
        assert found({"name": {"exists": False}}) == [102, 101]  # nothing has a name yet
        assert found({"attributes.album": "summer"}) == []
        # metadata given after the upgrade: SQL changes, the collection keeps no payload
        renamed = update_entity(stores, "album", 101, name="old/cat.jpg",
                                attributes={"album": "summer", "year": 2019})
        assert (renamed.name, dict(renamed.attributes)) == (
            "old/cat.jpg", {"album": "summer", "year": 2019})
        assert found({"attributes.album": "summer"}) == [101]
        assert found({"name": {"prefix": "old/"}, "attributes.year": {"lt": 2020}}) == [101]
        assert found({"not": {"attributes.album": "summer"}}) == []  # unknown for 102
        assert found({"name": {"exists": False}}) == [102]
        assert found({"taken_at": {"gte": "2000-01-01"}}) == []
        [hit] = nearest(stores, plan, query, 3, parse_filter({"attributes.album": "summer"}))
        assert (hit.entity.name, hit.best.box) == ("old/cat.jpg", None)
        assert scan(stores, grace_s=0).clean
    finally:
        stores.close()


def test_a_previous_release_data_folder_has_no_labels_and_refuses_words(previous_data_folder):
    """Its entities have no labels and its operators no label vocabulary (issue 17): a search
    by words says why it cannot run, and searching by image is unchanged (above)."""
    stores = Stores.open(previous_data_folder)
    try:
        assert [entity.labels for entity in list_entities(stores, "album", 10, 0)] == [(), ()]
        assert get_operator(stores, "enc").labels == ""
        with pytest.raises(BadRequestError) as refused:
            text_search(stores, "album", None, "cat", 10)
        assert refused.value.code == "TEXT_SEARCH_UNAVAILABLE"
    finally:
        stores.close()
