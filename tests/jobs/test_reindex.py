"""Reindex jobs and the field switch over HTTP on a real API server (SQLite, Milvus Lite, a
folder) with real gRPC encoders: a field on the 16-d tally encoder reindexed with the 3-d
colour encoder (tests/colour_words.py) while images are uploaded and deleted, searches on
the old pipeline until the switch and on the new one after it (scores computed here), a
switch back within the grace, the old vectors removed after it, an encoder down mid-job,
and bad requests refused with nothing changed."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator

import numpy as np
import pytest
from faults.tally_process import Tally
from job_world import wait_for_job
from PIL import Image

from api_server import ApiServer
from colour_words import ColourEncoder, ColourWordsEncoder, halves, image_vector, png, solid
from helpers import run_cli
from inprocess import serve_in_process

GRACE_S = 5.0
QUERY = (200, 40, 40)
COLOURS = np.random.default_rng(7).integers(0, 256, (40, 2, 3))


class SlowColourEncoder(ColourEncoder):
    """The colour encoder taking 0.2 s an image: a reindex lasts long enough to upload and
    delete while it runs."""

    def run(self, images: list[Image.Image]) -> np.ndarray:
        time.sleep(0.2 * len(images))
        return super().run(images)


def photo(number: int) -> Image.Image:
    left, right = (tuple(int(c) for c in COLOURS[number][side]) for side in (0, 1))
    return halves(left, right)


def tally_vector(image: Image.Image, dimension: int = 16) -> np.ndarray:
    """What tests/faults/tally.py gives an image (16-d unless told)."""
    row = np.asarray(image.convert("L").resize((dimension, 1)), dtype=np.float32).ravel() + 1.0
    return row / np.linalg.norm(row)


def colour_vector(image: Image.Image) -> np.ndarray:
    return image_vector(tuple(np.asarray(image, dtype=np.float64).reshape(-1, 3).mean(0)))


def ok(answer) -> dict | list:
    assert answer.status_code == 200, answer.text
    return answer.json()


@pytest.fixture(scope="module")
def colour() -> Iterator[str]:
    with serve_in_process(SlowColourEncoder()) as served:
        yield f"127.0.0.1:{served.port}"


@pytest.fixture(scope="module")
def words() -> Iterator[str]:
    with serve_in_process(ColourWordsEncoder()) as served:
        yield f"127.0.0.1:{served.port}"


@pytest.fixture(scope="module")
def flaky(tmp_path_factory) -> Iterator[Tally]:
    """An 8-d tally encoder the tests stop and start."""
    with Tally(tmp_path_factory.mktemp("flaky"), TALLY_DIMENSION="8") as encoder:
        yield encoder


@pytest.fixture(scope="module")
def server(tmp_path_factory, tally, colour, words, flaky) -> Iterator[ApiServer]:
    """Pipelines `tallied` (16-d), `coloured` (3-d, slow), `eight` (8-d, the flaky encoder)
    and `worded` (made on the colour encoder, then its encoder made a text encoder in the
    database, as no request can)."""
    home = tmp_path_factory.mktemp("reindex-api")
    api = ApiServer(home, {"PHANTOSCOPE_JOB_POLL_S": "0.2", "PHANTOSCOPE_JOB_BATCH_SIZE": "4",
                           "PHANTOSCOPE_JOB_CONCURRENCY": "1",
                           "PHANTOSCOPE_SWITCH_GRACE_S": str(GRACE_S)}).start()
    for name, endpoint in (("tally", tally.endpoint), ("colour", colour), ("words", words),
                           ("flaky", flaky.endpoint)):
        ok(api.client.post("/v1/operator/regist", json={"name": name, "endpoint": endpoint}))
    for pipeline, encoder in (("tallied", "tally"), ("coloured", "colour"), ("eight", "flaky"),
                              ("worded", "colour")):
        ok(api.client.post(f"/v1/pipeline/{pipeline}", json={"encoder": encoder}))
    with sqlite3.connect(home / "meta.db") as database:
        database.execute("UPDATE pipelines SET encoder = 'words' WHERE name = 'worded'")
    yield api
    api.stop()


def make_app(server: ApiServer, app: str, photos: range, pipeline: str = "tallied"
             ) -> dict[int, int]:
    """An application with image field `photo` on ``pipeline`` holding ``photos``; entity
    ids by photo number."""
    ok(server.client.post(f"/v1/application/{app}", json={
        "fields": {"photo": {"type": "object", "pipeline": pipeline}}}))
    return {number: upload(server, app, number) for number in photos}


def upload(server: ApiServer, app: str, number: int) -> int:
    answer = ok(server.client.post(f"/v1/application/{app}/upload", files={
        "file": (f"p{number:02d}.png", png(photo(number)), "image/png")}))
    return answer[0]["_id"] if isinstance(answer, list) else answer["_id"]


def vectors_by_entity(server: ApiServer, app: str) -> dict[int, list[str]]:
    entities = ok(server.client.get(f"/v1/application/{app}/entity", params={"num": 1000}))
    return {entity["_id"]: sorted(v["pipeline"] for v in entity["vectors"])
            for entity in entities}


def search_scores(server: ApiServer, app: str) -> dict[str, float]:
    hits = ok(server.client.post(f"/v1/application/{app}/search", data={"topk": "100"},
                                 files={"file": ("q.png", png(solid(QUERY)), "image/png")}))
    return {hit["name"]: hit["score"] for hit in hits}


def expected_scores(photos: list[int], vector) -> dict[str, float]:
    query = vector(solid(QUERY))
    return {f"p{n:02d}.png": float(vector(photo(n)) @ query) for n in photos}


def assert_scores(found: dict[str, float], expected: dict[str, float]) -> None:
    assert sorted(found) == sorted(expected)
    for name, score in expected.items():
        assert found[name] == pytest.approx(score, abs=1e-4), name


def start_reindex(server: ApiServer, app: str, pipeline: str) -> dict:
    return ok(server.client.post("/v1/jobs", json={
        "kind": "reindex", "application": app, "field": "photo", "pipeline": pipeline}))


def switch(server: ApiServer, app: str, pipeline: str):
    return server.client.post(f"/v1/application/{app}/fields/photo/switch",
                              json={"pipeline": pipeline})


def test_a_reindex_embeds_every_image_again_and_the_switch_moves_searches(server):
    ids = make_app(server, "moving", range(24))
    job = start_reindex(server, "moving", "coloured")
    assert (job["kind"], job["total"]) == ("reindex", 24)
    assert (job["application"], job["field"], job["pipeline"]) == ("moving", "photo", "coloured")
    for number in (0, 23):  # while the job runs: 4.8 s of the colour encoder's time
        ok(server.client.delete(f"/v1/application/moving/entity/{ids.pop(number)}"))
    for number in (24, 25, 26):
        ids[number] = upload(server, "moving", number)
    assert ok(server.client.get(f"/v1/jobs/{job['id']}"))["state"] == "running"
    assert_scores(search_scores(server, "moving"), expected_scores(sorted(ids), tally_vector))

    status = wait_for_job(server.client, job["id"])
    assert (status["state"], status["failed"], status["errors"]) == ("done", 0, [])
    assert status["done"] == status["total"] >= 24
    ids[27] = upload(server, "moving", 27)  # after the job, before the switch
    assert vectors_by_entity(server, "moving") == {
        entity: ["coloured", "tallied"] for entity in ids.values()}
    assert_scores(search_scores(server, "moving"), expected_scores(sorted(ids), tally_vector))

    answer = ok(switch(server, "moving", "coloured"))
    assert answer == ok(server.client.get("/v1/application/moving"))
    assert answer["_fields"] == {"photo": {"type": "object", "pipeline": "coloured"}}
    assert_scores(search_scores(server, "moving"), expected_scores(sorted(ids), colour_vector))
    counts = server.counts()
    assert counts["vectors"] == counts["vector_rows"]  # the deleted ones left both


def test_switching_back_within_the_grace_needs_no_reindex_and_after_it_the_old_vectors_go(
    server,
):
    ids = make_app(server, "fickle", range(28, 32))
    wait_for_job(server.client, start_reindex(server, "fickle", "coloured")["id"])
    ok(switch(server, "fickle", "coloured"))
    ids[32] = upload(server, "fickle", 32)  # gets the kept pipeline's vectors too
    back = ok(switch(server, "fickle", "tallied"))  # at once: no job
    assert back["_fields"]["photo"]["pipeline"] == "tallied"
    assert_scores(search_scores(server, "fickle"), expected_scores(sorted(ids), tally_vector))
    assert set(map(tuple, vectors_by_entity(server, "fickle").values())) == {
        ("coloured", "tallied")}

    deadline = time.monotonic() + GRACE_S + 30  # then `coloured` is swept from the field
    while set(map(tuple, vectors_by_entity(server, "fickle").values())) != {("tallied",)}:
        assert time.monotonic() < deadline, vectors_by_entity(server, "fickle")
        time.sleep(0.2)
    ids[33] = upload(server, "fickle", 33)
    assert vectors_by_entity(server, "fickle")[ids[33]] == ["tallied"]
    refused = switch(server, "fickle", "coloured")
    assert (refused.status_code, refused.json()["code"]) == (409, "REINDEX_REQUIRED")
    counts = server.counts()
    assert counts["vectors"] == counts["vector_rows"]


def test_an_encoder_down_makes_the_reindex_wait_and_the_switch_wait_for_it(server, flaky):
    make_app(server, "patient", range(34, 38))
    flaky.stop()
    try:
        job = start_reindex(server, "patient", "eight")
        time.sleep(1.0)  # several tries of the job's first batch, all refused by the network
        refused = switch(server, "patient", "eight")
        assert (refused.status_code, refused.json()["code"]) == (409, "REINDEX_NOT_FINISHED")
        assert "running" in refused.json()["message"] or "queued" in refused.json()["message"]
        assert ok(server.client.get(f"/v1/jobs/{job['id']}"))["failed"] == 0
    finally:
        flaky.restart()
    status = wait_for_job(server.client, job["id"], timeout_s=90)
    assert (status["state"], status["done"], status["failed"]) == ("done", 4, 0)
    assert ok(switch(server, "patient", "eight"))["_fields"]["photo"]["pipeline"] == "eight"


def test_uploads_go_on_while_the_pipeline_switched_from_is_down(tmp_path, tally, flaky):
    """Within the grace an upload also gets the vectors of the pipeline switched away from;
    with that one's operator down it is stored without them, and switching back then asks
    for a reindex, which embeds only what is lacking."""
    api = ApiServer(tmp_path / "home", {"PHANTOSCOPE_JOB_POLL_S": "0.2",
                                        "PHANTOSCOPE_SWITCH_GRACE_S": "3600"}).start()
    try:
        for name, endpoint in (("tally", tally.endpoint), ("flaky", flaky.endpoint)):
            ok(api.client.post("/v1/operator/regist", json={"name": name, "endpoint": endpoint}))
        for pipeline, encoder in (("tallied", "tally"), ("eight", "flaky")):
            ok(api.client.post(f"/v1/pipeline/{pipeline}", json={"encoder": encoder}))
        ids = make_app(api, "moving", range(0, 3), pipeline="eight")
        wait_for_job(api.client, start_reindex(api, "moving", "tallied")["id"])
        ok(switch(api, "moving", "tallied"))
        flaky.stop()
        try:
            ids[3] = upload(api, "moving", 3)  # 503 before: `eight` could not embed it
            assert vectors_by_entity(api, "moving")[ids[3]] == ["tallied"]
            refused = switch(api, "moving", "eight")
            assert (refused.status_code, refused.json()["code"]) == (409, "REINDEX_REQUIRED")
            assert "1 image(s)" in refused.json()["message"]
        finally:
            flaky.restart()
        status = wait_for_job(api.client, start_reindex(api, "moving", "eight")["id"])
        assert (status["state"], status["done"], status["failed"]) == ("done", 4, 0)
        ok(switch(api, "moving", "eight"))
        assert set(map(tuple, vectors_by_entity(api, "moving").values())) == {
            ("eight", "tallied")}
        assert_scores(search_scores(api, "moving"), expected_scores(
            sorted(ids), lambda image: tally_vector(image, 8)))
    finally:
        api.stop()


def test_bad_reindex_and_switch_requests_are_refused_and_change_nothing(server):
    make_app(server, "steady", range(36, 38))
    running = start_reindex(server, "steady", "coloured")
    before = (ok(server.client.get("/v1/application/steady")),
              len(ok(server.client.get("/v1/jobs"))))
    reindex = {"kind": "reindex", "application": "steady", "field": "photo"}
    refusals = [
        (server.client.post("/v1/jobs", json={**reindex, "application": "nowhere",
                                              "pipeline": "coloured"}),
         404, "APPLICATION_NOT_FOUND"),
        (server.client.post("/v1/jobs", json={**reindex, "field": "caption",
                                              "pipeline": "coloured"}),
         400, "UNKNOWN_FIELD"),
        (server.client.post("/v1/jobs", json={**reindex, "pipeline": "nothing"}),
         404, "PIPELINE_NOT_FOUND"),
        (server.client.post("/v1/jobs", json={**reindex, "pipeline": ["coloured"]}),
         400, "INVALID_REQUEST"),
        (server.client.post("/v1/jobs", json={**reindex, "pipeline": "worded"}),
         400, "PIPELINE_NOT_IMAGE"),
        (server.client.post("/v1/jobs", json={**reindex, "pipeline": "tallied"}),
         409, "PIPELINE_IN_USE"),
        (server.client.post("/v1/jobs", json={**reindex, "pipeline": "coloured"}),
         409, "REINDEX_RUNNING"),
        (server.client.post("/v1/application/nowhere/fields/photo/switch",
                            json={"pipeline": "coloured"}), 404, "APPLICATION_NOT_FOUND"),
        (server.client.post("/v1/application/steady/fields/caption/switch",
                            json={"pipeline": "coloured"}), 400, "UNKNOWN_FIELD"),
        (switch(server, "steady", "nothing"), 404, "PIPELINE_NOT_FOUND"),
        (switch(server, "steady", "worded"), 400, "PIPELINE_NOT_IMAGE"),
        (switch(server, "steady", "tallied"), 409, "PIPELINE_IN_USE"),
        (switch(server, "steady", "eight"), 409, "REINDEX_REQUIRED"),
        (server.client.delete("/v1/pipeline/coloured"), 409, "PIPELINE_IN_USE"),
    ]
    if ok(server.client.get(f"/v1/jobs/{running['id']}"))["state"] != "done":
        refusals.append((switch(server, "steady", "coloured"), 409, "REINDEX_NOT_FINISHED"))
    for answer, status, code in refusals:
        assert (answer.status_code, answer.json()["code"]) == (status, code), answer.text
        assert answer.json()["message"]
    assert (ok(server.client.get("/v1/application/steady")),
            len(ok(server.client.get("/v1/jobs")))) == before
    wait_for_job(server.client, running["id"])


def test_a_reindex_of_an_empty_field_is_done_at_once(server):
    make_app(server, "empty", range(0))
    job = start_reindex(server, "empty", "coloured")
    assert (job["state"], job["total"]) == ("done", 0)
    assert ok(switch(server, "empty", "coloured"))["_fields"]["photo"]["pipeline"] == "coloured"


def test_the_commands_reindex_and_switch(server):
    make_app(server, "typed", range(38, 40))
    env = {"PHANTOSCOPE_URL": server.url, "COLUMNS": "200"}
    early = run_cli("app", "switch", "typed", "photo", "coloured", env=env)
    assert early.returncode == 1 and "(REINDEX_REQUIRED)" in early.stderr

    started = run_cli("jobs", "start", "reindex", "typed", "coloured", "--field", "photo",
                      "--wait", env=env)
    assert started.returncode == 0, started.stdout + started.stderr
    assert "reindex of 2 images of typed with coloured" in started.stdout
    assert "2 of 2" in started.stdout
    listed = run_cli("jobs", "list", env=env)
    assert listed.returncode == 0 and "typed · photo → coloured" in listed.stdout
    switched = run_cli("app", "switch", "typed", "photo", "coloured", env=env)
    assert switched.returncode == 0, switched.stdout + switched.stderr
    assert "photo → coloured" in switched.stdout
    assert ok(server.client.get("/v1/application/typed"))["_fields"]["photo"] == {
        "type": "object", "pipeline": "coloured"}
    again = run_cli("app", "switch", "typed", "photo", "coloured", env=env)
    assert again.returncode == 1 and "(PIPELINE_IN_USE)" in again.stderr
    bad = run_cli("jobs", "start", "reindex", "typed", "coloured", "tallied", env=env)
    assert bad.returncode == 2 and "one pipeline" in bad.stderr


LABELLED = {  # class -> the two colours of each photo's halves
    "reds": [((220, 20, 20), (200, 40, 30)), ((240, 10, 50), (180, 30, 20)),
             ((210, 60, 40), (250, 20, 10))],
    "blues": [((20, 30, 220), (40, 20, 200)), ((10, 60, 240), (30, 30, 180)),
              ((50, 40, 210), (20, 10, 250))],
}
UNLABELLED = [((20, 200, 40), (40, 220, 20)), ((120, 120, 120), (90, 90, 90))]


def test_eval_compares_the_two_pipelines_on_the_applications_own_images(server, tmp_path):
    ok(server.client.post("/v1/application/judged", json={
        "fields": {"photo": {"type": "object", "pipeline": "tallied"}}}))
    for label, pairs in LABELLED.items():
        (tmp_path / "set" / label).mkdir(parents=True)
        for number, (left, right) in enumerate(pairs):
            data = png(halves(left, right))
            (tmp_path / "set" / label / f"{number}.png").write_bytes(data)
            ok(server.client.post("/v1/application/judged/upload",
                                  files={"file": (f"{label}{number}.png", data, "image/png")}))
    for number, (left, right) in enumerate(UNLABELLED):
        ok(server.client.post("/v1/application/judged/upload", files={
            "file": (f"other{number}.png", png(halves(left, right)), "image/png")}))
    query = {"file": ("q.png", png(solid(QUERY)), "image/png")}
    early = server.client.post("/v1/application/judged/search", files=query,
                               data={"topk": "3", "pipeline": "coloured"})
    assert (early.status_code, early.json()["code"]) == (409, "REINDEX_REQUIRED")
    wait_for_job(server.client, start_reindex(server, "judged", "coloured")["id"])

    found = ok(server.client.post("/v1/application/judged/search", files=query,
                                  data={"topk": "1", "pipeline": "coloured"}))
    best = max((colour_vector(halves(*pair)) @ colour_vector(solid(QUERY)), pair)
               for pair in LABELLED["reds"])
    assert found[0]["score"] == pytest.approx(best[0], abs=1e-4)
    worded = server.client.post("/v1/application/judged/search", json={
        "text": "red", "pipeline": "coloured"})
    assert (worded.status_code, worded.json()["code"]) == (400, "INVALID_REQUEST")

    env = {"PHANTOSCOPE_URL": server.url, "COLUMNS": "200"}
    evaluated = run_cli("eval", str(tmp_path / "set"), "--app", "judged", "--pipeline",
                        "tallied", "--pipeline", "coloured", "-k", "1", "-k", "2", "--out",
                        str(tmp_path / "out"), env=env)
    assert evaluated.returncode == 0, evaluated.stdout + evaluated.stderr
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["application"] == "judged"
    runs = {run["pipeline"]: run for run in results["pipelines"]}
    assert sorted(runs) == ["coloured", "tallied"]
    assert {run["indexed"] for run in runs.values()} == {8}
    assert {len(run["queries"]) for run in runs.values()} == {6}
    assert runs["coloured"]["metrics"]["mAP@2"] == pytest.approx(1.0)
    assert ok(server.client.get("/v1/application/judged"))["_fields"]["photo"][
        "pipeline"] == "tallied"  # nothing switched, nothing uploaded
    assert len(ok(server.client.get("/v1/application/judged/entity"))) == 8
