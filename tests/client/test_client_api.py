"""Every method of `phantoscope.client` against a real server and encoder."""

from __future__ import annotations

import hashlib
import secrets

import pytest

from helpers import free_port
from phantoscope.client import (
    Application,
    BatchResult,
    Entity,
    Hit,
    Operator,
    PhantoscopeClient,
    PhantoscopeError,
    Pipeline,
)
from photos import edited_copy, jpeg, photo


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def test_round_trip(client, server, encoder_endpoint, tmp_path, image_host):
    assert client.ping() is True
    before = client.stats()
    assert set(before) >= {"operators", "pipelines", "applications", "entities", "vectors"}

    # Operators.
    name = unique("encoder")
    operator = client.operators.register(name, encoder_endpoint)
    assert operator == Operator(
        name=name,
        backend="efficientnet-lite0-encoder",
        type="encoder",
        input="image",
        output="vector",
        endpoint=encoder_endpoint,
        metric_type="IP",
        dimension=1280,
    )
    assert client.operators.get(name) == operator
    assert operator in client.operators.list()
    assert client.operators.health(name) == "healthy"

    # Pipelines, and a dry run of one.
    pipe = unique("pipe")
    pipeline = client.pipelines.create(pipe, name, description="photos")
    assert isinstance(pipeline, Pipeline)
    assert (pipeline.encoder, pipeline.processors, pipeline.dimension) == (name, (), 1280)
    assert (pipeline.description, pipeline.metric_type) == ("photos", "IP")
    assert client.pipelines.get(pipe) == pipeline and pipeline in client.pipelines.list()
    (step,) = client.pipelines.test(pipe, jpeg(photo("coins")))
    assert (step.operator, step.type, step.crops) == (name, "encoder", ())
    assert len(step.vectors) == 1 and len(step.vectors[0]) == 1280

    # Applications: one image field from a pipeline name, or field definitions.
    app = unique("app")
    application = client.applications.create(app, pipeline=pipe, bucket=f"bucket-{app}")
    assert application == Application(
        app, {"image": {"type": "object", "pipeline": pipe}}, f"bucket-{app}"
    )
    assert client.applications.get(app) == application
    assert application in client.applications.list()
    other = unique("app")
    fields = {
        "photo": {"type": "object", "pipeline": pipe},
        "sketch": {"type": "object", "pipeline": pipe},
        "tag": {"type": "text", "value": "x"},
    }
    created = client.applications.create(other, fields)
    assert created.fields == fields and created.image_fields == {"photo": pipe, "sketch": pipe}
    assert client.applications.count(app) == 0

    # Uploads: bytes, a file, a URL; a batch of files and bytes, a batch with a URL.
    files = {n: jpeg(photo(n)) for n in ("chelsea", "rocket", "coins", "clock", "moon", "horse")}
    for n, data in files.items():
        (tmp_path / f"{n}.jpg").write_bytes(data)
    (entity,) = client.upload(app, files["chelsea"])
    assert isinstance(entity, Entity) and entity.app_name == app and entity.field == "image"
    assert entity.sha256 == hashlib.sha256(files["chelsea"]).hexdigest()
    assert entity.size == len(files["chelsea"]) and entity.content_type == "image/jpeg"
    assert len(entity.vectors) == 1 and entity.vectors[0].pipeline == pipe
    assert entity.created_at.tzinfo is not None
    (from_file,) = client.upload(app, tmp_path / "rocket.jpg", field="image")
    assert from_file.sha256 == hashlib.sha256(files["rocket"]).hexdigest()
    (from_url,) = client.upload(app, f"{image_host}/coins.jpg")
    assert from_url.sha256 == hashlib.sha256(files["coins"]).hexdigest()
    batch = client.upload_batch(app, [tmp_path / "clock.jpg", b"not an image", files["moon"]])
    assert isinstance(batch, BatchResult) and (batch.imported, batch.failed) == (2, 1)
    assert [item.index for item in batch.results] == [0, 1, 2]
    bad = batch.results[1]
    assert bad.entity is None and bad.error is not None
    assert (bad.error.status, bad.error.code) == (400, "NOT_AN_IMAGE")
    clock = batch.results[0].entity
    assert clock is not None and clock.sha256 == hashlib.sha256(files["clock"]).hexdigest()
    with_url = client.upload_batch(app, [f"{image_host}/horse.jpg", files["horse"]], "image")
    assert (with_url.imported, with_url.failed) == (2, 0)
    assert client.applications.count(app) == 7

    # Search by bytes, by file and by URL: the photo an edited copy came from comes first.
    (tmp_path / "query.jpg").write_bytes(edited_copy(photo("clock")))
    for query in (edited_copy(photo("clock")), tmp_path / "query.jpg", f"{image_host}/query.jpg"):
        hits = client.search(app, query, topk=3)
        assert len(hits) == 3 and all(isinstance(hit, Hit) for hit in hits)
        assert hits[0].id == clock.id and hits[0].entity.image_url
        assert hits[0].score > hits[1].score >= hits[2].score
        assert hits[0].box is None and hits[0].matches[0].score == hits[0].score
        assert hits[0].distance == hits[0].matches[0].distance

    # Entities: pages, all, one, its image, delete.
    first, second = client.entities.list(app, num=4, page=0), client.entities.list(app, 4, 1)
    assert (len(first), len(second)) == (4, 3)
    everything = list(client.entities.iterate(app, page_size=2))
    assert [e.id for e in everything] == [e.id for e in first + second]
    assert client.entities.get(app, clock.id) == clock
    assert client.entities.image(app, clock.id) == files["clock"]
    assert client.entities.delete(app, clock.id).id == clock.id
    assert client.applications.count(app) == 6
    assert clock.id not in [hit.id for hit in client.search(app, query, topk=6)]

    # Errors carry the API's status, code and message.
    with pytest.raises(PhantoscopeError) as missing:
        client.operators.get("no-such-operator")
    assert (missing.value.status, missing.value.code) == (404, "OPERATOR_NOT_FOUND")
    assert "no-such-operator" in missing.value.message
    with pytest.raises(PhantoscopeError) as refused:
        client.applications.delete(app)
    assert (refused.value.status, refused.value.code) == (409, "APPLICATION_NOT_EMPTY")
    with pytest.raises(PhantoscopeError) as unnamed:
        client.upload(other, "http://127.0.0.1:1/x.jpg")  # two fields: say which
    assert unnamed.value.code == "FIELD_REQUIRED"
    nobody = PhantoscopeClient(f"http://127.0.0.1:{free_port()}")
    with nobody, pytest.raises(PhantoscopeError) as unreachable:
        nobody.ping()
    assert (unreachable.value.status, unreachable.value.code) == (0, "UNREACHABLE")

    # Deleting returns what was deleted, and leaves the stores as they were.
    assert client.applications.delete(app, force=True) == application
    assert client.applications.delete(other).name == other
    assert client.pipelines.delete(pipe) == pipeline
    assert client.operators.delete(name) == operator
    assert client.stats() == before
