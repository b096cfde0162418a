"""Bad input gets a clear 4xx with a stable code, and changes nothing in any store."""

from __future__ import annotations

import pytest

from api_server import ApiServer
from backends import PAIRWISE_BACKENDS, backend_env, drop_database
from photos import b64, huge_png_header, jpeg, photo

MAX_UPLOAD = 2_000_000


@pytest.fixture(scope="module", params=PAIRWISE_BACKENDS, ids=lambda backends: backends.id)
def world(request, tmp_path_factory):
    """A server with an operator, a processor, pipelines and an application holding 2 images,
    over every pair of stores' backends in turn (6 combinations)."""
    encoder = request.getfixturevalue("encoder_endpoint")
    detector, _ = request.getfixturevalue("face_endpoints")
    databases: list[str] = []
    env = backend_env(request, request.param, databases)
    env["PHANTOSCOPE_MAX_UPLOAD_BYTES"] = str(MAX_UPLOAD)
    server = ApiServer(tmp_path_factory.mktemp("bad-input"), env).start()
    api = server.client
    for name, endpoint in (("enc", encoder), ("faces", detector)):
        assert api.post("/v1/operator/regist", json={"endpoint": endpoint, "name": name}
                        ).status_code == 200
    assert api.post("/v1/pipeline/pipe", json={"encoder": "enc"}).status_code == 200
    assert api.post("/v1/application/app", json={
        "fields": {"image": {"type": "object", "pipeline": "pipe"},
                   "note": {"type": "string", "value": "x"}}}).status_code == 200
    entity_ids = []
    for name in ("coffee", "rocket"):
        answer = api.post("/v1/application/app/upload",
                          json={"fields": {"image": {"data": b64(jpeg(photo(name)))}}})
        assert answer.status_code == 200, answer.text
        entity_ids.append(answer.json()[0]["_id"])
    yield server
    # Leave a shared Milvus server as it was found, for the next backend combination.
    assert api.delete("/v1/application/app", params={"force": "true"}).status_code == 200
    assert api.delete("/v1/pipeline/pipe").status_code == 200
    server.stop()
    for url in databases:
        drop_database(url)


GOOD = b64(jpeg(photo("chelsea")))
TRUNCATED = b64(jpeg(photo("chelsea"))[:3000])
TEXT = b64(b"this is not an image, just text\n" * 10)
HUGE = b64(huge_png_header())
LONG = "x" * 300


def upload(ref: dict) -> dict:
    return {"json": {"fields": {"image": ref}}}


GOOD_BYTES = jpeg(photo("chelsea"))
NESTED: dict = {"width": 1}
for _ in range(8):
    NESTED = {"not": NESTED}


def search_with(filter: object) -> dict:
    return {"json": {"fields": {"image": {"data": GOOD}}, "topk": 3, "filter": filter}}


def upload_with(**keys: object) -> dict:
    return {"json": {"fields": {"image": {"data": GOOD}}, **keys}}


