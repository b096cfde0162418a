"""Entities know their name, attributes and EXIF, and search and listing filter on them
(issue 16), over HTTP against a real server.

Uploads in every form (JSON, multipart, batch JSON, batch multipart, by URL) carry a name and
attributes; EXIF comes from real JPEG headers. Filtered searches ask for more hits than the
application holds, so each must answer exactly the entities ``engine.filters.matches``
selects from the answered entities; a filtered listing answers the same, in id order.
Every key the original answered stays, with new keys only beside it.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

from api_server import ApiServer
from backends import DEFAULT_BACKENDS, Backends, backend_env, drop_database
from phantoscope.engine.filters import matches, parse_filter
from photos import b64, edited_copy, jpeg, photo

APP = "shop"
ORIGINAL_ENTITY_KEYS = {"_id", "_app_name", "_image_url", "_fields", "field", "content_type",
                        "size", "sha256", "created_at", "vectors"}
ORIGINAL_HIT_KEYS = ORIGINAL_ENTITY_KEYS | {"distance", "score", "box", "matches"}
NEW_KEYS = {"name", "attributes", "exif", "labels"}  # labels: issue 17
UPLOAD_KEYS = {"duplicate_of"}  # single uploads' answers: the stored entity copied (issue 18)
BREAK_OUT = 'shoes" or 1==1 or "'  # stored as an attribute value: matched as text only


def exif_jpeg(name: str, taken: str, offset: str | None = None, orientation: int = 1,
              camera: tuple[str, str] | None = None,
              gps: tuple[str, tuple, str, tuple] | None = None) -> bytes:
    """A JPEG of the sample photo ``name`` whose EXIF says when, with what and where."""
    exif = Image.Exif()
    if camera:
        exif[0x010F], exif[0x0110] = camera
    exif[0x0112] = orientation
    details = exif.get_ifd(0x8769)
    details[0x9003] = taken
    if offset:
        details[0x9011] = offset
    if gps:
        place = exif.get_ifd(0x8825)
        place[1], place[2], place[3], place[4] = gps
    buffer = io.BytesIO()
    photo(name).convert("RGB").save(buffer, format="JPEG", quality=90, exif=exif)
    return buffer.getvalue()


BEACH = exif_jpeg("coffee", "2024:05:01 12:30:00", "+02:00", orientation=6,
                  camera=("Canon", "Canon EOS 5D"),
                  gps=("S", (52.0, 31.0, 12.0), "W", (13.0, 24.0, 0.0)))
NEW_YEAR = exif_jpeg("rocket", "2023:12:31 23:00:00", camera=("NIKON", "D750"))
SPRING = exif_jpeg("chelsea", "2024:03:10 08:00:00", "-05:00", camera=("Canon", "Canon EOS R"))


@pytest.fixture(scope="module")
def photo_server(tmp_path_factory) -> Iterator[str]:
    """A loopback HTTP server of one photo under a percent-encoded name."""
    root = tmp_path_factory.mktemp("served")
    (root / "photos").mkdir()
    (root / "photos" / "café au lait.jpg").write_bytes(jpeg(photo("astronaut")))
    server = ThreadingHTTPServer(("127.0.0.1", 0),
                                 partial(SimpleHTTPRequestHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join()


BACKENDS = [DEFAULT_BACKENDS, Backends("server", "mariadb", "folder"),
            Backends("lite", "postgres", "folder")]


@pytest.fixture(scope="module", params=BACKENDS, ids=lambda backends: backends.id)
def world(request, tmp_path_factory, photo_server) -> Iterator[tuple[ApiServer, dict]]:
    """A server with an application of 12 entities uploaded every way, and what each
    upload answered, by label."""
    encoder = request.getfixturevalue("encoder_endpoint")
    databases: list[str] = []
    env = backend_env(request, request.param, databases)
    env["PHANTOSCOPE_ALLOW_PRIVATE_URLS"] = "true"
    server = ApiServer(tmp_path_factory.mktemp("metadata"), env).start()
    api = server.client
    assert api.post("/v1/operator/regist", json={"endpoint": encoder, "name": "enc"}
                    ).status_code == 200
    assert api.post("/v1/pipeline/pipe", json={"encoder": "enc"}).status_code == 200
    assert api.post(f"/v1/application/{APP}", json={
        "fields": {"image": {"type": "object", "pipeline": "pipe"}}}).status_code == 200
    try:
        yield server, _upload_everything(api, photo_server)
    finally:
        assert api.delete(f"/v1/application/{APP}", params={"force": "true"}).status_code == 200
        assert api.delete("/v1/pipeline/pipe").status_code == 200
        server.stop()
        for url in databases:
            drop_database(url)


def _ok(answer):
    assert answer.status_code == 200, answer.text
    return answer.json()


def _upload_everything(api, photo_server: str) -> dict[str, dict]:
    uploaded: dict[str, dict] = {}
    path = f"/v1/application/{APP}/upload"
    (uploaded["beach"],) = _ok(api.post(path, json={
        "fields": {"image": {"data": b64(BEACH)}}, "name": "holidays/beach.jpg",
        "attributes": {"category": "shoes", "price": 10, "tags": ["red", "blue"]}}))
    (uploaded["plain"],) = _ok(api.post(path, json={
        "fields": {"image": {"data": b64(jpeg(photo("coins")))}},
        "attributes": {"category": "hats", "price": 25.5, "sale": True}}))
    (uploaded["new_year"],) = _ok(api.post(path, data={
        "attributes": '{"category": "shoes", "price": 99, "tags": ["blue"]}'},
        files={"file": ("boots.jpg", NEW_YEAR, "image/jpeg")}))
    (uploaded["spring"],) = _ok(api.post(path, data={"name": "holidays/spring.jpg"},
                                         files={"file": ("ignored.jpg", SPRING, "image/jpeg")}))
    (uploaded["by_url"],) = _ok(api.post(path, json={
        "fields": {"image": {"url": f"{photo_server}/photos/caf%C3%A9%20au%20lait.jpg"}},
        "attributes": {"category": "hats"}}))
    (uploaded["break_out"],) = _ok(api.post(path, json={
        "fields": {"image": {"data": b64(jpeg(photo("clock")))}}, "name": 'quote"d\\name',
        "attributes": {"category": BREAK_OUT}}))
    batch = _ok(api.post(f"/v1/application/{APP}/upload/batch", json={"images": [
        {"data": b64(jpeg(photo("moon"))), "name": "shop/moon.jpg",
         "attributes": {"category": "shoes", "price": 5}},
        {"data": b64(jpeg(photo("horse"))), "name": "shop/horse.jpg",
         "attributes": {"category": "bags", "tags": ["red"]}},
        {"data": b64(jpeg(photo("camera")))},
    ]}))
    assert batch["imported"] == 3
    for label, result in zip(("moon", "horse", "camera"), batch["results"], strict=True):
        uploaded[label] = result["entity"]
    batch = _ok(api.post(f"/v1/application/{APP}/upload/batch",
                         data={"attributes": '{"batch": true, "category": "hats"}'},
                         files=[("files", ("a/brick.jpg", jpeg(photo("brick")), "image/jpeg")),
                                ("files", ("grass.jpg", jpeg(photo("grass")), "image/jpeg"))]))
    assert batch["imported"] == 2
    for label, result in zip(("brick", "grass"), batch["results"], strict=True):
        uploaded[label] = result["entity"]
    return uploaded


def _listed(api) -> list[dict]:
    return _ok(api.get(f"/v1/application/{APP}/entity", params={"num": 1000}))


def test_uploads_keep_names_attributes_and_exif(world):
    server, uploaded = world
    names = {label: entity["name"] for label, entity in uploaded.items()}
    assert names == {
        "beach": "holidays/beach.jpg", "plain": None, "new_year": "boots.jpg",
        "spring": "holidays/spring.jpg", "by_url": "café au lait.jpg",
        "break_out": 'quote"d\\name', "moon": "shop/moon.jpg", "horse": "shop/horse.jpg",
        "camera": None, "brick": "a/brick.jpg", "grass": "grass.jpg"}
    assert uploaded["beach"]["attributes"] == {"category": "shoes", "price": 10,
                                               "tags": ["red", "blue"]}
    assert uploaded["plain"]["attributes"] == {"category": "hats", "price": 25.5, "sale": True}
    assert uploaded["camera"]["attributes"] == {}
    assert uploaded["grass"]["attributes"] == {"batch": True, "category": "hats"}
    width, height = photo("coffee").size
    assert uploaded["beach"]["exif"] == {
        "taken_at": "2024-05-01T12:30:00+02:00", "camera": "Canon EOS 5D",
        "gps": {"lat": -52.52, "lon": -13.4},
        "width": height, "height": width}  # orientation 6: shown turned a quarter
    assert uploaded["new_year"]["exif"]["taken_at"] == "2023-12-31T23:00:00+00:00"
    assert uploaded["new_year"]["exif"]["camera"] == "NIKON D750"
    assert uploaded["plain"]["exif"] == dict(zip(("width", "height"), photo("coins").size,
                                                 strict=True))
    # what was answered at upload is what the entity says later, and listing says
    listed = {entity["_id"]: entity for entity in _listed(server.client)}
    for entity in uploaded.values():
        again = _ok(server.client.get(f"/v1/application/{APP}/entity/{entity['_id']}"))
        for key in NEW_KEYS:
            assert again[key] == entity[key] == listed[entity["_id"]][key], key


def test_answers_keep_every_original_key_and_add_only_the_new_ones(world):
    server, uploaded = world
    for entity in uploaded.values():
        assert set(entity) - NEW_KEYS - UPLOAD_KEYS in (ORIGINAL_ENTITY_KEYS,
                                                        ORIGINAL_ENTITY_KEYS | {"box"})
        assert set(entity) >= NEW_KEYS
        assert isinstance(entity["_id"], int) and entity["_app_name"] == APP
    for entity in _listed(server.client):
        assert set(entity) == ORIGINAL_ENTITY_KEYS | NEW_KEYS
    hits = _search(server.client, None, topk=3)
    assert [set(hit) for hit in hits] == [ORIGINAL_HIT_KEYS | NEW_KEYS] * 3
    assert all(isinstance(hit["_id"], str) for hit in hits)


def _search(api, filter: object, topk: int = 50, query: str = "coffee") -> list[dict]:
    body: dict = {"fields": {"image": {"data": b64(edited_copy(photo(query)))}}, "topk": topk}
    if filter is not None:
        body["filter"] = filter
    return _ok(api.post(f"/v1/application/{APP}/search", json=body))


def _record(entity: dict) -> dict:
    exif = entity["exif"]
    return {"name": entity["name"], "attributes": entity["attributes"],
            "taken_at": exif.get("taken_at"), "camera": exif.get("camera"),
            "width": exif.get("width"), "height": exif.get("height")}


FILTERS = [
    {"attributes.category": "shoes"},
    {"attributes.category": {"in": ["hats", "bags"]}},
    {"attributes.tags": "red"},
    {"attributes.tags": {"in": ["blue", "green"]}},
    {"attributes.price": {"gte": 10, "lt": 99}},
    {"attributes.sale": True},
    {"taken_at": {"gte": "2024-01-01", "lt": "2025-01-01"}},
    {"taken_at": {"lt": "2024-01-01T00:30:00+01:00"}},  # 23:30 UTC: the new year photo
    {"taken_at": {"exists": True}, "camera": {"prefix": "Canon"}},
    {"name": {"prefix": "holidays/"}},
    {"name": {"prefix": "shop/"}, "attributes.category": "shoes"},
    {"name": {"exists": False}},
    {"name": {"exists": True}, "not": {"name": {"prefix": "holidays/"}}},
    {"or": [{"attributes.category": "bags"}, {"taken_at": {"lt": "2024-04-01"}}]},
    {"not": {"attributes.category": "shoes"}},
    {"attributes.category": {"ne": "hats"}, "attributes.batch": {"exists": False}},
    {"width": {"gt": 400}, "height": {"lte": 1000}},
    {"attributes.category": BREAK_OUT},
    {"name": 'quote"d\\name'},
]


@pytest.mark.parametrize("value", FILTERS, ids=[str(f) for f in FILTERS])
def test_filtered_search_and_listing_select_exactly_what_matches_selects(world, value):
    server, _ = world
    everything = _listed(server.client)
    parsed = parse_filter(value)
    wanted = [entity["_id"] for entity in everything if matches(parsed, _record(entity))]
    assert wanted, "each filter selects some entity"
    assert len(wanted) < len(everything), "and leaves some out"
    hits = _search(server.client, value)
    assert sorted(int(hit["_id"]) for hit in hits) == sorted(wanted)
    scores = [hit["score"] for hit in hits]
    assert scores == sorted(scores, reverse=True)
    listed = _ok(server.client.get(f"/v1/application/{APP}/entity",
                                   params={"num": 1000, "filter": _json(value)}))
    assert [entity["_id"] for entity in listed] == wanted
    # pages of two give the same, in order
    pages = [_ok(server.client.get(f"/v1/application/{APP}/entity",
                                   params={"num": 2, "page": page, "filter": _json(value)}))
             for page in range(len(wanted) // 2 + 1)]
    assert [entity["_id"] for page in pages for entity in page] == wanted


def _json(value: object) -> str:
    return json.dumps(value)


def test_a_filtered_search_takes_the_nearest_among_the_selected(world):
    server, uploaded = world
    shoes = {"attributes.category": "shoes"}
    [best] = _search(server.client, shoes, topk=1, query="moon")
    assert int(best["_id"]) == uploaded["moon"]["_id"]
    [best] = _search(server.client, {"attributes.category": "hats"}, topk=1, query="moon")
    assert best["attributes"]["category"] == "hats"
    # the multipart form takes the filter as JSON text
    hits = _ok(server.client.post(
        f"/v1/application/{APP}/search", data={"topk": "50", "filter": _json(shoes)},
        files={"file": ("q.jpg", edited_copy(photo("moon")), "image/jpeg")}))
    assert {hit["attributes"]["category"] for hit in hits} == {"shoes"} and len(hits) == 3
    # {} is no filter
    assert len(_search(server.client, {})) == len(_listed(server.client))


def test_break_out_attempts_match_only_as_text(world):
    server, uploaded = world
    for attempt in ['shoes" or 1==1 or "', 'x" || "1"=="1', 'x\\" or true or \\"',
                    "shoes' or 1==1 or '", '") or (id > 0', "x\n or 1==1"]:
        hits = _search(server.client, {"attributes.category": attempt})
        wanted = [uploaded["break_out"]["_id"]] if attempt == BREAK_OUT else []
        assert [int(hit["_id"]) for hit in hits] == wanted, attempt
        hits = _search(server.client, {"name": {"prefix": attempt}})
        assert hits == [], attempt


def test_patch_changes_name_and_attributes_and_what_filters_find(world):
    server, uploaded = world
    api = server.client
    entity = uploaded["camera"]
    path = f"/v1/application/{APP}/entity/{entity['_id']}"
    before = _ok(api.get(path))
    patched = _ok(api.patch(path, json={"name": "shop/camera.jpg",
                                        "attributes": {"category": "lenses", "price": 7}}))
    assert (patched["name"], patched["attributes"]) == ("shop/camera.jpg",
                                                         {"category": "lenses", "price": 7})
    assert {key: patched[key] for key in ORIGINAL_ENTITY_KEYS | {"exif"}} == \
        {key: before[key] for key in ORIGINAL_ENTITY_KEYS | {"exif"}}
    assert _ok(api.get(path)) == patched
    [hit] = _search(api, {"attributes.category": "lenses"})
    assert int(hit["_id"]) == entity["_id"] and hit["name"] == "shop/camera.jpg"
    assert entity["_id"] in [e["_id"] for e in _ok(api.get(
        f"/v1/application/{APP}/entity", params={"filter": _json({"name": {"prefix": "shop/c"}})}))]
    # attributes are replaced wholly; the name alone can change, or go
    renamed = _ok(api.patch(path, json={"attributes": {"colour": "black"}}))
    assert (renamed["name"], renamed["attributes"]) == ("shop/camera.jpg", {"colour": "black"})
    assert _search(api, {"attributes.category": "lenses"}) == []
    cleared = _ok(api.patch(path, json={"name": None, "attributes": {}}))
    assert (cleared["name"], cleared["attributes"]) == (None, {})
    assert int(_search(api, {"name": {"exists": False}, "attributes.category": {
        "exists": False}})[0]["_id"]) == entity["_id"]
    assert _ok(api.patch(path, json={})) == cleared
    missing = api.patch(f"/v1/application/{APP}/entity/123", json={"name": "x"})
    assert missing.status_code == 404 and missing.json()["code"] == "ENTITY_NOT_FOUND"


def test_default_names_that_break_the_rule_are_dropped(world, photo_server: str):
    server, _ = world
    api = server.client
    long_name = "x" * 1100 + ".jpg"
    (entity,) = _ok(api.post(f"/v1/application/{APP}/upload",
                             files={"file": (long_name, jpeg(photo("text")), "image/jpeg")}))
    try:
        assert entity["name"] is None
    finally:
        _ok(api.delete(f"/v1/application/{APP}/entity/{entity['_id']}"))


@pytest.mark.parametrize(("body", "code"), [
    ({"attributes": {"k": None}}, "INVALID_ATTRIBUTES"),
    ({"attributes": {"bad key": 1}}, "INVALID_ATTRIBUTES"),
    ({"attributes": {"big": "x" * 70_000}}, "INVALID_ATTRIBUTES"),
    ({"attributes": None}, "INVALID_ATTRIBUTES"),
    ({"name": "ok", "attributes": "category=x"}, "INVALID_ATTRIBUTES"),
    ({"name": "a\x07b", "attributes": {"k": 1}}, "INVALID_REQUEST"),
    ({"name": ["a"]}, "INVALID_REQUEST"),
    ({"name": "n" * 1025}, "INVALID_REQUEST"),
    ([{"name": "x"}], "INVALID_REQUEST"),
])
def test_a_bad_patch_changes_nothing(world, body, code):
    server, uploaded = world
    entity = uploaded["horse"]
    path = f"/v1/application/{APP}/entity/{entity['_id']}"
    before = _ok(server.client.get(path))
    answer = server.client.patch(path, json=body)
    assert answer.status_code == 400 and answer.json()["code"] == code, answer.text
    assert _ok(server.client.get(path)) == before
    hits = _search(server.client, {"attributes.category": "bags"})
    assert [int(hit["_id"]) for hit in hits] == [entity["_id"]]
