"""Import jobs over HTTP on a real API server (SQLite, Milvus Lite, a folder) with a real
encoder process: a folder and URLs imported in the background, named and described as
`phantoscope import` does it, progress as the issue shapes it, cancel, an encoder that dies
mid-job, and bad input refused with nothing made."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from job_world import make_application, photo_bytes, wait_for_job, write_photos
from picky import POISON_WIDTH
from PIL import Image

from api_server import ApiServer, aligned_pairs
from helpers import OperatorProcess, folder_server, run_cli
from phantoscope.duplicate_set import COPY_EDITS
from photos import photo

APP = "album"
HERE = Path(__file__).resolve().parent
SHAPE = {"id", "kind", "application", "field", "pipeline", "state", "total", "done", "failed",
         "errors", "rate", "eta_s"}


@pytest.fixture(scope="module")
def server(tmp_path_factory, roots, tally) -> Iterator[ApiServer]:
    api = ApiServer(tmp_path_factory.mktemp("jobs-api"), {
        "PHANTOSCOPE_IMPORT_ROOTS": f"{roots}, {roots.parent / 'missing-root'}",
        "PHANTOSCOPE_ALLOW_PRIVATE_URLS": "true", "PHANTOSCOPE_JOB_POLL_S": "0.2",
        "PHANTOSCOPE_JOB_BATCH_SIZE": "8"}).start()
    make_application(api.client, tally.endpoint, APP, "tally")
    yield api
    api.stop()


@pytest.fixture
def image_host(tmp_path) -> Iterator[tuple[str, Path]]:
    """An HTTP server on loopback serving a folder: its base URL and the folder."""
    with folder_server(tmp_path) as url:
        yield url, tmp_path


def entities(server: ApiServer, app: str = APP) -> dict[str, dict]:
    answer = server.client.get(f"/v1/application/{app}/entity", params={"num": 1000})
    assert answer.status_code == 200, answer.text
    return {entity["name"]: entity for entity in answer.json()}


def test_a_folder_is_imported_in_the_background_named_by_its_paths(server, roots):
    folder = roots / "trip"
    names = [f"day{day}/img_{n:02d}.jpg" for day in (1, 2) for n in range(12)]
    photos = write_photos(folder, names)
    (folder / "day1" / "exif.jpg").write_bytes(photo_bytes(500, "2024:05:01 12:30:00"))
    (folder / ".hidden.jpg").write_bytes(photo_bytes(501))
    (folder / "notes.txt").write_text("not an image")
    (folder / "escape.jpg").symlink_to(roots.parent / "outside" / "secret.jpg")
    (folder / "broken.png").write_bytes(b"\x89PNG not really")

    started = server.client.post("/v1/jobs", json={
        "kind": "import", "application": APP, "source": {"folder": str(folder)},
        "attributes": {"trip": "alps"}})
    assert started.status_code == 200, started.text
    job = started.json()
    assert set(job) == SHAPE and job["kind"] == "import" and job["total"] == 27
    assert (job["application"], job["field"], job["pipeline"]) == (APP, "photo", None)
    assert job["state"] in ("queued", "running")

    status = wait_for_job(server.client, job["id"])
    assert set(status) == SHAPE
    assert (status["state"], status["total"], status["done"], status["failed"]) == \
        ("done", 27, 25, 2)
    reasons = {error["item"]: error["reason"] for error in status["errors"]}
    assert set(reasons) == {"escape.jpg", "broken.png"}
    assert reasons["escape.jpg"].startswith("FILE_OUTSIDE_ROOTS: ")
    assert reasons["broken.png"].startswith("NOT_AN_IMAGE: ")
    assert status["rate"] > 0 and status["eta_s"] == 0

    stored = entities(server)
    assert set(stored) == {*names, "day1/exif.jpg"}
    assert all(entity["attributes"] == {"trip": "alps"} for entity in stored.values())
    assert stored["day1/exif.jpg"]["exif"]["taken_at"].startswith("2024-05-01T12:30:00")
    image = server.client.get(f"/v1/application/{APP}/entity/{stored[names[3]]['_id']}/image")
    assert image.content == photos[names[3]]
    assert server.client.get("/v1/jobs").json()[0] == status  # newest first

    # The same folder again: every image is there already (same bytes), none is doubled.
    again = server.client.post("/v1/jobs", json={
        "kind": "import", "application": APP, "source": {"folder": str(folder)}}).json()
    status = wait_for_job(server.client, again["id"])
    assert (status["done"], status["failed"]) == (25, 2)
    assert len(entities(server)) == 25


def test_an_import_job_aligns_nothing_and_the_listing_finds_its_copies(server, roots, tally):
    make_application(server.client, tally.endpoint, "copies", "tally-copies")
    folder = roots / "copies"
    folder.mkdir()
    for name, edit in (("coffee", "jpeg-95"), ("coffee-mirrored", "mirrored"),
                       ("horse", "jpeg-95")):
        (folder / f"{name}.jpg").write_bytes(COPY_EDITS[edit](photo(name.split("-")[0])).data)
    aligned = aligned_pairs(server.client)
    started = server.client.post("/v1/jobs", json={
        "kind": "import", "application": "copies", "source": {"folder": str(folder)}})
    assert started.status_code == 200, started.text
    status = wait_for_job(server.client, started.json()["id"])
    assert (status["state"], status["done"]) == ("done", 3)
    assert aligned_pairs(server.client) == aligned
    answer = server.client.get("/v1/application/copies/duplicates")
    assert answer.status_code == 200, answer.text
    assert [sorted(each["name"] for each in group["entities"])
            for group in answer.json()["groups"]] == [["coffee-mirrored.jpg", "coffee.jpg"]]


def test_urls_are_fetched_and_named_by_their_files(server, image_host):
    base, folder = image_host
    write_photos(folder, ["a.jpg", "b.jpg", "c.jpg"], first=700)
    urls = [f"{base}/a.jpg", f"{base}/b.jpg", f"{base}/c.jpg", f"{base}/missing.jpg"]
    server.client.post("/v1/application/web", json={
        "fields": {"photo": {"type": "object", "pipeline": f"{APP}-pipe"}}})
    job = server.client.post("/v1/jobs", json={
        "kind": "import", "application": "web", "source": {"urls": urls}}).json()
    status = wait_for_job(server.client, job["id"])
    assert (status["state"], status["total"], status["done"], status["failed"]) == \
        ("done", 4, 3, 1)
    [error] = status["errors"]
    assert error["item"] == urls[3] and error["reason"].startswith("URL_FETCH_FAILED: ")
    assert set(entities(server, "web")) == {"a.jpg", "b.jpg", "c.jpg"}


def _settled(server, job_id: int, quiet_s: float, timeout_s: float) -> dict:
    """The job's status once its count of done items has not moved for ``quiet_s``."""
    deadline = time.monotonic() + timeout_s
    status = server.client.get(f"/v1/jobs/{job_id}").json()
    since = time.monotonic()
    while time.monotonic() - since < quiet_s:
        assert time.monotonic() < deadline, f"the job kept moving: {status}"
        time.sleep(0.2)
        now = server.client.get(f"/v1/jobs/{job_id}").json()
        if now["done"] != status["done"]:
            status, since = now, time.monotonic()
    return status