# (id, method, path, request kwargs, status, code)
CASES = [
    ("malformed json", "POST", "/v1/operator/regist", {"content": b'{"name": ',
     "headers": {"content-type": "application/json"}}, 400, "MALFORMED_JSON"),
    ("missing endpoint", "POST", "/v1/operator/regist", {"json": {"name": "x"}}, 422,
     "INVALID_REQUEST"),
    ("name not a string", "POST", "/v1/operator/regist",
     {"json": {"name": 123, "endpoint": "127.0.0.1:1"}}, 422, "INVALID_REQUEST"),
    ("json array body", "POST", "/v1/operator/regist", {"json": [1, 2]}, 422,
     "INVALID_REQUEST"),
    ("name with space", "POST", "/v1/operator/regist",
     {"json": {"name": "bad name", "endpoint": "127.0.0.1:1"}}, 400, "INVALID_NAME"),
    ("name with quotes", "POST", "/v1/operator/regist",
     {"json": {"name": 'a"b\'c', "endpoint": "127.0.0.1:1"}}, 400, "INVALID_NAME"),
    ("name of 300 chars", "POST", "/v1/operator/regist",
     {"json": {"name": LONG, "endpoint": "127.0.0.1:1"}}, 400, "INVALID_NAME"),
    ("name with dots", "POST", "/v1/operator/regist",
     {"json": {"name": "..", "endpoint": "127.0.0.1:1"}}, 400, "INVALID_NAME"),
    ("name with slash", "POST", "/v1/operator/regist",
     {"json": {"name": "a/b", "endpoint": "127.0.0.1:1"}}, 400, "INVALID_NAME"),
    ("duplicate operator", "POST", "/v1/operator/regist",
     {"json": {"name": "enc", "endpoint": "127.0.0.1:1"}}, 409, "OPERATOR_EXISTS"),
    ("nothing at endpoint", "POST", "/v1/operator/regist",
     {"json": {"name": "ghost", "endpoint": "127.0.0.1:9"}}, 400, "OPERATOR_UNREACHABLE"),
    ("endpoint not host:port", "POST", "/v1/operator/regist",
     {"json": {"name": "ghost", "endpoint": "http://x/y"}}, 400, "INVALID_ENDPOINT"),
    ("unknown operator", "GET", "/v1/operator/nope", {}, 404, "OPERATOR_NOT_FOUND"),
    ("operator in use", "DELETE", "/v1/operator/enc", {}, 409, "OPERATOR_IN_USE"),
    ("pipeline unknown encoder", "POST", "/v1/pipeline/p2", {"json": {"encoder": "nope"}},
     404, "OPERATOR_NOT_FOUND"),
    ("pipeline encoder is a processor", "POST", "/v1/pipeline/p2",
     {"json": {"encoder": "faces"}}, 400, "PIPELINE_INVALID"),
    ("pipeline processor is an encoder", "POST", "/v1/pipeline/p2",
     {"json": {"encoder": "enc", "processors": "enc"}}, 400, "PIPELINE_INVALID"),
    ("pipeline input not image", "POST", "/v1/pipeline/p2",
     {"json": {"encoder": "enc", "input": "text"}}, 400, "PIPELINE_INVALID"),
    ("duplicate pipeline", "POST", "/v1/pipeline/pipe", {"json": {"encoder": "enc"}}, 409,
     "PIPELINE_EXISTS"),
    ("pipeline missing encoder", "POST", "/v1/pipeline/p2", {"json": {}}, 422,
     "INVALID_REQUEST"),
    ("index size not a number", "POST", "/v1/pipeline/p2",
     {"json": {"encoder": "enc", "indexFileSize": "big"}}, 422, "INVALID_REQUEST"),
    ("pipeline name with dots", "POST", "/v1/pipeline/a..b", {"json": {"encoder": "enc"}},
     400, "INVALID_NAME"),
    ("pipeline name with slash", "POST", "/v1/pipeline/a/b", {"json": {"encoder": "enc"}},
     404, "NOT_FOUND"),
    ("pipeline in use", "DELETE", "/v1/pipeline/pipe", {}, 409, "PIPELINE_IN_USE"),
    ("unknown pipeline", "GET", "/v1/pipeline/nope", {}, 404, "PIPELINE_NOT_FOUND"),
    ("application without fields", "POST", "/v1/application/a2", {"json": {}}, 422,
     "INVALID_REQUEST"),
    ("application unknown pipeline", "POST", "/v1/application/a2",
     {"json": {"fields": {"i": {"type": "object", "pipeline": "nope"}}}}, 404,
     "PIPELINE_NOT_FOUND"),
    ("image field without pipeline", "POST", "/v1/application/a2",
     {"json": {"fields": {"i": {"type": "object"}}}}, 400, "INVALID_REQUEST"),
    ("no image field", "POST", "/v1/application/a2",
     {"json": {"fields": {"t": {"type": "string", "value": "v"}}}}, 400, "INVALID_REQUEST"),
    ("duplicate application", "POST", "/v1/application/app",
     {"json": {"fields": {"i": {"type": "object", "pipeline": "pipe"}}}}, 409,
     "APPLICATION_EXISTS"),
    ("bad bucket name", "POST", "/v1/application/a2",
     {"json": {"fields": {"i": {"type": "object", "pipeline": "pipe"}},
               "s3Buckets": "Bad_Bucket"}}, 400, "INVALID_BUCKET"),
    ("application name with space", "POST", "/v1/application/a%20b",
     {"json": {"fields": {"i": {"type": "object", "pipeline": "pipe"}}}}, 400,
     "INVALID_NAME"),
    ("application not empty", "DELETE", "/v1/application/app", {}, 409,
     "APPLICATION_NOT_EMPTY"),
    ("unknown application", "GET", "/v1/application/nope", {}, 404, "APPLICATION_NOT_FOUND"),
    ("upload to unknown app", "POST", "/v1/application/nope/upload", upload({"data": GOOD}),
     404, "APPLICATION_NOT_FOUND"),
    ("upload unknown field", "POST", "/v1/application/app/upload",
     {"json": {"fields": {"nope": {"data": GOOD}}}}, 400, "UNKNOWN_FIELD"),
    ("upload to a non-image field", "POST", "/v1/application/app/upload",
     {"json": {"fields": {"note": {"data": GOOD}}}}, 400, "UNKNOWN_FIELD"),
    ("bad base64", "POST", "/v1/application/app/upload", upload({"data": "@@not base64@@"}),
     400, "BAD_BASE64"),
    ("not an image", "POST", "/v1/application/app/upload", upload({"data": TEXT}), 400,
     "NOT_AN_IMAGE"),
    ("truncated jpeg", "POST", "/v1/application/app/upload", upload({"data": TRUNCATED}), 400,
     "NOT_AN_IMAGE"),
    ("20000 x 20000 image", "POST", "/v1/application/app/upload", upload({"data": HUGE}), 413,
     "IMAGE_TOO_LARGE"),
    ("url to loopback", "POST", "/v1/application/app/upload",
     upload({"url": "http://127.0.0.1:5000/x.jpg"}), 400, "URL_REFUSED"),
    ("url to localhost", "POST", "/v1/application/app/upload",
     upload({"url": "http://localhost/x.jpg"}), 400, "URL_REFUSED"),
    ("url to private address", "POST", "/v1/application/app/upload",
     upload({"url": "http://10.1.2.3/x.jpg"}), 400, "URL_REFUSED"),
    ("url to link-local metadata", "POST", "/v1/application/app/upload",
     upload({"url": "http://169.254.169.254/latest/meta-data"}), 400, "URL_REFUSED"),
    ("file url", "POST", "/v1/application/app/upload", upload({"url": "file:///etc/passwd"}),
     400, "URL_REFUSED"),
    ("url and data both", "POST", "/v1/application/app/upload",
     upload({"url": "http://example.com/a.jpg", "data": GOOD}), 400, "INVALID_REQUEST"),
    ("neither url nor data", "POST", "/v1/application/app/upload", upload({}), 400,
     "INVALID_REQUEST"),
    ("empty fields", "POST", "/v1/application/app/upload", {"json": {"fields": {}}}, 422,
     "INVALID_REQUEST"),
    ("multipart without file", "POST", "/v1/application/app/upload",
     {"data": {"field": "image"}, "files": {"other": ("x.txt", b"x")}}, 400,
     "INVALID_REQUEST"),
    ("multipart without a boundary", "POST", "/v1/application/app/upload",
     {"content": b"--b\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nx\r\n--b--",
      "headers": {"content-type": "multipart/form-data"}}, 400, "MALFORMED_MULTIPART"),
    ("multipart cut short", "POST", "/v1/application/app/upload",
     {"content": b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n'
                 b"\r\n" + GOOD_BYTES[:100],
      "headers": {"content-type": "multipart/form-data; boundary=b"}}, 400,
     "MALFORMED_MULTIPART"),
    ("multipart part without a name", "POST", "/v1/application/app/upload",
     {"content": b'--b\r\nContent-Disposition: form-data; filename="a.jpg"\r\n\r\n'
                 + GOOD_BYTES + b"\r\n--b--\r\n",
      "headers": {"content-type": "multipart/form-data; boundary=b"}}, 400,
     "MALFORMED_MULTIPART"),
    ("multipart non-image", "POST", "/v1/application/app/upload",
     {"files": {"file": ("notes.txt", b"hello", "text/plain")}}, 400, "NOT_AN_IMAGE"),
    ("body over the size limit", "POST", "/v1/application/app/upload",
     {"content": b"{" + b" " * (MAX_UPLOAD * 2 + 10) + b"}",
      "headers": {"content-type": "application/json"}}, 413, "REQUEST_TOO_LARGE"),
    ("image over the byte limit", "POST", "/v1/application/app/upload/batch",
     {"files": {"files": ("big.bmp", b"BM" + b"\0" * (MAX_UPLOAD + 1), "image/bmp")}}, 200,
     None),
    ("search topk 0", "POST", "/v1/application/app/search",
     {"json": {"fields": {"image": {"data": GOOD}}, "topk": 0}}, 400, "INVALID_TOPK"),
    ("search topk not a number", "POST", "/v1/application/app/search",
     {"json": {"fields": {"image": {"data": GOOD}}, "topk": "ten"}}, 400, "INVALID_TOPK"),
    ("search without topk", "POST", "/v1/application/app/search",
     {"json": {"fields": {"image": {"data": GOOD}}}}, 422, "INVALID_REQUEST"),
    ("search bad base64", "POST", "/v1/application/app/search",
     {"json": {"fields": {"image": {"data": "!!"}}, "topk": 3}}, 400, "BAD_BASE64"),
    # issue 17: search by words
    ("search empty text", "POST", "/v1/application/app/search", {"json": {"text": ""}}, 400,
     "INVALID_TEXT"),
    ("search whitespace text", "POST", "/v1/application/app/search",
     {"json": {"text": "\t \n"}}, 400, "INVALID_TEXT"),
    ("search text over 1000 characters", "POST", "/v1/application/app/search",
     {"json": {"text": "dog " * 300}}, 400, "TEXT_TOO_LONG"),
    ("search text with an image", "POST", "/v1/application/app/search",
     {"json": {"text": "dog", "fields": {"image": {"data": GOOD}}, "topk": 3}}, 400,
     "TEXT_WITH_IMAGE"),
    ("multipart text with a file", "POST", "/v1/application/app/search",
     {"data": {"text": "dog"}, "files": {"file": ("q.jpg", GOOD_BYTES, "image/jpeg")}}, 400,
     "TEXT_WITH_IMAGE"),
    ("search text on a value field", "POST", "/v1/application/app/search",
     {"json": {"text": "dog", "field": "note"}}, 400, "UNKNOWN_FIELD"),
    ("entity id not a number", "GET", "/v1/application/app/entity/abc", {}, 422,
     "INVALID_REQUEST"),
    ("unknown entity", "GET", "/v1/application/app/entity/12345", {}, 404, "ENTITY_NOT_FOUND"),
    ("delete unknown entity", "DELETE", "/v1/application/app/entity/12345", {}, 404,
     "ENTITY_NOT_FOUND"),
    ("page size 0", "GET", "/v1/application/app/entity?num=0", {}, 400, "INVALID_PAGE"),
    ("pipeline test bad image", "POST", "/v1/pipeline/pipe/test", {"json": {"data": TEXT}},
     400, "NOT_AN_IMAGE"),
    # issue 16: filters, attributes and names
    ("filter unknown operator", "POST", "/v1/application/app/search",
     search_with({"width": {"near": 3}}), 400, "INVALID_FILTER"),
    ("filter wrong value type", "POST", "/v1/application/app/search",
     search_with({"width": "wide"}), 400, "INVALID_FILTER"),
    ("filter time not a time", "POST", "/v1/application/app/search",
     search_with({"taken_at": {"gte": "last year"}}), 400, "INVALID_FILTER"),
    ("filter nested 9 deep", "POST", "/v1/application/app/search",
     search_with(NESTED), 400, "INVALID_FILTER"),
    ("filter key outside the rule", "POST", "/v1/application/app/search",
     search_with({"attributes.bad-key": 1}), 400, "INVALID_FILTER"),
    ("filter unknown key", "POST", "/v1/application/app/search",
     search_with({"colour": "red"}), 400, "INVALID_FILTER"),
    ("filter of 10000 values", "POST", "/v1/application/app/search",
     search_with({"attributes.tags": {"in": [f"v{i}" for i in range(10_000)]}}), 400,
     "INVALID_FILTER"),
    ("filter not an object", "POST", "/v1/application/app/search", search_with([1]), 400,
     "INVALID_FILTER"),
    ("filter with a control character", "POST", "/v1/application/app/search",
     search_with({"name": "a\x00b"}), 400, "INVALID_FILTER"),
    ("multipart filter not json", "POST", "/v1/application/app/search",
     {"data": {"topk": "3", "filter": '{"width": '},
      "files": {"file": ("q.jpg", GOOD_BYTES, "image/jpeg")}}, 400, "INVALID_FILTER"),
    ("listing filter not json", "GET", "/v1/application/app/entity?filter=%7Bwidth", {}, 400,
     "INVALID_FILTER"),
    ("listing filter unknown operator", "GET", "/v1/application/app/entity",
     {"params": {"filter": '{"name": {"like": "a%"}}'}}, 400, "INVALID_FILTER"),
    ("attributes over 64 KiB", "POST", "/v1/application/app/upload",
     upload_with(attributes={"big": "x" * 70_000}), 400, "INVALID_ATTRIBUTES"),
    ("attributes key outside the rule", "POST", "/v1/application/app/upload",
     upload_with(attributes={"bad key": 1}), 400, "INVALID_ATTRIBUTES"),
    ("attributes null value", "POST", "/v1/application/app/upload",
     upload_with(attributes={"k": None}), 400, "INVALID_ATTRIBUTES"),
    ("attributes nested object", "POST", "/v1/application/app/upload",
     upload_with(attributes={"k": {"x": 1}}), 400, "INVALID_ATTRIBUTES"),
    ("attributes list of numbers", "POST", "/v1/application/app/upload",
     upload_with(attributes={"k": [1, 2]}), 400, "INVALID_ATTRIBUTES"),
    ("attributes not an object", "POST", "/v1/application/app/upload",
     upload_with(attributes=["a"]), 400, "INVALID_ATTRIBUTES"),
    ("attributes break-out key", "POST", "/v1/application/app/upload",
     upload_with(attributes={'k"] or 1==1 or x["': 1}), 400, "INVALID_ATTRIBUTES"),
    ("multipart attributes not json", "POST", "/v1/application/app/upload",
     {"data": {"attributes": "{k: 1}"}, "files": {"file": ("a.jpg", GOOD_BYTES, "image/jpeg")}},
     400, "INVALID_ATTRIBUTES"),
    ("multipart attributes bad key", "POST", "/v1/application/app/upload",
     {"data": {"attributes": '{"1k": 1}'},
      "files": {"file": ("a.jpg", GOOD_BYTES, "image/jpeg")}}, 400, "INVALID_ATTRIBUTES"),
    ("batch item bad attributes", "POST", "/v1/application/app/upload/batch",
     {"json": {"images": [{"data": GOOD}, {"data": GOOD, "attributes": {"k": {"x": 1}}}]}},
     400, "INVALID_ATTRIBUTES"),
    ("multipart batch bad attributes", "POST", "/v1/application/app/upload/batch",
     {"data": {"attributes": "[1]"}, "files": {"files": ("a.jpg", GOOD_BYTES, "image/jpeg")}},
     400, "INVALID_ATTRIBUTES"),
    ("name of 1025 characters", "POST", "/v1/application/app/upload",
     upload_with(name="n" * 1025), 400, "INVALID_REQUEST"),
    ("name with a control character", "POST", "/v1/application/app/upload",
     upload_with(name="a\nb"), 400, "INVALID_REQUEST"),
    ("name not a string", "POST", "/v1/application/app/upload", upload_with(name=7), 400,
     "INVALID_REQUEST"),
    ("batch item name with a control character", "POST", "/v1/application/app/upload/batch",
     {"json": {"images": [{"data": GOOD, "name": "tab\there"}]}}, 400, "INVALID_REQUEST"),
    ("patch unknown entity", "PATCH", "/v1/application/app/entity/12345",
     {"json": {"name": "x"}}, 404, "ENTITY_NOT_FOUND"),
    ("patch malformed json", "PATCH", "/v1/application/app/entity/12345",
     {"content": b"{", "headers": {"content-type": "application/json"}}, 400,
     "MALFORMED_JSON"),
    ("batch of bad items", "POST", "/v1/application/app/upload/batch",
     {"json": {"images": [{"data": TEXT}, {"url": "http://127.0.0.1/x"}, {"data": "%%"}]}},
     200, None),
]


@pytest.mark.parametrize(("case", "method", "path", "kwargs", "status", "code"), CASES,
                         ids=[case[0] for case in CASES])
def test_bad_input_changes_nothing(world, case, method, path, kwargs, status, code):
    before = world.counts()
    answer = world.client.request(method, path, **kwargs)
    assert answer.status_code == status, answer.text
    body = answer.json()
    if code is None:  # batch answers: every item failed, each with its own error
        assert body["imported"] == 0 and body["failed"] == len(body["results"]) >= 1
        for result in body["results"]:
            assert 400 <= result["error"]["status"] < 500 and result["error"]["message"]
    else:
        assert body["code"] == code, body
        assert body["message"] and "Traceback" not in body["message"]
        assert "object at 0x" not in body["message"]
    assert world.counts() == before
    assert world.client.get("/v1/settings/ping").text == "pong"


def test_a_good_upload_still_works_after_all_that(world):
    before = world.counts()
    answer = world.client.post("/v1/application/app/upload", **upload({"data": GOOD}))
    assert answer.status_code == 200, answer.text
    after = world.counts()
    assert after["entities"] == before["entities"] + 1
    assert after["vectors"] == before["vectors"] + 1 and after["objects"] == before["objects"] + 1
