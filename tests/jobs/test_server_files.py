"""Images an upload or a search names by their path on the server (`{"path", "sha256"}`), on a
real API server (SQLite, Milvus Lite, a folder) with a real encoder process: read from the
server's disk only under its import roots and only when the bytes there have the SHA-256
given; every other case refused with a code, and nothing stored."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from job_world import make_application, photo_bytes, write_photos

from api_server import ApiServer
from helpers import folder_server
from phantoscope.engine.errors import BadRequestError
from phantoscope.engine.import_sources import import_roots, read_file
from phantoscope.engine.intake import IntakeLimits
from phantoscope.imaging.fetch import FetchPolicy

APP = "served"
LIMIT = 200_000  # bytes an image may have on this server
REQUEST_LIMIT = 400_000  # bytes a request's body, or the images it names, may hold together


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def server(tmp_path_factory, roots, tally) -> Iterator[ApiServer]:
    """The API server, with ``files_url``: an HTTP server on loopback serving ``roots``."""
    api = ApiServer(tmp_path_factory.mktemp("server-files-api"), {
        "PHANTOSCOPE_IMPORT_ROOTS": str(roots), "PHANTOSCOPE_ALLOW_PRIVATE_URLS": "true",
        "PHANTOSCOPE_MAX_UPLOAD_BYTES": str(LIMIT),
        "PHANTOSCOPE_MAX_REQUEST_BYTES": str(REQUEST_LIMIT)}).start()
    make_application(api.client, tally.endpoint, APP, "tally")
    with folder_server(roots) as url:
        api.files_url = url
        yield api
    api.stop()


def entities(server: ApiServer) -> dict[str, dict]:
    answer = server.client.get(f"/v1/application/{APP}/entity", params={"num": 1000})
    assert answer.status_code == 200, answer.text
    return {entity["name"]: entity for entity in answer.json()}


def test_a_batch_and_an_upload_name_files_the_server_reads(server, roots):
    photos = write_photos(roots / "batch", ["a.jpg", "deeper/b.jpg", "c.jpg"], first=100)
    refs = [{"path": str(roots / "batch" / name), "sha256": sha(data)}
            for name, data in photos.items()]
    answer = server.client.post(f"/v1/application/{APP}/upload/batch", json={"images": [
        {**refs[0], "name": "trip/a.jpg", "attributes": {"trip": "alps"}},
        refs[1],  # named by its file, as a sent file is
        {**refs[2], "name": "trip/c.jpg"}]})
    assert answer.status_code == 200, answer.text
    assert (answer.json()["imported"], answer.json()["failed"]) == (3, 0)
    stored = entities(server)
    assert {"trip/a.jpg", "b.jpg", "trip/c.jpg"} <= set(stored)
    assert stored["trip/a.jpg"]["attributes"] == {"trip": "alps"}
    assert stored["b.jpg"]["sha256"] == sha(photos["deeper/b.jpg"])
    entity_id = stored["trip/c.jpg"]["_id"]
    image = server.client.get(f"/v1/application/{APP}/entity/{entity_id}/image")
    assert image.content == photos["c.jpg"]

    one = write_photos(roots / "single", ["d.jpg"], first=110)["d.jpg"]
    path = str(roots / "single" / "d.jpg")
    answer = server.client.post(f"/v1/application/{APP}/upload", json={
        "fields": {"photo": {"path": path, "sha256": sha(one)}}})
    assert answer.status_code == 200, answer.text
    (entity,) = answer.json()
    assert (entity["name"], entity["sha256"]) == ("d.jpg", sha(one))

    # A pipeline test and a search name their image the same way; the image itself comes
    # first.
    answer = server.client.post(f"/v1/pipeline/{APP}-pipe/test",
                                json={"path": path, "sha256": sha(one)})
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["steps"][-1]["vectors"]) == 1
    answer = server.client.post(f"/v1/application/{APP}/search", json={
        "fields": {"photo": {"path": path, "sha256": sha(one)}}, "topk": 1})
    assert answer.status_code == 200, answer.text
    assert answer.json()[0]["_id"] == str(entity["_id"])


def test_a_request_names_images_of_at_most_a_request_body_together(server, roots):
    """Naming images costs the server no more memory than sending them: files it reads from
    its disk and URLs it fetches for one request hold at most PHANTOSCOPE_MAX_REQUEST_BYTES
    together; the images beyond fail, each alone."""
    folder = roots / "heavy"
    folder.mkdir()
    paths, urls = [], []
    for number in range(3):  # 150 kB each (a photo and padding after it): two fit, not three
        data = photo_bytes(300 + number) + b"\0" * 150_000
        (folder / f"{number}.jpg").write_bytes(data)
        paths.append({"path": str(folder / f"{number}.jpg"), "sha256": sha(data)})
        urls.append({"url": f"{server.files_url}/heavy/{number}.jpg"})

    def batch(*refs: dict) -> list[dict]:
        answer = server.client.post(f"/v1/application/{APP}/upload/batch",
                                    json={"images": list(refs)})
        assert answer.status_code == 200, answer.text
        return answer.json()["results"]

    before = server.counts()
    for results in (batch(paths[0], urls[1], paths[2]), batch(paths[2], paths[0], urls[1])):
        assert "entity" in results[0] and "entity" in results[1], results
        assert (results[2]["error"]["status"], results[2]["error"]["code"]) == \
            (413, "REQUEST_TOO_LARGE")
        assert f"{REQUEST_LIMIT:,} bytes" in results[2]["error"]["message"]
    after = server.counts()
    assert (after["entities"], after["objects"]) == (before["entities"] + 4,
                                                     before["objects"] + 4)
    # Each request has its own budget: the third alone is read.
    assert "entity" in batch(paths[1])[0]


def bad_refs(roots: Path) -> list[tuple[dict, int, str]]:
    """Image references the server refuses, with the status and code of each."""
    folder = roots / "bad"
    good = write_photos(folder, ["good.jpg"], first=200)["good.jpg"]
    (folder / "notes.jpg").write_bytes(b"shopping list")
    (folder / "big.jpg").write_bytes(photo_bytes(201) + b"\0" * LIMIT)
    (folder / "sub.jpg").mkdir()
    os.mkfifo(folder / "pipe.jpg")  # read, it would block for ever
    (folder / "link-out.jpg").symlink_to(roots.parent / "outside" / "secret.jpg")
    secret = (roots.parent / "outside" / "secret.jpg").read_bytes()

    def ref(path: str, data: bytes = good) -> dict:
        return {"path": path, "sha256": sha(data)}

    good_path = str(folder / "good.jpg")
    return [
        (ref("bad/good.jpg"), 400, "INVALID_PATH"),
        (ref(f"{folder}/../bad/good.jpg"), 400, "INVALID_PATH"),
        (ref(f"{good_path}\0.png"), 400, "INVALID_PATH"),
        (ref(f"{folder}/{'x' * 5000}.jpg"), 400, "READ_ERROR"),  # a name too long
        (ref(str(roots.parent / "outside" / "secret.jpg"), secret), 403, "PATH_NOT_ALLOWED"),
        (ref(str(folder / "link-out.jpg"), secret), 403, "PATH_NOT_ALLOWED"),
        (ref("/etc/hostname"), 403, "PATH_NOT_ALLOWED"),
        (ref(str(folder / "missing.jpg")), 404, "FILE_NOT_FOUND"),
        (ref(str(folder / "sub.jpg")), 400, "NOT_A_FILE"),
        (ref(str(folder / "pipe.jpg")), 400, "NOT_A_FILE"),
        (ref(good_path, good + b"x"), 409, "CONTENT_DIFFERS"),
        ({"path": good_path}, 400, "INVALID_SHA256"),
        ({"path": good_path, "sha256": sha(good).upper()}, 400, "INVALID_SHA256"),
        (ref(str(folder / "notes.jpg"), b"shopping list"), 400, "NOT_AN_IMAGE"),
        (ref(str(folder / "big.jpg"), (folder / "big.jpg").read_bytes()), 413,
         "IMAGE_TOO_LARGE"),
        ({**ref(good_path), "url": "http://example.com/a.jpg"}, 400, "INVALID_REQUEST"),
    ]


def test_bad_references_are_refused_with_a_code_and_nothing_is_stored(server, roots):
    counts = server.counts()
    cases = bad_refs(roots)
    for ref, status, code in cases:
        answer = server.client.post(f"/v1/application/{APP}/upload",
                                    json={"fields": {"photo": ref}})
        assert (answer.status_code, answer.json()["code"]) == (status, code), (ref, answer.text)
        assert answer.json()["message"].startswith("fields.photo: "), answer.text
    # In a batch, each image fails alone with the same status and code.
    batch = server.client.post(f"/v1/application/{APP}/upload/batch",
                               json={"images": [ref for ref, _, _ in cases]})
    assert batch.status_code == 200, batch.text
    results = batch.json()["results"]
    assert batch.json()["imported"] == 0
    assert [(result["error"]["status"], result["error"]["code"]) for result in results] == \
        [(status, code) for _, status, code in cases]
    # A reference of the wrong shape is the request's error.
    answer = server.client.post(f"/v1/application/{APP}/upload", json={
        "fields": {"photo": {"path": str(roots / "bad" / "good.jpg"), "sha256": 7}}})
    assert (answer.status_code, answer.json()["code"]) == (422, "INVALID_REQUEST")
    assert "fields.photo.sha256" in answer.json()["message"]
    assert server.counts() == counts
    messages = {ref["path"]: result["error"]["message"]
                for (ref, _, _), result in zip(cases, results, strict=True)}
    outside = str(roots.parent / "outside" / "secret.jpg")
    assert outside in messages[outside]
    assert "symbolic link" in messages[str(roots / "bad" / "link-out.jpg")]


def test_a_server_without_import_roots_reads_no_file(tmp_path, tally):
    photo = write_photos(tmp_path / "photos", ["a.jpg"])["a.jpg"]
    api = ApiServer(tmp_path / "home", {}).start()
    try:
        make_application(api.client, tally.endpoint, APP, "tally")
        counts = api.counts()
        answer = api.client.post(f"/v1/application/{APP}/upload", json={
            "fields": {"photo": {"path": str(tmp_path / "photos" / "a.jpg"),
                                 "sha256": sha(photo)}}})
        assert (answer.status_code, answer.json()["code"]) == (403, "IMPORT_ROOTS_UNSET")
        assert "PHANTOSCOPE_IMPORT_ROOTS" in answer.json()["message"]
        assert api.counts() == counts
    finally:
        api.stop()


def test_a_job_item_that_became_a_fifo_is_refused_not_read(roots):
    """A job lists its folder's files, then reads each later: a FIFO put in a file's place
    since fails that item instead of blocking the job's worker."""
    (roots / "swapped").mkdir()
    os.mkfifo(roots / "swapped" / "a.jpg")
    limits = IntakeLimits(max_bytes=LIMIT, max_pixels=10**8, fetch=FetchPolicy())
    with pytest.raises(BadRequestError) as refused:
        read_file(roots / "swapped", "a.jpg", import_roots(str(roots)), limits)
    assert refused.value.code == "NOT_A_FILE"
