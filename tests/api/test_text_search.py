"""Search by words through image labels (issue 17, tier 1), over HTTP against a real server
with the default encoder (real ImageNet weights) on Lite+SQLite+folder and Lite+PostgreSQL.

Real photos are uploaded; their labels come back on every entity answer and hit; words find
them through WordNet ("cat" the cat, "coffee"/"drink" the espresso, "vehicle" the
motorcycle); filters narrow the hits, labels among them (listing, image and text search);
every bad input answers its 4xx and changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from api_server import ApiServer
from backends import DEFAULT_BACKENDS, Backends, backend_env, drop_database
from photos import b64, jpeg, photo

APP = "album"
SEARCH = f"/v1/application/{APP}/search"
PHOTOS = {  # name -> attributes
    "chelsea": {"kind": "pet"},
    "coffee": {"kind": "food"},
    "stereo_motorcycle": {"kind": "vehicle"},
    "rocket": {"kind": "vehicle"},
    "astronaut": {"kind": "person"},
}
ORIGINAL_HIT_KEYS = {"_id", "_app_name", "_image_url", "_fields", "field", "content_type",
                     "size", "sha256", "created_at", "vectors", "distance", "score", "box",
                     "matches"}
BACKENDS = [DEFAULT_BACKENDS, Backends("lite", "postgres", "folder")]


def _ok(answer):
    assert answer.status_code == 200, answer.text
    return answer.json()


@pytest.fixture(scope="module", params=BACKENDS, ids=lambda backends: backends.id)
def world(request, tmp_path_factory) -> Iterator[tuple[ApiServer, dict[str, dict]]]:
    """A server with the photos uploaded to an application on the default encoder, an
    application with two labelled fields, and one on a processor pipeline (no labels)."""
    encoder = request.getfixturevalue("encoder_endpoint")
    detector, _ = request.getfixturevalue("face_endpoints")
    databases: list[str] = []
    server = ApiServer(tmp_path_factory.mktemp("text"),
                       backend_env(request, request.param, databases)).start()
    api = server.client
    for name, endpoint in (("enc", encoder), ("faces", detector)):
        _ok(api.post("/v1/operator/regist", json={"endpoint": endpoint, "name": name}))
    _ok(api.post("/v1/pipeline/pipe", json={"encoder": "enc"}))
    _ok(api.post("/v1/pipeline/crops", json={"encoder": "enc", "processors": "faces"}))
    _ok(api.post(f"/v1/application/{APP}", json={
        "fields": {"image": {"type": "object", "pipeline": "pipe"},
                   "note": {"type": "string", "value": "x"}}}))
    _ok(api.post("/v1/application/two", json={
        "fields": {"front": {"type": "object", "pipeline": "pipe"},
                   "back": {"type": "object", "pipeline": "pipe"}}}))
    _ok(api.post("/v1/application/mixed", json={
        "fields": {"face": {"type": "object", "pipeline": "crops"},
                   "whole": {"type": "object", "pipeline": "pipe"}}}))
    _ok(api.post("/v1/application/cropped", json={
        "fields": {"face": {"type": "object", "pipeline": "crops"}}}))
    uploaded = {}
    for name, attributes in PHOTOS.items():
        (uploaded[name],) = _ok(api.post(f"/v1/application/{APP}/upload", json={
            "fields": {"image": {"data": b64(jpeg(photo(name)))}}, "name": name,
            "attributes": attributes}))
    try:
        yield server, uploaded
    finally:
        for app in (APP, "two", "mixed", "cropped"):
            _ok(api.delete(f"/v1/application/{app}", params={"force": "true"}))
        for pipeline in ("pipe", "crops"):
            _ok(api.delete(f"/v1/pipeline/{pipeline}"))
        server.stop()
        for url in databases:
            drop_database(url)


def _text(server: ApiServer, text: str, **keys) -> dict:
    return _ok(server.client.post(SEARCH, json={"text": text, **keys}))


def _names(answer: dict) -> list[str]:
    return [hit["name"] for hit in answer["hits"]]


def test_uploads_answer_their_labels_and_entities_keep_them(world):
    server, uploaded = world
    for name, entity in uploaded.items():
        labels = entity["labels"]
        assert 1 <= len(labels) <= 5, (name, labels)
        assert all(set(label) == {"id", "name", "score"} for label in labels)
        assert all(label["id"].startswith("n") and label["name"] for label in labels)
        scores = [label["score"] for label in labels]
        assert scores == sorted(scores, reverse=True) and 0 <= scores[-1] <= scores[0] <= 1
        stored = _ok(server.client.get(f"/v1/application/{APP}/entity/{entity['_id']}"))
        assert stored["labels"] == labels
    listed = _ok(server.client.get(f"/v1/application/{APP}/entity", params={"num": 10}))
    assert {entity["name"]: entity["labels"] for entity in listed} == \
        {name: entity["labels"] for name, entity in uploaded.items()}
    assert any("cat" in label["name"] for label in uploaded["chelsea"]["labels"])
    operator = _ok(server.client.get("/v1/operator/enc"))
    assert operator["_labels"] == "imagenet-1k"
    assert _ok(server.client.get("/v1/operator/faces"))["_labels"] == ""


@pytest.mark.parametrize(("text", "first"), [
    ("cat", "chelsea"), ("a cat", "chelsea"), ("Cats", "chelsea"), ("animal", "chelsea"),
    ("coffee", "coffee"), ("drink", "coffee"), ("a cup of espresso", "coffee"),
    ("vehicle", "stereo_motorcycle"),
])
def test_words_find_the_photo_they_name_first(world, text, first):
    server, uploaded = world
    answer = _text(server, text, topk=5)
    assert _names(answer)[0] == first, answer
    hits = answer["hits"]
    scores = [hit["score"] for hit in hits]
    assert scores == sorted(scores, reverse=True) and all(0 < s <= 1 for s in scores)
    for hit in hits:
        assert ORIGINAL_HIT_KEYS | {"name", "attributes", "exif", "labels"} <= set(hit)
        assert hit["distance"] == pytest.approx(1 - hit["score"])
        assert hit["labels"] == uploaded[hit["name"]]["labels"]
        assert hit["_id"] == str(uploaded[hit["name"]]["_id"])
    assert answer["terms"] and not answer["unmatched"]


def test_multipart_text_answers_as_json_does(world):
    server, _ = world
    form = _ok(server.client.post(SEARCH, data={"text": "vehicle", "topk": "2"}))
    assert form == _text(server, "vehicle", topk=2)
    assert len(form["hits"]) <= 2


def test_topk_and_filters_narrow_text_hits(world):
    server, _ = world
    assert len(_text(server, "animal", topk=1)["hits"]) == 1
    vehicles = _text(server, "vehicle", topk=5, filter={"attributes.kind": "vehicle"})
    assert vehicles["hits"] and all(hit["attributes"]["kind"] == "vehicle"
                                    for hit in vehicles["hits"])
    assert _names(vehicles)[0] == "stereo_motorcycle"
    rockets = _text(server, "vehicle", topk=5, filter={"name": {"prefix": "rock"}})
    assert set(_names(rockets)) <= {"rocket"}
    foods = _text(server, "animal", filter={"attributes.kind": "food"})["hits"]
    assert all(hit["attributes"]["kind"] == "food" for hit in foods)
    form = _ok(server.client.post(SEARCH, data={
        "text": "vehicle", "filter": '{"attributes.kind": "person"}'}))
    assert all(hit["name"] == "astronaut" for hit in form["hits"])


def _listed(server: ApiServer, filter: dict, app: str = APP) -> set[str]:
    return {entity["name"] for entity in _ok(server.client.get(
        f"/v1/application/{app}/entity", params={"num": 100, "filter": json.dumps(filter)}))}


def test_labels_filter_listings_and_searches(world):
    server, uploaded = world
    everything = set(PHOTOS)
    assert _listed(server, {"labels": "cat"}) == {"chelsea"}
    assert _listed(server, {"labels": "animal"}) == {"chelsea"}
    assert _listed(server, {"labels": "drink"}) == {"coffee"}
    vehicles = _listed(server, {"labels": "vehicle"})
    assert "stereo_motorcycle" in vehicles and not vehicles & {"chelsea", "coffee"}
    assert _listed(server, {"labels": {"in": ["cat", "espresso"]}}) == {"chelsea", "coffee"}
    assert _listed(server, {"not": {"labels": "animal"}}) == everything - {"chelsea"}
    assert _listed(server, {"labels": {"ne": "animal"}}) == everything - {"chelsea"}
    assert _listed(server, {"labels": {"exists": True}}) == everything
    best = uploaded["coffee"]["labels"][0]  # a class id, as answers give it
    assert _listed(server, {"labels": best["id"]}) == {"coffee"}
    # with other keys, in and/or, on every search path
    assert _listed(server, {"labels": "vehicle", "attributes.kind": "vehicle"}) == \
        {name for name in vehicles if PHOTOS[name]["kind"] == "vehicle"}
    assert _listed(server, {"or": [{"labels": "cat"}, {"name": "rocket"}]}) == \
        {"chelsea", "rocket"}
    image = _ok(server.client.post(SEARCH, json={
        "fields": {"image": {"data": b64(jpeg(photo("chelsea")))}}, "topk": 5,
        "filter": {"labels": "drink"}}))
    assert [hit["name"] for hit in image] == ["coffee"]
    form = _ok(server.client.post(SEARCH, data={"topk": "5", "filter": '{"labels": "cat"}'},
                                  files={"file": ("q.jpg", jpeg(photo("coffee")))}))
    assert [hit["name"] for hit in form] == ["chelsea"]
    assert _names(_text(server, "animal drink", filter={"labels": "drink"})) == ["coffee"]
    assert _listed(server, {"labels": {"exists": False}}, app="cropped") == \
        _listed(server, {}, app="cropped")


def test_words_that_name_nothing_are_reported_and_find_nothing(world):
    server, _ = world
    nothing = _text(server, "xyzzy plugh")
    assert (nothing["hits"], nothing["terms"], nothing["unmatched"]) == \
        ([], [], ["xyzzy", "plugh"])
    some = _text(server, "cat xyzzy")
    assert _names(some)[0] == "chelsea" and some["unmatched"] == ["xyzzy"]
    assert [term["word"] for term in some["terms"]] == ["cat"]
    assert some["terms"][0]["classes"] >= 5


def test_the_field_with_labels_is_chosen_or_must_be_named(world):
    server, _ = world
    api = server.client
    # "mixed": only "whole" has labels (the face pipeline crops): it is the one searched
    assert _ok(api.post("/v1/application/mixed/search", json={"text": "cat"}))["hits"] == []
    two = api.post("/v1/application/two/search", json={"text": "cat"})
    assert two.status_code == 400 and two.json()["code"] == "FIELD_REQUIRED"
    assert "front" in two.json()["message"] and "back" in two.json()["message"]
    assert _ok(api.post("/v1/application/two/search",
                        json={"text": "cat", "field": "back"}))["hits"] == []
    assert _ok(api.post("/v1/application/two/search",
                        data={"text": "cat", "field": "front"}))["hits"] == []


def test_an_entity_deleted_is_no_longer_found_by_words(world):
    server, _ = world
    api = server.client
    (entity,) = _ok(api.post(f"/v1/application/{APP}/upload", json={
        "fields": {"image": {"data": b64(jpeg(photo("chelsea").rotate(90, expand=True)))}},
        "name": "second cat"}))
    assert "second cat" in _names(_text(server, "cat"))
    _ok(api.delete(f"/v1/application/{APP}/entity/{entity['_id']}"))
    assert "second cat" not in _names(_text(server, "cat"))


GOOD = b64(jpeg(photo("chelsea")))
BAD = [  # (id, path, request kwargs, status, code)
    ("empty text", SEARCH, {"json": {"text": ""}}, 400, "INVALID_TEXT"),
    ("whitespace text", SEARCH, {"json": {"text": " \t\n "}}, 400, "INVALID_TEXT"),
    ("text not a string", SEARCH, {"json": {"text": 7}}, 400, "INVALID_TEXT"),
    ("text of 1001 characters", SEARCH, {"json": {"text": "cat " * 250 + "x"}}, 400,
     "TEXT_TOO_LONG"),
    ("multipart empty text", SEARCH, {"data": {"text": ""}}, 400, "INVALID_TEXT"),
    ("text with an image", SEARCH,
     {"json": {"text": "cat", "fields": {"image": {"data": GOOD}}, "topk": 3}}, 400,
     "TEXT_WITH_IMAGE"),
    ("multipart text with a file", SEARCH,
     {"data": {"text": "cat"}, "files": {"file": ("q.jpg", jpeg(photo("chelsea")))}}, 400,
     "TEXT_WITH_IMAGE"),
    ("text topk 0", SEARCH, {"json": {"text": "cat", "topk": 0}}, 400, "INVALID_TOPK"),
    ("text topk 1001", SEARCH, {"json": {"text": "cat", "topk": 1001}}, 400, "INVALID_TOPK"),
    ("text bad filter", SEARCH, {"json": {"text": "cat", "filter": {"colour": "red"}}}, 400,
     "INVALID_FILTER"),
    ("labels naming nothing", SEARCH, {"json": {"text": "cat", "filter": {"labels": "xyzzy"}}},
     400, "INVALID_FILTER"),
    ("labels ordered", SEARCH,
     {"json": {"text": "cat", "filter": {"labels": {"gt": "dog"}}}}, 400, "INVALID_FILTER"),
    ("labels not a class", SEARCH,
     {"json": {"text": "cat", "filter": {"labels": "n99999999"}}}, 400, "INVALID_FILTER"),
    ("labels break-out", SEARCH,
     {"json": {"text": "cat", "filter": {"labels": '" or 1==1 or "'}}}, 400,
     "INVALID_FILTER"),
    ("text field not a string", SEARCH, {"json": {"text": "cat", "field": ["image"]}}, 400,
     "INVALID_REQUEST"),
    ("text unknown field", SEARCH, {"json": {"text": "cat", "field": "nope"}}, 400,
     "UNKNOWN_FIELD"),
    ("text on a value field", SEARCH, {"json": {"text": "cat", "field": "note"}}, 400,
     "UNKNOWN_FIELD"),
    ("text on a processor pipeline", "/v1/application/cropped/search",
     {"json": {"text": "cat"}}, 400, "TEXT_SEARCH_UNAVAILABLE"),
    ("text on a named processor field", "/v1/application/mixed/search",
     {"json": {"text": "cat", "field": "face"}}, 400, "TEXT_SEARCH_UNAVAILABLE"),
    ("text on an unknown application", "/v1/application/nope/search",
     {"json": {"text": "cat"}}, 404, "APPLICATION_NOT_FOUND"),
    ("neither text nor image", SEARCH, {"json": {"topk": 3}}, 422, "INVALID_REQUEST"),
    ("sql in the text", SEARCH, {"json": {"text": "cat'; DROP TABLE entities; --"}}, 200,
     None),
]


@pytest.mark.parametrize(("case", "path", "kwargs", "status", "code"), BAD,
                         ids=[case[0] for case in BAD])
def test_bad_text_searches_answer_4xx_and_change_nothing(world, case, path, kwargs, status,
                                                         code):
    server, _ = world
    before = server.counts()
    answer = server.client.post(path, **kwargs)
    assert answer.status_code == status, answer.text
    if code is not None:
        body = answer.json()
        assert body["code"] == code and body["message"], body
        assert "Traceback" not in body["message"]
    assert server.counts() == before
    assert server.client.get("/v1/settings/ping").text == "pong"


def test_a_processor_pipeline_keeps_no_labels(world):
    server, _ = world
    api = server.client
    answer = _ok(api.post("/v1/application/cropped/upload", json={
        "fields": {"face": {"data": b64(jpeg(photo("astronaut")))}}}))
    assert answer and all(entity["labels"] == [] for entity in answer)
    listed = _ok(api.get("/v1/application/cropped/entity"))
    assert [entity["labels"] for entity in listed] == [[]]
    refused = api.post("/v1/application/cropped/search", json={"text": "astronaut"})
    assert refused.status_code == 400 and refused.json()["code"] == "TEXT_SEARCH_UNAVAILABLE"