def test_an_encoder_that_dies_mid_job_makes_the_job_wait_then_finish(server, roots, tally):
    names = [f"{n:03d}.jpg" for n in range(160)]
    write_photos(roots / "outage", names, first=1000)
    server.client.post("/v1/application/outage", json={
        "fields": {"photo": {"type": "object", "pipeline": f"{APP}-pipe"}}})
    job = server.client.post("/v1/jobs", json={
        "kind": "import", "application": "outage",
        "source": {"folder": str(roots / "outage")}}).json()
    deadline = time.monotonic() + 60
    while server.client.get(f"/v1/jobs/{job['id']}").json()["done"] < 16:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    tally.stop()
    try:
        # what was encoded before the stop is still stored (seconds on a loaded machine)
        waiting = _settled(server, job["id"], quiet_s=2, timeout_s=60)
        assert waiting["state"] == "running" and waiting["failed"] == 0
        assert 16 <= waiting["done"] < 160
        time.sleep(1)  # nothing moves while the encoder is down
        assert server.client.get(f"/v1/jobs/{job['id']}").json()["done"] == waiting["done"]
    finally:
        tally.restart()
    status = wait_for_job(server.client, job["id"])
    assert (status["state"], status["done"], status["failed"]) == ("done", 160, 0)
    assert set(entities(server, "outage")) == set(names)


