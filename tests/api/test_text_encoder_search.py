"""Search by words through a pipeline's text encoder, and mixed text + image queries (issue 17,
tier 2), over HTTP against a real server (Milvus Lite, SQLite, folder) and real gRPC
operators of one tiny colour space (tests/colour_words.py), so that every ranking and score
is computed here by hand with numpy.

Pipelines pair an image encoder with a text encoder (refused, with nothing stored, when the
two do not share dimension and metric, or play the wrong part); words are embedded and the
image vectors searched, with filters; mixed queries weight the two vectors ([1, 0] is the
text alone, [0, 1] the image alone); a field with labels and no text encoder still searches
through labels; every bad request answers its 4xx and changes nothing.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest

from api_server import ApiServer
from colour_words import (
    ColourEncoder,
    ColourWordsEncoder,
    HalvesProcessor,
    L2WordsEncoder,
    LabelledColourEncoder,
    WideWordsEncoder,
    halves,
    image_vector,
    png,
    solid,
    text_vector,
    unit,
)
from inprocess import serve_in_process

APP = "colours"
SEARCH = f"/v1/application/{APP}/search"
PHOTOS = {  # name -> (colour, kind)
    "red": ((230, 20, 20), "warm"),
    "orange": ((230, 130, 20), "warm"),
    "purple": ((150, 20, 170), "cool"),
    "blue": ((20, 40, 230), "cool"),
    "green": ((20, 220, 60), "cool"),
    "teal": ((20, 160, 160), "cool"),
}
QUERY = (30, 30, 220)  # a blue query image
ORIGINAL_PIPELINE_KEYS = {"_pipeline_name", "_input", "_output", "_dimension",
                          "_index_file_size", "_metric_type", "_pipeline_description",
                          "_processors", "_encoder", "_description"}
OPERATORS = {
    "colour": ColourEncoder(), "tagger": LabelledColourEncoder(), "words": ColourWordsEncoder(),
    "wide": WideWordsEncoder(), "l2words": L2WordsEncoder(), "halves": HalvesProcessor(),
}


def _ok(answer):
    assert answer.status_code == 200, answer.text
    return answer.json()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@dataclass(frozen=True)
class World:
    server: ApiServer
    endpoints: dict[str, str]


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[World]:
    """The operators served in this process; a server with pipelines `paired` (colour +
    words), `tagged` (labelled colour, no text encoder), `both` (labelled colour + words),
    `plain` (colour only) and `cut` (halves, colour + words); application `colours` on
    `paired` holding the six photos; `two` with a paired and a tagged field; `bare` on plain;
    `cut` on cut, holding one red|blue image."""
    with contextlib.ExitStack() as stack:
        endpoints = {name: f"127.0.0.1:{stack.enter_context(serve_in_process(op)).port}"
                     for name, op in OPERATORS.items()}
        server = ApiServer(tmp_path_factory.mktemp("text-encoder"), {}).start()
        stack.callback(server.stop)
        api = server.client
        for name, endpoint in endpoints.items():
            _ok(api.post("/v1/operator/regist", json={"endpoint": endpoint, "name": name}))
        for name, body in {
            "paired": {"encoder": "colour", "text_encoder": "words"},
            "tagged": {"encoder": "tagger"},
            "both": {"encoder": "tagger", "text_encoder": "words"},
            "plain": {"encoder": "colour"},
            "cut": {"encoder": "colour", "processors": "halves", "text_encoder": "words"},
        }.items():
            _ok(api.post(f"/v1/pipeline/{name}", json=body))
        for app, fields in {
            APP: {"photo": "paired"}, "two": {"photo": "paired", "tag": "tagged"},
            "bare": {"photo": "plain"}, "cut": {"photo": "cut"}, "both": {"photo": "both"},
        }.items():
            _ok(api.post(f"/v1/application/{app}", json={"fields": {
                field: {"type": "object", "pipeline": pipeline}
                for field, pipeline in fields.items()}}))
        for name, (colour, kind) in PHOTOS.items():
            _ok(api.post(f"/v1/application/{APP}/upload", json={
                "fields": {"photo": {"data": _b64(png(solid(colour)))}}, "name": name,
                "attributes": {"kind": kind}}))
            _ok(api.post("/v1/application/both/upload", json={
                "fields": {"photo": {"data": _b64(png(solid(colour)))}}, "name": name}))
        _ok(api.post("/v1/application/cut/upload", json={
            "fields": {"photo": {"data": _b64(png(halves((230, 20, 20), (20, 20, 230))))}},
            "name": "red|blue"}))
        yield World(server, endpoints)


def _search(world: World, path: str = SEARCH, **body) -> dict | list:
    return _ok(world.server.client.post(path, json=body))


def _expected(query: np.ndarray, names=PHOTOS) -> list[tuple[str, float]]:
    """The photos ranked by inner product with ``query``, computed here."""
    scored = [(name, float(query @ image_vector(PHOTOS[name][0]))) for name in names]
    return sorted(scored, key=lambda pair: -pair[1])


def _ranked(hits: list[dict]) -> list[tuple[str, float]]:
    return [(hit["name"], hit["score"]) for hit in hits]


def _assert_ranked(hits: list[dict], expected: list[tuple[str, float]]) -> None:
    assert [name for name, _ in _ranked(hits)] == [name for name, _ in expected]
    for (_, score), (_, want) in zip(_ranked(hits), expected, strict=True):
        assert score == pytest.approx(want, abs=1e-5)


def _box(box: dict) -> tuple[int, int, int, int]:
    return box["left"], box["top"], box["right"], box["bottom"]


def _mixed(text: str, rgb: tuple[int, int, int], w_text: float, w_image: float) -> np.ndarray:
    return unit(w_text * text_vector(text) + w_image * image_vector(rgb))


def test_pipelines_answer_their_text_encoder_and_every_original_key(world):
    api = world.server.client
    paired = _ok(api.get("/v1/pipeline/paired"))
    assert set(paired) == ORIGINAL_PIPELINE_KEYS | {"_text_encoder"}
    assert (paired["_encoder"], paired["_text_encoder"], paired["_dimension"],
            paired["_metric_type"]) == ("colour", "words", 3, "IP")
    assert _ok(api.get("/v1/pipeline/plain"))["_text_encoder"] is None
    listed = {p["_pipeline_name"]: p["_text_encoder"] for p in _ok(api.get("/v1/pipeline/"))}
    assert listed.items() >= {"paired": "words", "tagged": None, "both": "words",
                              "plain": None, "cut": "words"}.items()


@pytest.mark.parametrize("text", ["red", "a purple thing", "cyan", "yellow and green"])
def test_words_are_embedded_and_rank_the_images_as_computed(world, text):
    answer = _search(world, text=text, topk=6)
    assert (answer["matched_by"], answer["terms"], answer["unmatched"]) == \
        ("text_encoder", [], [])
    _assert_ranked(answer["hits"], _expected(text_vector(text)))
    for hit in answer["hits"]:
        assert hit["distance"] == pytest.approx(hit["score"])  # IP: the score is the product
        assert hit["box"] is None and hit["attributes"]["kind"] == PHOTOS[hit["name"]][1]


def test_topk_filters_and_forms_work_as_for_an_image_search(world):
    assert [name for name, _ in _ranked(_search(world, text="red", topk=2)["hits"])] == \
        ["red", "orange"]
    cool = _search(world, text="red", topk=3, filter={"attributes.kind": "cool"})
    _assert_ranked(cool["hits"], _expected(text_vector("red"),
                                           [n for n, (_, k) in PHOTOS.items() if k == "cool"])[:3])
    named = _search(world, text="green", filter={"name": {"prefix": "t"}})
    assert _ranked(named["hits"])[0][0] == "teal" and len(named["hits"]) == 1
    form = _ok(world.server.client.post(SEARCH, data={
        "text": "red", "topk": "3", "filter": '{"attributes.kind": "warm"}'}))
    assert form == _search(world, text="red", topk=3, filter={"attributes.kind": "warm"})
    assert [hit["name"] for hit in form["hits"]] == ["red", "orange"]


def test_mixed_queries_weigh_the_text_and_the_image_as_computed(world):
    query = {"data": _b64(png(solid(QUERY)))}
    text_only = _search(world, text="red", topk=6)["hits"]
    image_only = _search(world, fields={"photo": query}, topk=6)
    all_text = _search(world, text="red", image=query, weights=[1, 0], topk=6)
    assert all_text["matched_by"] == "text_encoder"
    _assert_ranked(all_text["hits"], _ranked(text_only))
    _assert_ranked(_search(world, text="red", image=query, weights=[0, 1], topk=6)["hits"],
                   _ranked(image_only))
    _assert_ranked(image_only, _expected(image_vector(QUERY)))
    # between the two: red and blue pull the query towards purple
    even = _search(world, text="red", image=query, weights=[0.5, 0.5], topk=6)["hits"]
    expected = _expected(_mixed("red", QUERY, 0.5, 0.5))
    _assert_ranked(even, expected)
    assert expected[0][0] == "purple" != text_only[0]["name"] != image_only[0]["name"]
    leaning = _search(world, text="red", image=query, weights=[0.8, 0.2], topk=6)["hits"]
    _assert_ranked(leaning, _expected(_mixed("red", QUERY, 0.8, 0.2)))
    assert [hit["name"] for hit in leaning] != [hit["name"] for hit in even]
    # no weights: equal; the image may come in `fields`, `image` or a form's file
    for same in (_search(world, text="red", image=query, topk=6),
                 _search(world, text="red", fields={"photo": query}, weights=[2, 2], topk=6),
                 _ok(world.server.client.post(SEARCH, data={
                     "text": "red", "weights": "0.5,0.5", "topk": "6"},
                     files={"file": ("q.png", png(solid(QUERY)))})),
                 _ok(world.server.client.post(SEARCH, data={
                     "text": "red", "weights": "[1, 1]", "topk": "6"},
                     files={"file": ("q.png", png(solid(QUERY)))}))):
        _assert_ranked(same["hits"], expected)
    cool = _search(world, text="red", image=query, topk=6, filter={"attributes.kind": "cool"})
    _assert_ranked(cool["hits"], [pair for pair in expected if PHOTOS[pair[0]][1] == "cool"])


def test_a_field_chooses_how_words_are_matched(world):
    # `two`: photo has a text encoder, tag only labels: text needs a field, mixed does not
    two = world.server.client.post("/v1/application/two/search", json={"text": "red"})
    assert two.status_code == 400 and two.json()["code"] == "FIELD_REQUIRED"
    assert "photo" in two.json()["message"] and "tag" in two.json()["message"]
    query = {"data": _b64(png(solid(QUERY)))}
    assert _search(world, "/v1/application/two/search", text="red", image=query)["hits"] == []
    tagged = _search(world, "/v1/application/two/search", text="cat", field="tag")
    assert (tagged["matched_by"], tagged["hits"]) == ("labels", [])
    assert [term["word"] for term in tagged["terms"]] == ["cat"]
    # a pipeline with labels and a text encoder searches through the encoder
    both = _search(world, "/v1/application/both/search", text="cat red", topk=2)
    assert both["matched_by"] == "text_encoder" and both["terms"] == []
    assert [hit["name"] for hit in both["hits"]] == ["red", "orange"]
    assert all(hit["labels"][0]["id"] == "n02123045" for hit in both["hits"])


def test_a_processor_pipeline_searches_its_crops_with_the_words_and_each_query_crop(world):
    answer = _search(world, "/v1/application/cut/search", text="blue", topk=1)
    [hit] = answer["hits"]
    assert hit["name"] == "red|blue" and _box(hit["box"]) == (32, 0, 64, 32)
    assert hit["score"] == pytest.approx(float(text_vector("blue") @ image_vector((20, 20, 230))),
                                         abs=1e-2)
    query = {"data": _b64(png(halves((20, 200, 20), (200, 200, 20))))}  # green | yellow
    mixed = _search(world, "/v1/application/cut/search", text="red", image=query, topk=1)
    [hit] = mixed["hits"]
    query_boxes = {_box(match["query_box"]) for match in hit["matches"]}
    assert query_boxes == {(0, 0, 32, 32), (32, 0, 64, 32)}
    best = max(float(_mixed("red", crop, 1, 1) @ image_vector(stored))
               for crop in ((20, 200, 20), (200, 200, 20))
               for stored in ((230, 20, 20), (20, 20, 230)))
    assert hit["score"] == pytest.approx(best, abs=1e-2)


def test_deleting_an_operator_a_pipeline_uses_as_text_encoder_is_refused(world):
    api = world.server.client
    refused = api.delete("/v1/operator/words")
    assert refused.status_code == 409 and refused.json()["code"] == "OPERATOR_IN_USE"
    assert "paired" in refused.json()["message"]
    assert _ok(api.get("/v1/operator/words"))["_input"] == "text"


PIPELINE = "/v1/pipeline/wrong"
BAD_PIPELINES = [  # (id, body, status, code, words the message must say)
    ("text encoder unknown", {"encoder": "colour", "text_encoder": "nope"}, 404,
     "OPERATOR_NOT_FOUND", ["nope"]),
    ("an image encoder as text encoder", {"encoder": "colour", "text_encoder": "tagger"}, 400,
     "PIPELINE_INVALID", ["tagger", "text_encoder", "encoder of images"]),
    ("a processor as text encoder", {"encoder": "colour", "text_encoder": "halves"}, 400,
     "PIPELINE_INVALID", ["processor", "text_encoder"]),
    ("a text encoder as encoder", {"encoder": "words"}, 400, "PIPELINE_INVALID",
     ["encodes texts", "text_encoder"]),
    ("dimension mismatch", {"encoder": "colour", "text_encoder": "wide"}, 400,
     "TEXT_ENCODER_MISMATCH",
     ["5-d", "3-d", "clip-vit-b-32-image-encoder with clip-vit-b-32-text-encoder"]),
    ("metric mismatch", {"encoder": "colour", "text_encoder": "l2words"}, 400,
     "TEXT_ENCODER_MISMATCH", ["L2", "IP", "one embedding space"]),
    ("text encoder not a name", {"encoder": "colour", "text_encoder": 7}, 422,
     "INVALID_REQUEST", ["text_encoder"]),
    ("text encoder empty", {"encoder": "colour", "text_encoder": ""}, 400, "INVALID_REQUEST",
     ["text_encoder"]),
]


@pytest.mark.parametrize(("case", "body", "status", "code", "says"), BAD_PIPELINES,
                         ids=[case[0] for case in BAD_PIPELINES])
def test_a_pipeline_whose_encoders_do_not_pair_is_refused_and_nothing_stored(
        world, case, body, status, code, says):
    api = world.server.client
    before = world.server.counts()
    answer = api.post(PIPELINE, json=body)
    assert answer.status_code == status, answer.text
    assert answer.json()["code"] == code
    assert all(word in answer.json()["message"] for word in says), answer.json()["message"]
    assert world.server.counts() == before
    assert api.get(PIPELINE).status_code == 404


GOOD = {"data": _b64(png(solid(QUERY)))}
BAD_SEARCHES = [  # (id, path, request kwargs, status, code)
    ("weights with text only", SEARCH, {"json": {"text": "red", "weights": [1, 0]}}, 400,
     "INVALID_WEIGHTS"),
    ("weights with an image only", SEARCH,
     {"json": {"fields": {"photo": GOOD}, "topk": 3, "weights": [1, 0]}}, 400,
     "INVALID_WEIGHTS"),
    ("form weights with a file only", SEARCH,
     {"data": {"weights": "1,0", "topk": "3"}, "files": {"file": ("q.png", png(solid(QUERY)))}},
     400, "INVALID_WEIGHTS"),
    ("weights a number", SEARCH, {"json": {"text": "red", "image": GOOD, "weights": 0.5}}, 400,
     "INVALID_WEIGHTS"),
    ("three weights", SEARCH, {"json": {"text": "red", "image": GOOD, "weights": [1, 1, 1]}},
     400, "INVALID_WEIGHTS"),
    ("a negative weight", SEARCH, {"json": {"text": "red", "image": GOOD, "weights": [-1, 1]}},
     400, "INVALID_WEIGHTS"),
    ("weights all zero", SEARCH, {"json": {"text": "red", "image": GOOD, "weights": [0, 0]}},
     400, "INVALID_WEIGHTS"),
    ("a weight not a number", SEARCH,
     {"json": {"text": "red", "image": GOOD, "weights": ["a", 1]}}, 400, "INVALID_WEIGHTS"),
    ("a weight true", SEARCH, {"json": {"text": "red", "image": GOOD, "weights": [True, 1]}},
     400, "INVALID_WEIGHTS"),
    ("a weight infinite", SEARCH,
     {"content": b'{"text": "red", "image": {"data": "x"}, "weights": [Infinity, 1]}',
      "headers": {"content-type": "application/json"}}, 400, "INVALID_WEIGHTS"),
    ("form weights not numbers", SEARCH,
     {"data": {"text": "red", "weights": "x,y"}, "files": {"file": ("q.png", png(solid(QUERY)))}},
     400, "INVALID_WEIGHTS"),
    ("form weights one number", SEARCH,
     {"data": {"text": "red", "weights": "0.3"}, "files": {"file": ("q.png", png(solid(QUERY)))}},
     400, "INVALID_WEIGHTS"),
    ("a zero-length mix", SEARCH,
     {"json": {"text": "xyzzy", "image": GOOD, "weights": [1, 0]}}, 400, "INVALID_WEIGHTS"),
    ("mixed on a labelled field", "/v1/application/two/search",
     {"json": {"text": "cat", "image": GOOD, "field": "tag"}}, 400, "TEXT_WITH_IMAGE"),
    ("mixed on a field without either", "/v1/application/bare/search",
     {"json": {"text": "red", "image": GOOD}}, 400, "TEXT_WITH_IMAGE"),
    ("form mixed on a field without either", "/v1/application/bare/search",
     {"data": {"text": "red"}, "files": {"file": ("q.png", png(solid(QUERY)))}}, 400,
     "TEXT_WITH_IMAGE"),
    ("text on a field without either", "/v1/application/bare/search",
     {"json": {"text": "red"}}, 400, "TEXT_SEARCH_UNAVAILABLE"),
    ("empty text with an image", SEARCH, {"json": {"text": " ", "image": GOOD}}, 400,
     "INVALID_TEXT"),
    ("text of 1001 characters with an image", SEARCH,
     {"json": {"text": "red " * 250 + "x", "image": GOOD}}, 400, "TEXT_TOO_LONG"),
    ("text of 1001 characters", SEARCH, {"json": {"text": "red " * 250 + "x"}}, 400,
     "TEXT_TOO_LONG"),
    ("an image in fields and image", SEARCH,
     {"json": {"text": "red", "image": GOOD, "fields": {"photo": GOOD}}}, 400,
     "INVALID_REQUEST"),
    ("field and fields disagree", SEARCH,
     {"json": {"text": "red", "field": "other", "fields": {"photo": GOOD}}}, 400,
     "INVALID_REQUEST"),
    ("mixed with a bad image", SEARCH, {"json": {"text": "red", "image": {"data": "bm90"}}},
     400, "NOT_AN_IMAGE"),
]


@pytest.mark.parametrize(("case", "path", "kwargs", "status", "code"), BAD_SEARCHES,
                         ids=[case[0] for case in BAD_SEARCHES])
def test_bad_text_and_mixed_searches_answer_4xx_and_change_nothing(world, case, path, kwargs,
                                                                   status, code):
    api = world.server.client
    before = world.server.counts()
    answer = api.post(path, **kwargs)
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["code"] == code and body["message"] and "Traceback" not in body["message"]
    if code == "INVALID_WEIGHTS":
        assert "[w_text, w_image]" in body["message"] or "text and an image" in body["message"]
    if code in ("TEXT_WITH_IMAGE", "TEXT_SEARCH_UNAVAILABLE"):
        assert "text encoder" in body["message"]
    if code == "TEXT_SEARCH_UNAVAILABLE":
        assert "labels" in body["message"]
    assert world.server.counts() == before
    assert api.get("/v1/settings/ping").text == "pong"
    assert _search(world, text="red", topk=1)["hits"][0]["name"] == "red"  # still serving


def test_a_text_encoder_that_stopped_answers_503_and_the_server_keeps_serving(world):
    api = world.server.client
    with serve_in_process(ColourWordsEncoder()) as gone:
        _ok(api.post("/v1/operator/regist",
                     json={"endpoint": f"127.0.0.1:{gone.port}", "name": "gone"}))
        _ok(api.post("/v1/pipeline/orphan", json={"encoder": "colour", "text_encoder": "gone"}))
        _ok(api.post("/v1/application/orphan", json={
            "fields": {"photo": {"type": "object", "pipeline": "orphan"}}}))
    before = world.server.counts()
    answer = api.post("/v1/application/orphan/search", json={"text": "red"})
    assert answer.status_code == 503, answer.text
    assert answer.json()["code"] == "OPERATOR_UNAVAILABLE" and "gone" in answer.json()["message"]
    assert world.server.counts() == before
    assert _search(world, text="red", topk=1)["hits"][0]["name"] == "red"
