"""Image links never come from the request's Host header; `topk` is refused alike in JSON and
forms; path and query values outside their type's range get a 4xx with a code, never a 5xx."""

from __future__ import annotations

import pytest

from api_server import ApiServer
from photos import b64, jpeg, photo

IMAGE = jpeg(photo("chelsea"))
EVIL = {"Host": "evil.example"}
TOPK_MESSAGE = "topk must be an integer from 1 to 1000"


def set_up(server: ApiServer, encoder: str) -> int:
    """Operator, pipeline and application `app` on ``server``, holding one image; its id."""
    api = server.client
    assert api.post("/v1/operator/regist", json={"endpoint": encoder, "name": "enc"}
                    ).status_code == 200
    assert api.post("/v1/pipeline/pipe", json={"encoder": "enc"}).status_code == 200
    assert api.post("/v1/application/app", json={
        "fields": {"image": {"type": "object", "pipeline": "pipe"}}}).status_code == 200
    answer = api.post("/v1/application/app/upload",
                      json={"fields": {"image": {"data": b64(IMAGE)}}})
    assert answer.status_code == 200, answer.text
    return answer.json()[0]["_id"]


@pytest.fixture(scope="module")
def world(tmp_path_factory, encoder_endpoint) -> tuple[ApiServer, int]:
    server = ApiServer(tmp_path_factory.mktemp("links"), {}).start()
    try:
        yield server, set_up(server, encoder_endpoint)
    finally:
        server.stop()


def links(server: ApiServer, entity_id: int, headers: dict[str, str]) -> list[str]:
    """The image links of every kind of answer that carries one."""
    api = server.client
    upload = api.post("/v1/application/app/upload", headers=headers,
                      json={"fields": {"image": {"data": b64(jpeg(photo("rocket")))}}})
    batch = api.post("/v1/application/app/upload/batch", headers=headers,
                     files=[("files", ("coins.jpg", jpeg(photo("coins")), "image/jpeg"))])
    search = api.post("/v1/application/app/search", headers=headers,
                      json={"fields": {"image": {"data": b64(IMAGE)}}, "topk": 3})
    listed = api.get("/v1/application/app/entity", headers=headers)
    one = api.get(f"/v1/application/app/entity/{entity_id}", headers=headers)
    for answer in (upload, batch, search, listed, one):
        assert answer.status_code == 200, answer.text
    return [
        upload.json()[0]["_image_url"],
        batch.json()["results"][0]["entity"]["_image_url"],
        *(hit["_image_url"] for hit in search.json()),
        *(entity["_image_url"] for entity in listed.json()),
        one.json()["_image_url"],
    ]


def test_links_ignore_the_host_header_and_are_relative_by_default(world):
    server, entity_id = world
    found = links(server, entity_id, EVIL)
    assert all(link.startswith("/v1/application/app/entity/") for link in found), found
    assert f"/v1/application/app/entity/{entity_id}/image" in found
    image = server.client.get(f"/v1/application/app/entity/{entity_id}/image")
    assert image.status_code == 200 and image.content == IMAGE


def test_links_are_under_the_configured_public_url(start_server, encoder_endpoint):
    server = start_server(public_url="https://images.example/")
    entity_id = set_up(server, encoder_endpoint)
    found = links(server, entity_id, EVIL)
    assert all(link.startswith("https://images.example/v1/application/app/entity/")
               for link in found), found


@pytest.mark.parametrize("request_kwargs", [
    {"json": {"fields": {"image": {"data": b64(IMAGE)}}, "topk": "abc"}},
    {"json": {"fields": {"image": {"data": b64(IMAGE)}}, "topk": 1.5}},
    {"json": {"fields": {"image": {"data": b64(IMAGE)}}, "topk": -1}},
    {"json": {"fields": {"image": {"data": b64(IMAGE)}}, "topk": 1001}},
    {"data": {"topk": "-1"}, "files": {"file": ("q.jpg", IMAGE, "image/jpeg")}},
    {"data": {"topk": "abc"}, "files": {"file": ("q.jpg", IMAGE, "image/jpeg")}},
    {"data": {"topk": "²"}, "files": {"file": ("q.jpg", IMAGE, "image/jpeg")}},
    {"data": {"topk": "1001"}, "files": {"file": ("q.jpg", IMAGE, "image/jpeg")}},
], ids=["json text", "json fraction", "json negative", "json over", "form negative",
        "form text", "form superscript digit", "form over"])
def test_every_bad_topk_gets_one_answer_stating_the_range(world, request_kwargs):
    server, _ = world
    answer = server.client.post("/v1/application/app/search", **request_kwargs)
    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] == "INVALID_TOPK"
    assert answer.json()["message"] == TOPK_MESSAGE


def test_the_topk_range_is_documented(world):
    server, _ = world
    search = server.client.get("/openapi.json").json()["paths"][
        "/v1/application/{name}/search"]["post"]
    assert "1 to 1000" in search["description"]
    form = search["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert (form["properties"]["topk"]["minimum"], form["properties"]["topk"]["maximum"]) == (
        1, 1000)


OUT_OF_RANGE_IDS = ["-1", "0", str(2**63), str(2**64 + 5), "9" * 40]


@pytest.mark.parametrize(("method", "suffix"), [("GET", ""), ("DELETE", ""), ("GET", "/image")])
@pytest.mark.parametrize("entity_id", OUT_OF_RANGE_IDS)
def test_entity_ids_out_of_range_are_not_found(world, method, entity_id, suffix):
    server, _ = world
    answer = server.client.request(method, f"/v1/application/app/entity/{entity_id}{suffix}")
    assert answer.status_code == 404, answer.text
    assert answer.json()["code"] == "ENTITY_NOT_FOUND"


@pytest.mark.parametrize("query", [
    "page=-1", "num=-5", "num=0", "num=1001", f"num=10&page={2**62}", f"page={2**63}",
    "page=" + "9" * 40, "num=" + "9" * 40, f"num=1000&page={2**63 // 1000 + 1}",
])
def test_pages_out_of_range_are_refused(world, query):
    server, _ = world
    answer = server.client.get(f"/v1/application/app/entity?{query}")
    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] == "INVALID_PAGE"


def test_the_last_page_the_database_can_reach_is_empty(world):
    server, _ = world
    answer = server.client.get(f"/v1/application/app/entity?num=1&page={2**63 - 1}")
    assert answer.status_code == 200 and answer.json() == []


ODD_NAMES = ["a%00b", "a%20b", "%C3%A4pp", "a.b", "..", "1app", "x" * 65, "a%2Fb", "%F0%9F%98%80"]


@pytest.mark.parametrize("path", [
    "/v1/application/{}", "/v1/application/{}/entity", "/v1/application/{}/entity/count",
    "/v1/application/{}/entity/1", "/v1/application/{}/entity/1/image", "/v1/pipeline/{}",
    "/v1/operator/{}", "/v1/operator/{}/health",
])
@pytest.mark.parametrize("name", ODD_NAMES)
def test_odd_names_get_a_4xx_with_a_code(world, path, name):
    server, _ = world
    answer = server.client.get(path.format(name))
    assert 400 <= answer.status_code < 500, answer.text
    assert answer.json()["code"] in {"INVALID_NAME", "NOT_FOUND"}