def test_cancel_stops_a_job_and_a_finished_job_cannot_be_cancelled(server, roots, tally):
    names = [f"{n:03d}.jpg" for n in range(120)]
    write_photos(roots / "cancel", names, first=2000)
    server.client.post("/v1/application/cancelled", json={
        "fields": {"photo": {"type": "object", "pipeline": f"{APP}-pipe"}}})
    tally.stop()  # the job cannot move until cancelled
    try:
        job = server.client.post("/v1/jobs", json={
            "kind": "import", "application": "cancelled",
            "source": {"folder": str(roots / "cancel")}}).json()
        cancelled = server.client.post(f"/v1/jobs/{job['id']}/cancel")
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["state"] == "cancelled"
    finally:
        tally.restart()
    time.sleep(2)  # the server's workers find nothing to do for it
    status = server.client.get(f"/v1/jobs/{job['id']}").json()
    assert (status["state"], status["done"], status["failed"]) == ("cancelled", 0, 0)
    assert entities(server, "cancelled") == {}

    again = server.client.post(f"/v1/jobs/{job['id']}/cancel")
    assert (again.status_code, again.json()["code"]) == (409, "JOB_FINISHED")
    assert "nothing to cancel" in again.json()["message"]
    for missing in ("12345", "abc", "-1", str(2**64)):
        answer = server.client.post(f"/v1/jobs/{missing}/cancel")
        assert (answer.status_code, answer.json()["code"]) == (404, "JOB_NOT_FOUND")
        answer = server.client.get(f"/v1/jobs/{missing}")
        assert (answer.status_code, answer.json()["code"]) == (404, "JOB_NOT_FOUND")


def test_an_image_the_encoder_fails_on_fails_alone(server, roots):
    folder = roots / "poison"
    write_photos(folder, [f"{n:02d}.jpg" for n in range(10)], first=3500)
    for red, name in ((200, "bad-a.png"), (100, "bad-b.png")):  # the encoder raises on them
        Image.new("RGB", (POISON_WIDTH, 20), (red, 10, 10)).save(folder / name)
    picky = OperatorProcess("picky:PickyEncoder", env={"PYTHONPATH": str(HERE)})
    with picky:
        make_application(server.client, picky.endpoint, "picky", "picky")
        job = server.client.post("/v1/jobs", json={
            "kind": "import", "application": "picky", "source": {"folder": str(folder)}}).json()
        status = wait_for_job(server.client, job["id"])
    assert (status["state"], status["done"], status["failed"]) == ("done", 10, 2)
    assert {error["item"] for error in status["errors"]} == {"bad-a.png", "bad-b.png"}
    assert all(error["reason"].startswith("OPERATOR_FAILED: ") for error in status["errors"])
    assert len(entities(server, "picky")) == 10


def bad_requests(roots: Path) -> list[tuple[dict, int, str]]:
    outside = roots.parent / "outside"
    (roots / "link-out").symlink_to(outside, target_is_directory=True)
    (roots / "empty").mkdir()
    (roots / "file.jpg").write_bytes(photo_bytes(3000))
    (roots / "ok").mkdir()
    (roots / "ok" / "one.jpg").write_bytes(photo_bytes(3001))

    def job(source: object, **rest: object) -> dict:
        return {"kind": "import", "application": APP, "source": source, **rest}

    return [
        ({**job({"folder": str(roots / "ok")}), "kind": "dance"}, 400, "UNKNOWN_JOB_KIND"),
        ({**job({"folder": str(roots / "ok")}), "application": "nope"}, 404,
         "APPLICATION_NOT_FOUND"),
        ({**job({"folder": str(roots / "ok")}), "application": "bad name!"}, 400,
         "INVALID_NAME"),
        (job({"folder": str(roots / "ok")}, field="nope"), 400, "UNKNOWN_FIELD"),
        (job({"folder": str(roots / "ok")}, attributes={"bad key": 1}), 400,
         "INVALID_ATTRIBUTES"),
        (job({"folder": "ok"}), 400, "INVALID_FOLDER"),
        (job({"folder": f"{roots}/ok/../ok"}), 400, "INVALID_FOLDER"),
        (job({"folder": f"{roots}/../outside"}), 400, "INVALID_FOLDER"),
        (job({"folder": f"{roots}/ok\0"}), 400, "INVALID_FOLDER"),
        (job({"folder": f"{roots}/{'x' * 5000}"}), 400, "INVALID_FOLDER"),
        (job({"folder": str(outside)}), 403, "FOLDER_NOT_ALLOWED"),
        (job({"folder": "/"}), 403, "FOLDER_NOT_ALLOWED"),
        (job({"folder": str(roots / "link-out")}), 403, "FOLDER_NOT_ALLOWED"),
        (job({"folder": str(roots / "missing")}), 404, "FOLDER_NOT_FOUND"),
        (job({"folder": str(roots / "file.jpg")}), 400, "NOT_A_FOLDER"),
        (job({"folder": str(roots / "empty")}), 400, "NO_IMAGES"),
        (job({"folder": 7}), 400, "INVALID_SOURCE"),
        (job(None), 400, "INVALID_SOURCE"),
        (job({"folder": str(roots / "ok"), "urls": ["http://a/b.jpg"]}), 400,
         "INVALID_SOURCE"),
        (job({"s3": "s3://bucket/prefix"}), 403, "IMPORT_S3_UNSET"),  # no S3 endpoint set
        (job({"urls": []}), 400, "INVALID_SOURCE"),
        (job({"urls": "http://a/b.jpg"}), 400, "INVALID_SOURCE"),
        (job({"urls": ["ftp://a/b.jpg"]}), 400, "INVALID_SOURCE"),
        (job({"urls": ["http://a/" + "b" * 3000]}), 400, "INVALID_SOURCE"),
    ]


