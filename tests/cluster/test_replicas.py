"""Stateless API replicas: two `phantoscope api` processes over one PostgreSQL database, one
Milvus server and one S3 server serve as one engine, whichever of them a request reaches."""

from __future__ import annotations

import secrets
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from api_server import ApiServer
from photos import PHOTO_NAMES, jpeg, photo

# Four overlapping windows of each photo (left, top, right, bottom, as fractions).
WINDOWS = ((0, 0, 0.7, 0.7), (0.3, 0, 1, 0.7), (0, 0.3, 0.7, 1), (0.3, 0.3, 1, 1))


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def ok(answer: httpx.Response) -> dict | list:
    assert answer.status_code == 200, f"{answer.request.url}: {answer.text}"
    return answer.json()


@pytest.fixture(scope="module")
def distinct_photos() -> list[bytes]:
    """80 different JPEGs: four windows of each of the 20 sample photos."""
    out = []
    for name in PHOTO_NAMES:
        image = photo(name)
        width, height = image.size
        for left, top, right, bottom in WINDOWS:
            out.append(jpeg(image.crop((int(left * width), int(top * height),
                                        int(right * width), int(bottom * height)))))
    return out


def register(server: ApiServer, endpoint: str) -> str:
    name = unique("encoder")
    ok(server.client.post("/v1/operator/regist", json={"endpoint": endpoint, "name": name}))
    return name


def make_pipeline(server: ApiServer, encoder: str, name: str | None = None) -> str:
    name = name or unique("pipe")
    ok(server.client.post(f"/v1/pipeline/{name}", json={"encoder": encoder}))
    return name


def make_application(server: ApiServer, pipeline: str, name: str | None = None) -> str:
    name = name or unique("app")
    ok(server.client.post(f"/v1/application/{name}", json={
        "fields": {"image": {"type": "object", "pipeline": pipeline}}}))
    return name


def upload(server: ApiServer, app: str, data: bytes) -> int:
    (entity,) = ok(server.client.post(f"/v1/application/{app}/upload",
                                      files={"file": ("photo.jpg", data, "image/jpeg")}))
    return entity["_id"]


def top_hit(server: ApiServer, app: str, data: bytes, topk: int = 3) -> str | None:
    hits = ok(server.client.post(f"/v1/application/{app}/search", data={"topk": str(topk)},
                                 files={"file": ("query.jpg", data, "image/jpeg")}))
    return hits[0]["_id"] if hits else None


def count(server: ApiServer, app: str) -> int:
    return ok(server.client.get(f"/v1/application/{app}/entity/count"))["count"]


def test_replicas_serve_as_one_engine(replicas, encoder_endpoint, distinct_photos):
    a, b = replicas
    # What A creates, B sees and uses.
    encoder = register(a, encoder_endpoint)
    assert ok(b.client.get(f"/v1/operator/{encoder}"))["_endpoint"] == encoder_endpoint
    assert b.client.get(f"/v1/operator/{encoder}/health").text == "healthy"
    pipeline = make_pipeline(a, encoder)
    assert ok(b.client.get(f"/v1/pipeline/{pipeline}"))["_dimension"] == 1280
    app = make_application(a, pipeline)
    assert ok(b.client.get(f"/v1/application/{app}"))["_fields"]["image"]["pipeline"] == pipeline

    # Uploads through both at once: 40 photos through each, four requests in flight.
    targets = [(a if index % 2 == 0 else b, data) for index, data in enumerate(distinct_photos)]
    with ThreadPoolExecutor(4) as threads:
        ids = list(threads.map(lambda target: upload(target[0], app, target[1]), targets))
    assert len(set(ids)) == len(distinct_photos) == 80

    # Counts agree, whichever replica is asked.
    assert count(a, app) == count(b, app) == 80
    assert a.counts() == b.counts()
    assert (a.counts()["entities"], a.counts()["vectors"], a.counts()["objects"]) == (80, 80, 80)

    # Every photo is the top hit when searching with it, through either replica.
    for server in (a, b):
        with ThreadPoolExecutor(4) as threads:
            tops = list(threads.map(lambda data, s=server: top_hit(s, app, data),
                                    distinct_photos))
        assert tops == [str(entity_id) for entity_id in ids], server.url

    # An image stored through B is served through A, and the other way round.
    crossed = ((a, ids[1], distinct_photos[1]), (b, ids[0], distinct_photos[0]))
    for server, entity_id, data in crossed:
        image = server.client.get(f"/v1/application/{app}/entity/{entity_id}/image",
                                  follow_redirects=True)
        assert image.status_code == 200 and image.content == data


