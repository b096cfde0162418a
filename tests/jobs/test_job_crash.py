"""Jobs across servers: one SIGKILLed mid-import resumes the job when it starts again, and
two replicas share one job; each image ends stored exactly once and `phantoscope check`
finds nothing wrong. Real `phantoscope api` processes over a Milvus server, PostgreSQL or
MariaDB, and one objects folder."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy
from faults.tally_process import Tally
from job_world import make_application, wait_for_job, write_photos

from api_server import ApiServer
from backends import drop_database, fresh_database
from helpers import run_cli

IMAGES = 200
KILL_AFTER = 40


@pytest.fixture
def shared_env(request, tmp_path, milvus_uri) -> Iterator[callable]:
    """``shared_env(kind)``: PHANTOSCOPE_* settings over a fresh database of ``kind``, the
    session's Milvus server and one objects folder, importing from ``tmp_path/roots``."""
    databases: list[str] = []

    def make(kind: str) -> dict[str, str]:
        databases.append(fresh_database(kind))
        return {"PHANTOSCOPE_META": databases[-1], "PHANTOSCOPE_VECTORS": milvus_uri,
                "PHANTOSCOPE_OBJECTS": str(tmp_path / "objects"),
                "PHANTOSCOPE_IMPORT_ROOTS": str(tmp_path / "roots"),
                "PHANTOSCOPE_JOB_BATCH_SIZE": "8", "PHANTOSCOPE_JOB_LEASE_S": "3",
                "PHANTOSCOPE_JOB_POLL_S": "0.2"}

    yield make
    for url in databases:
        drop_database(url)


def start_import(server: ApiServer, app: str, folder: Path) -> int:
    answer = server.client.post("/v1/jobs", json={
        "kind": "import", "application": app, "source": {"folder": str(folder)}})
    assert answer.status_code == 200, answer.text
    return answer.json()["id"]


def stored_names(server: ApiServer, app: str) -> list[str]:
    names: list[str] = []
    page = 0
    while batch := server.client.get(f"/v1/application/{app}/entity",
                                      params={"num": 100, "page": page}).json():
        names.extend(entity["name"] for entity in batch)
        page += 1
    return names


def assert_clean(env: dict[str, str], home: Path) -> None:
    checked = run_cli("check", "--json", env={**env, "PHANTOSCOPE_HOME": str(home)})
    report = json.loads(checked.stdout)
    assert checked.returncode == 0 and report["clean"], checked.stdout + checked.stderr


def test_a_server_killed_mid_job_resumes_it_and_stores_each_image_once(
    shared_env, tally, tmp_path
):
    # a lease longer than the test: the server started again gives back the claims of the
    # one killed on this host itself, not when their lease runs out
    env = {**shared_env("postgres"), "PHANTOSCOPE_REPAIR_GRACE_S": "0",
           "PHANTOSCOPE_JOB_LEASE_S": "3600"}
    names = [f"{n // 50}/{n:03d}.jpg" for n in range(IMAGES)]
    write_photos(tmp_path / "roots" / "photos", names, first=5000)
    database = sqlalchemy.create_engine(env["PHANTOSCOPE_META"])
    server = ApiServer(tmp_path / "home", env).start()
    try:
        make_application(server.client, tally.endpoint, "killed", "tally")
        job = start_import(server, "killed", tmp_path / "roots" / "photos")
        progress = sqlalchemy.text(
            "SELECT (SELECT count(*) FROM entities), (SELECT count(*) FROM pending_uploads)")
        with database.connect() as connection:
            deadline = time.monotonic() + 120
            while True:
                entities, pending = connection.execute(progress).one()
                connection.commit()
                if entities >= KILL_AFTER and pending:
                    server.process.kill()  # SIGKILL, with an upload in flight
                    break
                assert time.monotonic() < deadline and entities < IMAGES, "no upload to cut"
                time.sleep(0.005)
        server.process.wait(timeout=30)
        with database.connect() as connection:
            states = dict(connection.execute(sqlalchemy.text(
                "SELECT state, count(*) FROM job_items GROUP BY state")).all())
        print(f"\n--- items when killed: {states}")
        assert states.get("claimed") and states.get("pending")

        server = ApiServer(tmp_path / "home", env).start()  # resumes the job on its own
        status = wait_for_job(server.client, job)
        assert (status["state"], status["done"], status["failed"]) == ("done", IMAGES, 0)
        assert sorted(stored_names(server, "killed")) == sorted(names)  # none lost, none doubled
        counts = server.counts()
        assert (counts["entities"], counts["vectors"], counts["objects"]) == (IMAGES,) * 3
    finally:
        server.stop()
        database.dispose()
    assert_clean(env, tmp_path / "home")


