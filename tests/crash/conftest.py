"""Fixtures for the crash-safety tests: real stores, real servers.

`stores` opens the engine's stores over two backend sets: the embedded ones (Milvus Lite,
SQLite, a folder) and the scale-out ones (a Milvus server from the PyPI `milvus` package,
PostgreSQL on 127.0.0.1:5432, moto's S3 server), with one application on one pipeline and
its collection and bucket made, as the API would have made them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass

import numpy as np
import pytest

from backends import Backends, backend_env, drop_database
from helpers import OperatorProcess
from phantoscope.config import ServerSettings
from phantoscope.engine import journal
from phantoscope.engine.context import Stores
from phantoscope.engine.ids import new_id
from phantoscope.engine.names import bucket_name, collection_name, partition_name
from phantoscope.storage.meta import (
    ApplicationRow,
    EntityRow,
    FieldRow,
    OperatorRow,
    PipelineRow,
    VectorRow,
    endpoint_rows,
)

APP = "photos"
PIPELINE = "pipe"
DIMENSION = 8
RANDOM = np.random.default_rng(8)
STORE_BACKENDS = [Backends("lite", "sqlite", "folder"), Backends("server", "postgres", "s3")]


@pytest.fixture(scope="session")
def encoder_endpoint() -> Iterator[str]:
    with OperatorProcess("efficientnet-lite0-encoder") as server:
        yield server.endpoint


@pytest.fixture
def backend_settings(request, tmp_path) -> Iterator:
    """A function giving the PHANTOSCOPE_* environment for a backend set (a fresh database,
    own buckets and collections); the databases are dropped afterwards."""
    databases: list[str] = []

    def settings(backends: Backends) -> dict[str, str]:
        return {"PHANTOSCOPE_HOME": str(tmp_path / "home"),
                **backend_env(request, backends, databases)}

    yield settings
    for url in databases:
        drop_database(url)


@pytest.fixture(params=STORE_BACKENDS, ids=lambda backends: backends.id)
def stores(request, backend_settings) -> Iterator[Stores]:
    opened = open_stores(backend_settings(request.param))
    yield opened
    opened.close()


@pytest.fixture
def planter(stores) -> Planter:
    return Planter(stores)


@pytest.fixture
def open_stores_planter() -> Callable[[dict[str, str]], AbstractContextManager[Planter]]:
    """Open the stores of a PHANTOSCOPE_* environment to plant things; closed on exit, so
    that a command or server can open the embedded ones next."""

    @contextmanager
    def planting(env: dict[str, str]) -> Iterator[Planter]:
        opened = open_stores(env)
        try:
            yield Planter(opened)
        finally:
            opened.close()

    return planting


def open_stores(env: dict[str, str]) -> Stores:
    """The stores of these PHANTOSCOPE_* settings, with the application made."""
    stores = Stores.open(ServerSettings(
        home=env["PHANTOSCOPE_HOME"], vectors=env.get("PHANTOSCOPE_VECTORS"),
        meta=env.get("PHANTOSCOPE_META"), objects=env.get("PHANTOSCOPE_OBJECTS"),
    ))
    if stores.meta.get_application(APP) is None:
        make_application(stores)
    return stores


def make_application(stores: Stores) -> None:
    """The rows, collection and bucket of application APP on pipeline PIPELINE; the
    collection and bucket names are unique, as the Milvus server and S3 are shared."""
    unique = uuid.uuid4().hex[:8]
    stores.meta.add(OperatorRow(
        name="enc", backend="test", type="encoder", input="image", output="vector",
        endpoint_rows=endpoint_rows(["127.0.0.1:1"]), metric_type="IP", dimension=DIMENSION),
        "adding an operator")
    collection = collection_name(f"{PIPELINE}_{unique}")
    stores.meta.add(PipelineRow(
        name=PIPELINE, input="image", output="vector", encoder="enc", dimension=DIMENSION,
        metric_type="IP", index_file_size=1024, collection=collection), "adding a pipeline")
    bucket = bucket_name(f"{APP}-{unique}")
    stores.meta.add(ApplicationRow(name=APP, bucket=bucket, fields=[
        FieldRow(name="image", position=0, type="object", pipeline=PIPELINE)]),
        "adding an application")
    stores.vectors.create_collection(collection, DIMENSION, "IP")
    stores.objects.ensure_bucket(bucket)


@dataclass(frozen=True)
class Upload:
    """An upload: its journal row and entity rows."""

    journal: int
    entities: list[EntityRow]

    @property
    def keys(self) -> list[str]:
        return [entity.object_key for entity in self.entities]

    @property
    def vector_ids(self) -> list[int]:
        return [vector.id for entity in self.entities for vector in entity.vectors]


class Planter:
    """Writes into the stores for real, as an upload does, and stops where told."""

    def __init__(self, stores: Stores) -> None:
        self.stores = stores
        self.application = stores.meta.get_application(APP)
        self.collection = stores.meta.get_pipeline(PIPELINE).collection
        self.bucket = self.application.bucket

    def upload(self, images: int = 2, *, commit: bool = True) -> Upload:
        """An upload of ``images`` images, one vector each; without ``commit`` it stops
        after writing the images and vectors, as a killed server does."""
        entities = [EntityRow(
            id=new_id(), application=APP, field="image", object_key=f"{APP}-{uuid.uuid4().hex}",
            content_type="image/jpeg", sha256=uuid.uuid4().hex * 2, size=3,
            vectors=[VectorRow(id=new_id(), pipeline=PIPELINE)]) for _ in range(images)]
        keys = [entity.object_key for entity in entities]
        ids = [entity.vectors[0].id for entity in entities]
        upload = Upload(journal.open_upload(
            self.stores, APP, self.bucket, keys, {self.collection: ids}), entities)
        for key in keys:
            self.stores.objects.put(self.bucket, key, b"jpg", "image/jpeg")
        self.vector(*ids)
        if commit:
            self.commit(upload)
        return upload

    def commit(self, upload: Upload) -> None:
        """The last step of an upload: its rows in, its journal row out."""
        self.stores.meta.add_entities(upload.entities, pending_upload=upload.journal)

    def vector(self, *ids: int) -> None:
        """Vectors without rows."""
        vectors = RANDOM.random((len(ids), DIMENSION))
        self.stores.vectors.insert(self.collection, list(ids), vectors,
                                   partition=partition_name(APP))

    def image(self, key: str | None = None) -> str:
        """An image without a row; by default with a key as Phantoscope makes them."""
        key = key or f"{APP}-{uuid.uuid4().hex}"
        self.stores.objects.put(self.bucket, key, b"jpg", "image/jpeg")
        return key

    def vector_ids(self) -> set[int]:
        return set(self.stores.vectors.ids(self.collection))

    def image_keys(self) -> set[str]:
        return set(self.stores.objects.keys(self.bucket))

    @staticmethod
    def old_id(age_s: float) -> int:
        """A vector id as :func:`new_id` made it ``age_s`` seconds ago."""
        return new_id() - (int(age_s * 1000) << 20)