def test_bad_jobs_are_refused_with_a_code_and_nothing_is_made(server, roots):
    jobs_before = server.client.get("/v1/jobs").json()
    counts = server.counts()
    for body, status, code in bad_requests(roots):
        answer = server.client.post("/v1/jobs", json=body)
        assert (answer.status_code, answer.json()["code"]) == (status, code), (body, answer.text)
        assert answer.json()["message"]
    for body in ([], "import", {"kind": "import"}):
        answer = server.client.post("/v1/jobs", json=body)
        assert answer.status_code in (400, 422), answer.text
    assert server.client.get("/v1/jobs").json() == jobs_before
    assert server.counts() == counts


def test_a_server_without_import_roots_reads_no_folder(tmp_path, tally):
    server = ApiServer(tmp_path / "home", {"PHANTOSCOPE_IMPORT_ROOTS": ""}).start()  # the default
    try:
        make_application(server.client, tally.endpoint, "closed", "tally")
        write_photos(tmp_path / "photos", ["a.jpg"])
        answer = server.client.post("/v1/jobs", json={
            "kind": "import", "application": "closed",
            "source": {"folder": str(tmp_path / "photos")}})
        assert (answer.status_code, answer.json()["code"]) == (403, "IMPORT_ROOTS_UNSET")
        assert "PHANTOSCOPE_IMPORT_ROOTS" in answer.json()["message"]
        assert server.client.get("/v1/jobs").json() == []
    finally:
        server.stop()


def test_the_jobs_commands_start_follow_list_show_and_cancel(server, roots):
    names = [f"{n:02d}.jpg" for n in range(10)]
    write_photos(roots / "cli", names, first=4000)
    server.client.post("/v1/application/cli", json={
        "fields": {"photo": {"type": "object", "pipeline": f"{APP}-pipe"}}})
    env = {"PHANTOSCOPE_URL": server.url, "COLUMNS": "200"}

    started = run_cli("jobs", "start", "import", "cli", "cli", "--attr", "via=cli", "--wait",
                      env=env, cwd=roots)  # a relative folder is taken from here
    assert started.returncode == 0, started.stdout + started.stderr
    job = int(started.stdout.split()[1].rstrip(":"))
    assert f"job {job}: import of 10 images into cli" in started.stdout
    assert "10 of 10" in started.stdout
    assert {entity["attributes"]["via"] for entity in entities(server, "cli").values()} == \
        {"cli"}

    listed = run_cli("jobs", "list", env=env)
    assert listed.returncode == 0 and f"{job}" in listed.stdout and "10/10" in listed.stdout
    assert "cli · photo" in listed.stdout
    shown = run_cli("jobs", "show", str(job), "--json", env=env)
    assert json.loads(shown.stdout) == server.client.get(f"/v1/jobs/{job}").json()

    cancelled = run_cli("jobs", "cancel", str(job), env=env)
    assert cancelled.returncode == 1 and "(JOB_FINISHED)" in cancelled.stderr
    refused = run_cli("jobs", "start", "import", "cli", str(roots.parent / "outside"), env=env)
    assert refused.returncode == 1 and "(FOLDER_NOT_ALLOWED)" in refused.stderr
    unknown = run_cli("jobs", "start", "dance", "cli", str(roots / "cli"), env=env)
    assert unknown.returncode == 2 and "kinds are import" in unknown.stderr
    mixed = run_cli("jobs", "start", "import", "cli", str(roots / "cli"), "http://a/b.jpg",
                    env=env)
    assert mixed.returncode == 2 and "one folder" in mixed.stderr
