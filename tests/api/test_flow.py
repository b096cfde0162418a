"""The tutorial's flow over HTTP, on every backend combination that runs here."""

from __future__ import annotations

import secrets

import httpx
import pytest

from backends import ALL_BACKENDS
from photos import PHOTO_NAMES, b64, edited_copy, jpeg, photo


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


@pytest.fixture(scope="module")
def photo_files() -> dict[str, bytes]:
    return {name: jpeg(photo(name)) for name in PHOTO_NAMES}


def ok(answer: httpx.Response) -> dict | list:
    assert answer.status_code == 200, answer.text
    return answer.json()


@pytest.mark.parametrize("backends", ALL_BACKENDS, ids=lambda b: b.id)
def test_tutorial_flow(backends, start_server, encoder_endpoint, photo_files):
    server = start_server(backends)
    api = server.client
    operator, pipeline, app = unique("encoder"), unique("pipe"), unique("app")

    registered = ok(api.post("/v1/operator/regist",
                             json={"endpoint": encoder_endpoint, "name": operator}))
    assert registered == {
        "_name": operator, "_backend": "efficientnet-lite0-encoder", "_type": "encoder",
        "_input": "image", "_output": "vector", "_endpoint": encoder_endpoint,
        "_metric_type": "IP", "_dimension": 1280, "_endpoints": [encoder_endpoint],
        "_replicas": [{"endpoint": encoder_endpoint, "state": "unknown"}],  # never called yet
        "_labels": "imagenet-1k",  # the vocabulary of the labels it gives (issue 17)
    }
    assert api.get(f"/v1/operator/{operator}/health").text == "healthy"
    assert ok(api.get(f"/v1/operator/{operator}"))["_replicas"] == [
        {"endpoint": encoder_endpoint, "state": "up"}]
    created = ok(api.post(f"/v1/pipeline/{pipeline}", json={
        "input": "image", "description": "tutorial", "processors": "", "encoder": operator,
        "indexFileSize": 1024}))
    assert created["_dimension"] == 1280 and created["_processors"] == []
    assert created["_encoder"] == operator and created["_metric_type"] == "IP"
    application = ok(api.post(f"/v1/application/{app}", json={
        "fields": {"photo": {"type": "object", "pipeline": pipeline}},
        "s3Buckets": f"bucket-{app}"}))
    assert application["_fields"] == {"photo": {"type": "object", "pipeline": pipeline}}

    # 20 photos: the original's JSON upload, a multipart file, and the batch form.
    names = list(photo_files)
    ids: dict[str, int] = {}
    for name in names[:10]:
        (entity,) = ok(api.post(f"/v1/application/{app}/upload",
                                json={"fields": {"photo": {"data": b64(photo_files[name])}}}))
        assert entity["_app_name"] == app and isinstance(entity["_id"], int)
        ids[name] = entity["_id"]
    for name in names[10:12]:
        (entity,) = ok(api.post(f"/v1/application/{app}/upload",
                                files={"file": (f"{name}.jpg", photo_files[name], "image/jpeg")}))
        ids[name] = entity["_id"]
    batch = ok(api.post(f"/v1/application/{app}/upload/batch", json={
        "images": [{"data": b64(photo_files[name])} for name in names[12:]]}))
    assert batch["imported"] == 8 and batch["failed"] == 0
    for name, result in zip(names[12:], batch["results"], strict=True):
        ids[name] = result["entity"]["_id"]
    assert ok(api.get(f"/v1/application/{app}/entity/count")) == {"count": 20}
    assert server.counts()["vectors"] == 20 and server.counts()["objects"] == 20

    # Search with an edited copy of each of several photos: that photo comes first.
    for name in ("chelsea", "rocket", "coins", "clock"):
        hits = ok(api.post(f"/v1/application/{app}/search", json={
            "fields": {"photo": {"data": b64(edited_copy(photo(name)))}}, "topk": 5}))
        assert len(hits) == 5
        assert hits[0]["_id"] == str(ids[name]), f"{name}: {[h['_id'] for h in hits]}"
        scores = [hit["score"] for hit in hits]
        assert scores == sorted(scores, reverse=True) and scores[0] > scores[1]
    # The hit's image URL (relative: no PHANTOSCOPE_PUBLIC_URL) opens under the server's
    # address, and gives back the stored bytes.
    image = api.get(hits[0]["_image_url"], follow_redirects=True, timeout=30)
    assert image.status_code == 200 and image.content == photo_files["clock"]

    # Multipart search answers the same.
    hits = ok(api.post(f"/v1/application/{app}/search", data={"topk": "3"},
                       files={"file": ("q.jpg", edited_copy(photo("moon")), "image/jpeg")}))
    assert hits[0]["_id"] == str(ids["moon"])

    # Entities: pages, one, delete.
    page = ok(api.get(f"/v1/application/{app}/entity", params={"num": 8, "page": 2}))
    assert len(page) == 4
    one = ok(api.get(f"/v1/application/{app}/entity/{ids['coins']}"))
    assert one["_id"] == ids["coins"] and one["size"] == len(photo_files["coins"])
    ok(api.delete(f"/v1/application/{app}/entity/{ids['coins']}"))
    assert ok(api.get(f"/v1/application/{app}/entity/count")) == {"count": 19}
    hits = ok(api.post(f"/v1/application/{app}/search", json={
        "fields": {"photo": {"data": b64(edited_copy(photo("coins")))}}, "topk": 19}))
    assert str(ids["coins"]) not in [hit["_id"] for hit in hits]
    counts = server.counts()
    assert (counts["entities"], counts["vectors"], counts["objects"]) == (19, 19, 19)

    # Deleting in-use things is refused; force removes an application with everything.
    assert api.delete(f"/v1/pipeline/{pipeline}").status_code == 409
    assert api.delete(f"/v1/operator/{operator}").status_code == 409
    refused = api.delete(f"/v1/application/{app}")
    assert refused.status_code == 409 and refused.json()["code"] == "APPLICATION_NOT_EMPTY"
    ok(api.delete(f"/v1/application/{app}", params={"force": "true"}))
    counts = server.counts()
    assert (counts["entities"], counts["vectors"], counts["objects"]) == (0, 0, 0)
    ok(api.delete(f"/v1/pipeline/{pipeline}"))
    ok(api.delete(f"/v1/operator/{operator}"))
    assert server.counts() == {key: 0 for key in counts}
