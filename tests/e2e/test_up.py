"""`phantoscope up` (what `make run` runs): one command, embedded stores, ready to use."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import time

import httpx
import pytest

from helpers import PHANTOSCOPE, free_port
from phantoscope.operators.rpc_client import OperatorCallError, OperatorClient
from photos import b64, edited_copy, jpeg, photo

pytestmark = pytest.mark.usefixtures("fixed_ports")  # its `up` takes the operator ports


def start(home, port: int, env: dict[str, str] | None = None, *args: str) -> subprocess.Popen:
    process = subprocess.Popen(
        [PHANTOSCOPE, "up", "--port", str(port), *args], stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True, env={**os.environ, "PHANTOSCOPE_HOME": str(home), **(env or {})},
    )
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read()
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/settings/ping").text == "pong":
                return process
        except httpx.TransportError:
            time.sleep(0.3)
    raise AssertionError("phantoscope up did not answer")


def stop(process: subprocess.Popen, stop_signal: int = signal.SIGINT) -> str:
    process.send_signal(stop_signal)
    output, _ = process.communicate(timeout=60)
    return output


def assert_stopped(endpoint: str) -> None:
    with OperatorClient(endpoint, timeout_s=2) as client:
        try:
            client.health()
            raise AssertionError(f"the operator at {endpoint} outlived `phantoscope up`")
        except OperatorCallError as exc:
            assert exc.code == "UNAVAILABLE"


def test_up_serves_a_ready_application_and_ctrl_c_or_sigterm_stops_everything(tmp_path):
    port = free_port()
    api = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120)
    process = start(tmp_path, port)
    try:
        operator = api.get("/v1/operator/efficientnet-lite0").json()
        assert operator["_backend"] == "efficientnet-lite0-encoder"
        assert api.get("/v1/operator/efficientnet-lite0/health").text == "healthy"
        assert api.get("/v1/application/default").json()["_fields"] == {
            "image": {"type": "object", "pipeline": "default"}}
        ids = {}
        for name in ("coffee", "rocket", "chelsea"):
            answer = api.post("/v1/application/default/upload",
                              json={"fields": {"image": {"data": b64(jpeg(photo(name)))}}})
            assert answer.status_code == 200, answer.text
            ids[name] = str(answer.json()[0]["_id"])
        # search by words works on the default application, with no extra step (issue 17)
        assert operator["_labels"] == "imagenet-1k"
        words = api.post("/v1/application/default/search", json={"text": "cat"}).json()
        assert words["hits"][0]["_id"] == ids["chelsea"]
        hits = api.post("/v1/application/default/search", json={
            "fields": {"image": {"data": b64(edited_copy(photo("rocket")))}}, "topk": 3}).json()
        rocket = hits[0]["_id"]
        assert api.get("/docs").status_code == 200
    finally:
        output = stop(process)
    assert process.returncode == 0, output
    assert "application 'default'" in output and str(tmp_path) in output
    assert_stopped(operator["_endpoint"])

    # Restarting keeps everything; SIGTERM (kill, systemd, docker stop) stops it all too.
    # Started with --import-root, the server reads a file under it from its own disk.
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "clock.jpg").write_bytes(jpeg(photo("clock")))
    process = start(tmp_path, port, None, "--import-root", str(photos))
    try:
        assert api.get("/v1/application/default/entity/count").json() == {"count": 3}
        by_path = {"path": str(photos / "clock.jpg"),
                   "sha256": hashlib.sha256((photos / "clock.jpg").read_bytes()).hexdigest()}
        answer = api.post("/v1/application/default/upload", json={"fields": {"image": by_path}})
        assert answer.status_code == 200, answer.text
        stored = api.get(f"/v1/application/default/entity/{answer.json()[0]['_id']}").json()
        assert stored["sha256"] == by_path["sha256"]
        hits = api.post("/v1/application/default/search", json={
            "fields": {"image": {"data": b64(edited_copy(photo("rocket")))}}, "topk": 1}).json()
        assert hits[0]["_id"] == rocket
        endpoint = api.get("/v1/operator/efficientnet-lite0").json()["_endpoint"]
        words = api.post("/v1/application/default/search", data={"text": "coffee"}).json()
        assert words["hits"][0]["_id"] == ids["coffee"]
    finally:
        output = stop(process, signal.SIGTERM)
    assert process.returncode == 0, output
    assert_stopped(endpoint)


def test_up_with_a_local_milvus_server_starts_and_stops_it(tmp_path):
    port = free_port()
    api = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120)
    env = {"PHANTOSCOPE_VECTORS": "milvus-server"}
    process = start(tmp_path, port, env)
    try:
        answer = api.post("/v1/application/default/upload",
                          json={"fields": {"image": {"data": b64(jpeg(photo("rocket")))}}})
        assert answer.status_code == 200, answer.text
        hits = api.post("/v1/application/default/search", json={
            "fields": {"image": {"data": b64(edited_copy(photo("rocket")))}}, "topk": 1}).json()
        rocket = hits[0]["_id"]
    finally:
        output = stop(process)
    assert process.returncode == 0, output
    assert "vectors: http://127.0.0.1:" in output, output
    assert (tmp_path / "milvus-server" / "logs").is_dir()
    milvus_port = int(output.split("vectors: http://127.0.0.1:")[1].split()[0])
    with socket.socket() as probe:  # the Milvus server stopped with `up`
        assert probe.connect_ex(("127.0.0.1", milvus_port)) != 0

    process = start(tmp_path, port, env)  # its data outlives a restart
    try:
        hits = api.post("/v1/application/default/search", json={
            "fields": {"image": {"data": b64(edited_copy(photo("rocket")))}}, "topk": 1}).json()
        assert hits[0]["_id"] == rocket
    finally:
        stop(process)