def test_two_replicas_share_one_job_without_taking_the_same_item(shared_env, tally, tmp_path):
    env = {**shared_env("mariadb"), "PHANTOSCOPE_JOB_CONCURRENCY": "2"}
    names = [f"{n:03d}.jpg" for n in range(IMAGES)]
    write_photos(tmp_path / "roots" / "photos", names, first=6000)
    replicas = [ApiServer(tmp_path / f"home-{name}", env).start() for name in "ab"]
    database = sqlalchemy.create_engine(env["PHANTOSCOPE_META"])
    try:
        first, second = replicas
        make_application(first.client, tally.endpoint, "shared", "tally")
        job = start_import(first, "shared", tmp_path / "roots" / "photos")
        status = wait_for_job(second.client, job)
        assert (status["state"], status["done"], status["failed"]) == ("done", IMAGES, 0)
        assert sorted(stored_names(second, "shared")) == names
        with database.connect() as connection:
            claims = connection.execute(sqlalchemy.text(
                "SELECT claim FROM job_items WHERE job_id = :job"), {"job": job}).scalars()
            workers = {claim.rsplit(":", 1)[0] for claim in claims}
        pids = {f"{server.process.pid}" for server in replicas}
        assert {worker.rsplit(":", 1)[1] for worker in workers} == pids  # both took items
        assert first.counts()["vectors"] == IMAGES
    finally:
        for server in replicas:
            server.stop()
        database.dispose()
    assert_clean(env, tmp_path / "home-a")


def test_a_server_killed_mid_reindex_resumes_it_and_embeds_each_image_once(
    shared_env, tally, tmp_path
):
    env = {**shared_env("postgres"), "PHANTOSCOPE_REPAIR_GRACE_S": "0"}
    images = 120
    write_photos(tmp_path / "roots" / "photos", [f"{n:03d}.jpg" for n in range(images)],
                 first=7000)
    database = sqlalchemy.create_engine(env["PHANTOSCOPE_META"])
    eight = Tally(tmp_path, TALLY_DIMENSION="8", TALLY_DELAY_S="0.02").start()
    server = ApiServer(tmp_path / "home", env).start()
    try:
        eight.wait_healthy(60)
        make_application(server.client, tally.endpoint, "moved", "tally")
        wait_for_job(server.client, start_import(server, "moved", tmp_path / "roots" / "photos"))
        assert server.client.post("/v1/operator/regist", json={
            "name": "eight", "endpoint": eight.endpoint}).status_code == 200
        assert server.client.post("/v1/pipeline/eight", json={"encoder": "eight"}
                                  ).status_code == 200
        answer = server.client.post("/v1/jobs", json={
            "kind": "reindex", "application": "moved", "pipeline": "eight"})
        assert answer.status_code == 200, answer.text
        job = answer.json()["id"]
        progress = sqlalchemy.text(
            "SELECT (SELECT count(*) FROM vectors WHERE pipeline = 'eight'), "
            "(SELECT count(*) FROM pending_uploads)")
        with database.connect() as connection:
            deadline = time.monotonic() + 120
            while True:
                written, pending = connection.execute(progress).one()
                connection.commit()
                if written >= 16 and pending:
                    server.process.kill()  # SIGKILL, with a reindex write in flight
                    break
                assert time.monotonic() < deadline and written < images, "no write to cut"
                time.sleep(0.002)
        server.process.wait(timeout=30)

        server = ApiServer(tmp_path / "home", env).start()  # resumes the job on its own
        status = wait_for_job(server.client, job)
        assert (status["state"], status["done"], status["failed"]) == ("done", images, 0)
        with database.connect() as connection:
            rows, entities = connection.execute(sqlalchemy.text(
                "SELECT count(*), count(DISTINCT entity_id) FROM vectors "
                "WHERE pipeline = 'eight'")).one()
        assert (rows, entities) == (images, images)  # none lost, none doubled
        assert server.client.post("/v1/application/moved/fields/photo/switch",
                                   json={"pipeline": "eight"}).status_code == 200
        counts = server.counts()
        assert (counts["entities"], counts["vectors"]) == (images, 2 * images)
    finally:
        server.stop()
        eight.stop()
        database.dispose()
    assert_clean(env, tmp_path / "home")
