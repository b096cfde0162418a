"""`phantoscope up --api-workers 2` on the embedded stores: two API processes on one port
sharing SQLite and a Milvus Lite database served by a Lite host process; one killed mid-upload
is replaced and what its cut-short uploads wrote is repaired; nothing outlives `up`."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path

import httpx
import pytest
from test_up import start, stop
from test_up_workers import distinct_photos, gone, wait_for

from helpers import child_commands, free_port, run_cli
from photos import PHOTO_NAMES, b64, jpeg, photo

pytestmark = pytest.mark.usefixtures("fixed_ports")  # its `up` takes the operator ports

UPLOAD = "/v1/application/default/upload"


def api_workers(pid: int) -> set[int]:
    return {child for child, command in child_commands(pid) if b"--socket-fd" in command}


def lite_hosts(pid: int) -> set[int]:
    return {child for child, command in child_commands(pid)
            if any(b"lite_host" in part for part in command)}


def served_uploads(log: Path) -> int:
    return sum(f"POST {UPLOAD} 200".encode() in line for line in log.read_bytes().splitlines())


def names(api: httpx.Client) -> list[str]:
    found, page = [], 0
    while batch := api.get("/v1/application/default/entity",
                           params={"num": 100, "page": page}).json():
        found.extend(entity["name"] for entity in batch)
        page += 1
    return found


def test_two_api_processes_share_the_embedded_stores_and_one_killed_is_replaced(tmp_path):
    port = free_port()
    env = {"PHANTOSCOPE_WORKERS": "1", "PHANTOSCOPE_API_WORKERS": "2",
           "PHANTOSCOPE_REPAIR_GRACE_S": "1", "PHANTOSCOPE_REPAIR_INTERVAL_S": "1"}
    home = tmp_path / "home"
    process = start(home, port, env)
    # a new connection each request, so that the kernel spreads them over the workers
    api = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120,
                       limits=httpx.Limits(max_keepalive_connections=0))
    photos = distinct_photos(48)

    def upload(index: int) -> int | None:
        try:
            return api.post(UPLOAD, json={"fields": {"image": {"data": photos[index]}},
                                          "name": f"photo-{index}"}).status_code
        except httpx.TransportError:  # its worker was killed with it in flight
            return None

    try:
        workers = wait_for(lambda: len(api_workers(process.pid)) == 2
                           and api_workers(process.pid))
        hosts = lite_hosts(process.pid)
        assert len(hosts) == 1
        logs = home / "logs"
        with ThreadPoolExecutor(6) as pool:
            assert list(pool.map(upload, range(24))) == [200] * 24
        # both processes served uploads, and each one's writes are seen by the other
        served = [served_uploads(logs / "api.log"), served_uploads(logs / "api-2.log")]
        assert sum(served) == 24 and min(served) > 0, served
        query = {"fields": {"image": {"data": photos[5]}}, "topk": 1}
        for _ in range(6):
            assert api.post("/v1/application/default/search", json=query).json()[0][
                "name"] == "photo-5"
        # a copy is refused whichever process stored its original and whichever gets it
        fresh = [b64(jpeg(photo(name))) for name in PHOTO_NAMES[8:16]]
        for index, data in enumerate(fresh):
            assert api.post(UPLOAD, json={"fields": {"image": {"data": data}},
                                          "name": f"fresh-{index}"}).status_code == 200
        for data in fresh:  # each to the process that stored it or not, as the kernel chose
            refused = api.post(UPLOAD, params={"reject_duplicates": "true"},
                               json={"fields": {"image": {"data": data}}})
            assert refused.status_code == 409, refused.text
            assert refused.json()["code"] == "DUPLICATE"

        # one worker killed with uploads in flight: replaced, and nothing half-written stays
        victim = sorted(workers)[1]
        with ThreadPoolExecutor(6) as pool:
            results = [pool.submit(upload, index) for index in range(24, 48)]
            wait_for(lambda: sum(result.done() for result in results) >= 4)
            os.kill(victim, signal.SIGKILL)
            codes = [result.result() for result in results]
        assert set(codes) <= {200, None} and codes.count(None) <= 6, codes  # 6 in flight
        replacement = wait_for(lambda: (api_workers(process.pid) - workers) or None)
        assert len(api_workers(process.pid)) == 2 and len(replacement) == 1
        stored = set(names(api))
        answered = {f"photo-{24 + i}" for i, code in enumerate(codes) if code == 200}
        assert {f"photo-{i}" for i in range(24)} | answered <= stored
        assert stored <= {f"photo-{i}" for i in range(48)} | {f"fresh-{i}" for i in range(8)}
        # the journal repair removes what the killed uploads wrote that no entity uses, and
        # their journal rows (a cut-short upload that had written nothing yet leaves only one)
        wait_for(lambda: _agree(api.get("/v1/settings/stats").json())
                 and _journal_rows(home) == 0, 60)
        counts = api.get("/v1/application/default/entity/count").json()
        assert counts == {"count": len(stored)}
    finally:
        output = stop(process, signal.SIGTERM)
    assert process.returncode == 0, output
    assert "as 2 processes" in output
    assert "API worker process at" in output and f"(pid {victim}) exited" in output
    for pid in workers | replacement | hosts:
        assert gone(pid)

    checked = run_cli("check", "--json", env={**env, "PHANTOSCOPE_HOME": str(home)})
    assert checked.returncode == 0 and json.loads(checked.stdout)["clean"], checked.stdout

    # one API process again (Milvus Lite in it) on the folder the host wrote: all there;
    # then SIGKILL of a two-process `up` leaves nothing behind
    process = start(home, port, {**env, "PHANTOSCOPE_API_WORKERS": "1"})
    try:
        assert set(names(api)) == stored
        query = {"fields": {"image": {"data": b64(jpeg(photo(PHOTO_NAMES[0])))}}, "topk": 1}
        assert api.post("/v1/application/default/search", json=query).json()[0][
            "name"] == "photo-0"
    finally:
        stop(process, signal.SIGTERM)
    process = start(home, port, env)
    children = wait_for(lambda: len(api_workers(process.pid)) == 2 and {
        child for child, _ in child_commands(process.pid)})
    process.kill()
    process.communicate(timeout=30)
    for pid in children:
        wait_for(lambda pid=pid: gone(pid), 30)


def _journal_rows(home: Path) -> int:
    """The upload journal's rows, read from the SQLite file the API processes share."""
    with closing(sqlite3.connect(f"file:{home / 'meta.db'}?mode=ro", uri=True)) as database:
        return database.execute("SELECT count(*) FROM pending_uploads").fetchone()[0]


def _agree(stats: dict[str, int]) -> bool:
    return stats["entities"] == stats["vectors"] == stats["objects"] == stats["vector_rows"]
