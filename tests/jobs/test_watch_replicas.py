"""A watch shared by two API replicas (real `phantoscope api` processes over PostgreSQL, a
Milvus server and one objects folder), both racing for every scan at a short interval:
each change of the folder becomes exactly one item, each file ends as exactly one entity,
and `phantoscope check` finds nothing wrong."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator

import pytest
import sqlalchemy
from job_world import make_application, photo_bytes, write_photos

from api_server import ApiServer
from backends import drop_database, fresh_database
from helpers import run_cli

FILES = 24


@pytest.fixture
def database() -> Iterator[str]:
    url = fresh_database("postgres")
    yield url
    drop_database(url)


def names_stored(server: ApiServer, app: str) -> list[str]:
    answer = server.client.get(f"/v1/application/{app}/entity", params={"num": 1000})
    assert answer.status_code == 200, answer.text
    return sorted(entity["name"] for entity in answer.json())


def test_two_replicas_scan_a_watched_folder_and_apply_each_change_once(
    database, milvus_uri, tally, tmp_path
):
    folder = tmp_path / "roots" / "watched"
    env = {"PHANTOSCOPE_META": database, "PHANTOSCOPE_VECTORS": milvus_uri,
           "PHANTOSCOPE_OBJECTS": str(tmp_path / "objects"),
           "PHANTOSCOPE_IMPORT_ROOTS": str(tmp_path / "roots"),
           "PHANTOSCOPE_JOB_BATCH_SIZE": "4", "PHANTOSCOPE_JOB_CONCURRENCY": "2",
           "PHANTOSCOPE_JOB_POLL_S": "0.05", "PHANTOSCOPE_WATCH_INTERVAL_S": "0.1",
           "PHANTOSCOPE_JOB_LEASE_S": "5"}
    names = [f"{n:02d}.jpg" for n in range(FILES)]
    write_photos(folder, names, first=7000)
    replicas = [ApiServer(tmp_path / f"home-{name}", env).start() for name in "ab"]
    database_engine = sqlalchemy.create_engine(database)
    try:
        first, second = replicas
        make_application(first.client, tally.endpoint, "shared-watch", "tally")
        started = first.client.post("/v1/jobs", json={
            "kind": "watch", "application": "shared-watch", "source": {"folder": str(folder)}})
        assert started.status_code == 200, started.text
        job = started.json()["id"]

        def status() -> dict:
            return second.client.get(f"/v1/jobs/{job}").json()

        deadline = time.monotonic() + 120
        while status()["done"] < FILES:
            assert time.monotonic() < deadline, status()
            time.sleep(0.1)
        for number, name in enumerate(names[:8]):  # changed
            path = folder / name
            path.write_bytes(photo_bytes(7100 + number))
            os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**10))
        for name in names[8:16]:  # removed
            (folder / name).unlink()
        added = [f"new/{n:02d}.jpg" for n in range(8)]
        write_photos(folder, added, first=7200)
        expected = sorted([*names[:8], *names[16:], *added])
        changes = FILES + 24
        while status()["done"] < changes or names_stored(second, "shared-watch") != expected:
            assert time.monotonic() < deadline, status()
            time.sleep(0.1)
        time.sleep(1)  # ten more scan intervals, each raced for by both replicas
        final = status()
        assert (final["state"], final["total"], final["done"], final["failed"]) == \
            ("running", changes, changes, 0)  # no change made two items
        with database_engine.connect() as connection:
            per_item = connection.execute(sqlalchemy.text(
                "SELECT count(*) FROM job_items WHERE job_id = :job GROUP BY item, "
                "coalesce(action, 'import'), coalesce(replaces, 0)"), {"job": job}).scalars()
            assert set(per_item) == {1}
        counts = first.counts()
        assert (counts["entities"], counts["vectors"], counts["objects"]) == (len(expected),) * 3
        assert first.client.post(f"/v1/jobs/{job}/cancel").status_code == 200
    finally:
        for server in replicas:
            server.stop()
        database_engine.dispose()
    checked = run_cli("check", "--json", env={**env, "PHANTOSCOPE_HOME": str(tmp_path / "a")})
    assert checked.returncode == 0 and json.loads(checked.stdout)["clean"], \
        checked.stdout + checked.stderr
