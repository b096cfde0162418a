"""Watch jobs over HTTP on a real API server (SQLite, Milvus Lite, a folder) with a real
encoder process and a short scan interval: files added, changed and removed reach the
application, the watch goes on after a restart (changes made while the server was down
included), cancelling stops it, and bad watches are refused with nothing made."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from job_world import make_application, photo_bytes, write_photos

from api_server import ApiServer
from helpers import run_cli

APP = "watched"
SHAPE = {"id", "kind", "application", "field", "pipeline", "state", "total", "done", "failed",
         "errors", "rate", "eta_s"}


@pytest.fixture(scope="module")
def server(tmp_path_factory, roots, tally) -> Iterator[ApiServer]:
    api = ApiServer(tmp_path_factory.mktemp("watch-api"), {
        "PHANTOSCOPE_IMPORT_ROOTS": str(roots), "PHANTOSCOPE_JOB_POLL_S": "0.1",
        "PHANTOSCOPE_WATCH_INTERVAL_S": "0.3", "PHANTOSCOPE_JOB_LEASE_S": "5"}).start()
    make_application(api.client, tally.endpoint, APP, "tally")
    yield api
    api.stop()


def new_application(server: ApiServer, name: str) -> None:
    answer = server.client.post(f"/v1/application/{name}", json={
        "fields": {"photo": {"type": "object", "pipeline": f"{APP}-pipe"}}})
    assert answer.status_code == 200, answer.text


def entities(server: ApiServer, app: str) -> dict[str, dict]:
    answer = server.client.get(f"/v1/application/{app}/entity", params={"num": 1000})
    assert answer.status_code == 200, answer.text
    listed = answer.json()
    by_name = {entity["name"]: entity for entity in listed}
    assert len(by_name) == len(listed), listed  # one entity per file
    return by_name


def wait_until(check: Callable[[], bool], what: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def start_watch(server: ApiServer, app: str, folder: Path) -> dict:
    answer = server.client.post("/v1/jobs", json={
        "kind": "watch", "application": app, "source": {"folder": str(folder)},
        "attributes": {"from": "watch"}})
    assert answer.status_code == 200, answer.text
    return answer.json()


def change(path: Path, number: int) -> bytes:
    """New bytes for the file, with a modification time of their own."""
    data = photo_bytes(number)
    path.write_bytes(data)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    return data


def test_a_watch_follows_files_added_changed_and_removed_across_a_restart(server, roots):
    folder = roots / "album"
    photos = write_photos(folder, ["a.jpg", "b.jpg", "sub/c.jpg"], first=100)
    job = start_watch(server, APP, folder)
    assert set(job) == SHAPE
    assert (job["kind"], job["state"], job["total"]) == ("watch", "running", 3)
    assert (job["application"], job["pipeline"]) == (APP, None)
    status = lambda: server.client.get(f"/v1/jobs/{job['id']}").json()  # noqa: E731
    wait_until(lambda: status()["done"] == 3, "the first files are imported")
    first = entities(server, APP)
    assert set(first) == {"a.jpg", "b.jpg", "sub/c.jpg"}
    assert all(entity["attributes"] == {"from": "watch"} for entity in first.values())

    photos["d.jpg"] = photo_bytes(103)
    (folder / "d.jpg").write_bytes(photos["d.jpg"])
    photos["b.jpg"] = change(folder / "b.jpg", 104)
    (folder / "sub" / "c.jpg").unlink()
    wait_until(lambda: set(entities(server, APP)) == {"a.jpg", "b.jpg", "d.jpg"} and
               status()["done"] == 6, "the changes reach the application")
    now = entities(server, APP)
    assert now["a.jpg"]["_id"] == first["a.jpg"]["_id"]  # unchanged: untouched
    assert now["b.jpg"]["_id"] != first["b.jpg"]["_id"]  # changed: replaced
    for name in ("b.jpg", "sub/c.jpg"):  # the entities replaced or removed are gone
        gone = server.client.get(f"/v1/application/{APP}/entity/{first[name]['_id']}")
        assert (gone.status_code, gone.json()["code"]) == (404, "ENTITY_NOT_FOUND")
    for name in ("b.jpg", "d.jpg"):
        image = server.client.get(f"/v1/application/{APP}/entity/{now[name]['_id']}/image")
        assert image.content == photos[name]
    steady = status()
    assert (steady["state"], steady["total"], steady["done"], steady["failed"]) == \
        ("running", 6, 6, 0)
    time.sleep(1)  # several scans of an unchanged folder add nothing
    assert status()["total"] == 6

    server.stop()  # changes while no server runs are found when it starts again
    (folder / "a.jpg").unlink()
    photos["e.jpg"] = photo_bytes(105)
    (folder / "e.jpg").write_bytes(photos["e.jpg"])
    server.start()
    wait_until(lambda: set(entities(server, APP)) == {"b.jpg", "d.jpg", "e.jpg"} and
               status()["done"] == 8, "the watch goes on after a restart")
    after = entities(server, APP)
    assert after["b.jpg"]["_id"] == now["b.jpg"]["_id"]  # nothing imported twice
    assert (status()["state"], status()["total"], status()["failed"]) == ("running", 8, 0)
    assert server.client.get("/v1/jobs").json()[0]["id"] == job["id"]


def test_a_file_that_becomes_unreadable_fails_and_keeps_its_entity_until_removed(server,
                                                                                  roots):
    folder = roots / "broken"
    write_photos(folder, ["x.jpg", "y.jpg"], first=200)
    new_application(server, "broken")
    job = start_watch(server, "broken", folder)
    status = lambda: server.client.get(f"/v1/jobs/{job['id']}").json()  # noqa: E731
    wait_until(lambda: status()["done"] == 2, "the files are imported")
    before = entities(server, "broken")
    (folder / "x.jpg").write_bytes(b"no longer a JPEG")
    wait_until(lambda: status()["failed"] == 1, "the changed file is tried")
    [error] = status()["errors"]
    assert error["item"] == "x.jpg" and error["reason"].startswith("NOT_AN_IMAGE: ")
    assert entities(server, "broken") == before  # all or nothing: the old version stays
    (folder / "x.jpg").unlink()  # its removal reaches the entity that stayed
    wait_until(lambda: set(entities(server, "broken")) == {"y.jpg"}, "the file's removal")
    assert (status()["done"], status()["failed"]) == (3, 1)


def test_cancel_stops_a_watch(server, roots):
    folder = roots / "cancel"
    write_photos(folder, ["one.jpg"], first=300)
    new_application(server, "stopped")
    job = start_watch(server, "stopped", folder)
    wait_until(lambda: server.client.get(f"/v1/jobs/{job['id']}").json()["done"] == 1,
               "the file is imported")
    cancelled = server.client.post(f"/v1/jobs/{job['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["state"] == "cancelled"
    (folder / "two.jpg").write_bytes(photo_bytes(301))
    (folder / "one.jpg").unlink()
    time.sleep(2)  # several scan intervals: no scan happens
    assert set(entities(server, "stopped")) == {"one.jpg"}
    status = server.client.get(f"/v1/jobs/{job['id']}").json()
    assert (status["state"], status["total"], status["done"]) == ("cancelled", 1, 1)
    again = server.client.post(f"/v1/jobs/{job['id']}/cancel")
    assert (again.status_code, again.json()["code"]) == (409, "JOB_FINISHED")
    # a cancelled watch's folder may be watched again; what the first made stays its own
    restarted = start_watch(server, "stopped", folder)
    wait_until(lambda: set(entities(server, "stopped")) == {"one.jpg", "two.jpg"},
               "the new watch")
    assert restarted["total"] == 1
    server.client.post(f"/v1/jobs/{restarted['id']}/cancel")


def test_bad_watches_are_refused_with_a_code_and_nothing_is_made(server, roots):
    outside = roots.parent / "outside"
    (roots / "w-link-out").symlink_to(outside, target_is_directory=True)
    (roots / "w-file.jpg").write_bytes(photo_bytes(400))
    (roots / "w-empty").mkdir()
    new_application(server, "refused")
    taken = start_watch(server, "refused", roots / "w-empty")  # an empty folder may be watched
    assert taken["total"] == 0

    def watch(source: object, **rest: object) -> dict:
        return {"kind": "watch", "application": "refused", "source": source, **rest}

    refused = [
        (watch({"urls": ["http://a/b.jpg"]}), 400, "INVALID_SOURCE"),
        (watch({"s3": "s3://bucket/prefix"}), 400, "INVALID_SOURCE"),
        (watch({"folder": str(roots), "urls": []}), 400, "INVALID_SOURCE"),
        (watch(None), 400, "INVALID_SOURCE"),
        (watch({"folder": "w-empty"}), 400, "INVALID_FOLDER"),
        (watch({"folder": f"{roots}/w-empty/../w-empty"}), 400, "INVALID_FOLDER"),
        (watch({"folder": str(outside)}), 403, "FOLDER_NOT_ALLOWED"),
        (watch({"folder": str(roots / "w-link-out")}), 403, "FOLDER_NOT_ALLOWED"),
        (watch({"folder": str(roots / "w-missing")}), 404, "FOLDER_NOT_FOUND"),
        (watch({"folder": str(roots / "w-file.jpg")}), 400, "NOT_A_FOLDER"),
        (watch({"folder": str(roots / "w-empty")}), 409, "ALREADY_WATCHED"),
        ({**watch({"folder": str(roots / "w-empty")}), "application": "nope"}, 404,
         "APPLICATION_NOT_FOUND"),
        (watch({"folder": str(roots / "w-empty")}, field="nope"), 400, "UNKNOWN_FIELD"),
        (watch({"folder": str(roots / "w-empty")}, attributes={"bad key": 1}), 400,
         "INVALID_ATTRIBUTES"),
    ]
    jobs_before = server.client.get("/v1/jobs").json()
    counts = server.counts()
    for body, code_status, code in refused:
        answer = server.client.post("/v1/jobs", json=body)
        assert (answer.status_code, answer.json()["code"]) == (code_status, code), \
            (body, answer.text)
        assert answer.json()["message"]
    assert [job["id"] for job in server.client.get("/v1/jobs").json()] == \
        [job["id"] for job in jobs_before]
    assert server.counts() == counts
    server.client.post(f"/v1/jobs/{taken['id']}/cancel")


def test_the_jobs_command_starts_a_watch(server, roots):
    write_photos(roots / "by-cli", ["one.jpg", "two.jpg"], first=500)
    new_application(server, "cli-watch")
    env = {"PHANTOSCOPE_URL": server.url, "COLUMNS": "200"}
    started = run_cli("jobs", "start", "watch", "cli-watch", "by-cli", "--attr", "via=cli",
                      env=env, cwd=roots)  # a relative folder is taken from here
    assert started.returncode == 0, started.stdout + started.stderr
    job = int(started.stdout.split()[1].rstrip(":"))
    assert f"job {job}: watch of 2 images into cli-watch, running" in started.stdout
    wait_until(lambda: len(entities(server, "cli-watch")) == 2, "the watch imports")
    assert {e["attributes"]["via"] for e in entities(server, "cli-watch").values()} == {"cli"}
    for wrong in (["by-cli", "--wait"], ["by-cli", "by-cli"], ["http://a/b.jpg"],
                  ["--s3", "s3://bucket/prefix"]):
        refused = run_cli("jobs", "start", "watch", "cli-watch", *wrong, env=env, cwd=roots)
        assert refused.returncode == 2, (wrong, refused.stdout + refused.stderr)
    again = run_cli("jobs", "start", "watch", "cli-watch", "by-cli", env=env, cwd=roots)
    assert again.returncode == 1 and "(ALREADY_WATCHED)" in again.stderr
    assert run_cli("jobs", "cancel", str(job), env=env).returncode == 0