def test_application_recreated_on_the_same_pipeline(replicas, encoder_endpoint,
                                                    distinct_photos):
    """B has written to the application's partition; A deletes the application (dropping
    the partition) and makes it again: B's next upload and search still work."""
    a, b = replicas
    pipeline = make_pipeline(a, register(a, encoder_endpoint))
    app = make_application(a, pipeline)
    upload(b, app, distinct_photos[0])
    assert top_hit(b, app, distinct_photos[0]) is not None
    ok(a.client.delete(f"/v1/application/{app}", params={"force": "true"}))
    assert b.client.get(f"/v1/application/{app}").status_code == 404
    assert b.client.post(f"/v1/application/{app}/search", data={"topk": "1"}, files={
        "file": ("q.jpg", distinct_photos[0], "image/jpeg")}).status_code == 404

    make_application(a, pipeline, app)
    assert count(b, app) == 0
    assert ok(b.client.post(f"/v1/application/{app}/search", data={"topk": "1"}, files={
        "file": ("q.jpg", distinct_photos[0], "image/jpeg")})) == []
    entity = upload(b, app, distinct_photos[1])
    assert top_hit(b, app, distinct_photos[1]) == top_hit(a, app, distinct_photos[1]) == str(
        entity)
    assert count(a, app) == count(b, app) == 1


def test_application_deleted_elsewhere_and_recreated_on_another_pipeline(
        replicas, encoder_endpoint, histogram_endpoint, distinct_photos):
    """Create on A, use on B, delete on B, recreate on A over a pipeline of another
    dimension, upload through B: every replica follows."""
    a, b = replicas
    first = make_pipeline(a, register(a, encoder_endpoint))
    second = make_pipeline(a, register(a, histogram_endpoint))
    app = make_application(a, first)
    upload(b, app, distinct_photos[2])
    upload(a, app, distinct_photos[3])
    ok(b.client.delete(f"/v1/application/{app}", params={"force": "true"}))
    assert a.client.get(f"/v1/application/{app}").status_code == 404

    make_application(a, second, app)
    entity = upload(b, app, distinct_photos[4])
    upload(a, app, distinct_photos[5])
    for server in (a, b):
        assert top_hit(server, app, distinct_photos[4]) == str(entity)
        assert count(server, app) == 2
    # The first pipeline lost the application's partition and can be deleted from B.
    ok(b.client.delete(f"/v1/pipeline/{first}"))


def test_pipeline_recreated_with_another_encoder(replicas, encoder_endpoint,
                                                 histogram_endpoint, distinct_photos):
    """B has used pipeline P (1280-d); A deletes P and makes it again with an encoder of
    another dimension (a new collection under the same name): B uploads and searches it."""
    a, b = replicas
    lite0, histogram = register(a, encoder_endpoint), register(a, histogram_endpoint)
    pipeline = make_pipeline(a, lite0)
    app = make_application(a, pipeline)
    upload(b, app, distinct_photos[6])
    assert count(b, app) == 1
    ok(a.client.delete(f"/v1/application/{app}", params={"force": "true"}))
    ok(a.client.delete(f"/v1/pipeline/{pipeline}"))

    make_pipeline(a, histogram, pipeline)
    assert ok(b.client.get(f"/v1/pipeline/{pipeline}"))["_encoder"] == histogram
    make_application(a, pipeline, app)
    entity = upload(b, app, distinct_photos[7])
    for server in (b, a):
        assert top_hit(server, app, distinct_photos[7]) == str(entity)
        assert count(server, app) == 1
    assert b.counts()["vectors"] == a.counts()["vectors"]


def test_names_freed_on_one_replica_are_free_on_the_other(replicas, encoder_endpoint):
    """A name deleted through one replica can be taken again through the other, and a
    duplicate made through the other is refused."""
    a, b = replicas
    encoder = register(a, encoder_endpoint)
    pipeline = make_pipeline(a, encoder)
    app = make_application(a, pipeline)
    clash = b.client.post(f"/v1/application/{app}", json={
        "fields": {"image": {"type": "object", "pipeline": pipeline}}})
    assert clash.status_code == 409 and clash.json()["code"] == "APPLICATION_EXISTS"
    assert b.client.delete(f"/v1/pipeline/{pipeline}").status_code == 409
    ok(b.client.delete(f"/v1/application/{app}"))
    ok(b.client.delete(f"/v1/pipeline/{pipeline}"))
    assert a.client.get(f"/v1/pipeline/{pipeline}").status_code == 404
    make_pipeline(a, encoder, pipeline)
    make_application(b, pipeline, app)
    assert count(a, app) == 0


def test_a_write_through_one_replica_is_soon_searchable_through_the_other(
        replicas, encoder_endpoint, distinct_photos):
    """Searches read with Milvus `Session` consistency: a replica sees its own writes at
    once and another replica's within about one time tick (200 ms on a default server).
    Measured here: within 2 s, for each of ten photos uploaded through A, searched through B."""
    a, b = replicas
    app = make_application(a, make_pipeline(a, register(a, encoder_endpoint)))
    for data in distinct_photos[10:20]:
        entity = str(upload(a, app, data))
        assert top_hit(a, app, data) == entity  # its own write, at once
        deadline = time.monotonic() + 2
        while top_hit(b, app, data) != entity:
            assert time.monotonic() < deadline, "B did not see A's upload within 2 s"
            time.sleep(0.05)
