"""`phantoscope up --workers 2` and `operator serve --processes 2`: several operator processes,
one that dies started again with no upload lost or doubled, none left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from PIL import ImageOps
from test_up import assert_stopped, start, stop

from helpers import PHANTOSCOPE, child_commands, free_port
from phantoscope.cli.worker_processes import is_free
from phantoscope.operators.rpc_client import OperatorCallError, OperatorClient
from photos import PHOTO_NAMES, b64, jpeg, photo

pytestmark = pytest.mark.usefixtures("fixed_ports")  # its `up` takes the operator ports


def children(pid: int) -> dict[str, int]:
    """The operator processes ``pid`` started: their ``--port`` to their pid."""
    found = {}
    for child, command in child_commands(pid):
        if b"serve" in command and b"--port" in command:
            found[command[command.index(b"--port") + 1].decode()] = child
    return found


def replaced(parent: int, port: str, old: int) -> int | None:
    """The pid of the process ``parent`` started on ``port`` in place of ``old``, if any."""
    new = children(parent).get(port)
    return new if new not in (None, old) else None


def wait_for(condition, timeout_s: float = 60):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    status = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return status == "Z"  # exited, not yet reaped by its parent


def distinct_photos(count: int) -> list[str]:
    """``count`` different base64 JPEGs (photos, mirrored, at several sizes)."""
    images = []
    for index in range(count):
        image = photo(PHOTO_NAMES[index % 8])
        if index // 8 % 2:
            image = ImageOps.mirror(image)
        scale = 1 + index // 16 * 0.25
        images.append(b64(jpeg(image.resize((int(image.width * scale),
                                             int(image.height * scale))))))
    return images


def test_up_with_two_workers_survives_an_operator_killed_mid_upload(tmp_path):
    port = free_port()
    api = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120)
    process = start(tmp_path, port, {"PHANTOSCOPE_WORKERS": "2"})
    try:
        operator = api.get("/v1/operator/efficientnet-lite0").json()
        endpoints = operator["_endpoints"]
        assert len(endpoints) == 2
        ports = {endpoint.rpartition(":")[2] for endpoint in endpoints}
        operators = children(process.pid)
        assert set(operators) == ports
        photos = distinct_photos(48)
        uploaded = []

        def upload(index: int) -> int:
            answer = api.post("/v1/application/default/upload", json={
                "fields": {"image": {"data": photos[index]}}, "name": f"photo-{index}"})
            uploaded.append(index)
            return answer.status_code

        victim_port, victim = sorted(operators.items())[1]
        with ThreadPoolExecutor(8) as pool:
            results = [pool.submit(upload, index) for index in range(len(photos))]
            wait_for(lambda: len(uploaded) >= 8)
            os.kill(victim, signal.SIGKILL)  # with uploads in flight on both operators
            codes = [result.result() for result in results]
        assert codes == [200] * len(photos)
        entities = api.get("/v1/application/default/entity",
                           params={"num": 100}).json()
        names = sorted(entity["name"] for entity in entities)
        assert names == sorted(f"photo-{index}" for index in range(len(photos)))  # none doubled
        metrics = api.get("/metrics").text  # the killed one failed calls, retried elsewhere
        assert 'phantoscope_operator_call_seconds_count{operator="efficientnet-lite0",' \
            'outcome="UNAVAILABLE"}' in metrics
        # the killed process was started again on its port, and serves
        restarted = wait_for(lambda: replaced(process.pid, victim_port, victim))
        with OperatorClient(f"127.0.0.1:{victim_port}", timeout_s=5) as client:
            wait_for(lambda: _healthy(client), 120)  # refused until it listens
        answer = api.get("/v1/operator/efficientnet-lite0/health")
        assert answer.text == "healthy"
    finally:
        output = stop(process, signal.SIGTERM)
    assert process.returncode == 0, output
    assert "as 2 processes" in output and "ONNX Runtime threads: 1 each" in output
    assert f"operator process at 127.0.0.1:{victim_port} (pid {victim}) exited" in output
    for endpoint in endpoints:
        assert_stopped(endpoint)
    assert gone(restarted)

    # SIGKILL of `up` leaves no operator process behind; the data is kept.
    process = start(tmp_path, port, {"PHANTOSCOPE_WORKERS": "2"})
    assert api.get("/v1/application/default/entity/count").json() == {"count": len(photos)}
    operators = children(process.pid)
    process.kill()
    process.communicate(timeout=30)
    for pid in operators.values():
        wait_for(lambda pid=pid: gone(pid), 15)


def test_operator_serve_processes_restarts_one_that_dies_and_stops_all(tmp_path):
    port = free_port()
    while not is_free(port + 1):  # two free ports in a row
        port = free_port()
    process = subprocess.Popen(
        [PHANTOSCOPE, "operator", "serve", "efficientnet-lite0-encoder", "--processes", "2",
         "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        for each in (port, port + 1):
            with OperatorClient(f"127.0.0.1:{each}", timeout_s=5) as client:
                wait_for(lambda client=client: _healthy(client), 300)
        operators = children(process.pid)
        assert set(operators) == {str(port), str(port + 1)}
        os.kill(operators[str(port)], signal.SIGKILL)
        wait_for(lambda: replaced(process.pid, str(port), operators[str(port)]))
        with OperatorClient(f"127.0.0.1:{port}", timeout_s=5) as client:
            wait_for(lambda: _healthy(client), 120)
        operators = children(process.pid)
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    assert f"127.0.0.1:{port},127.0.0.1:{port + 1}" in output
    for pid in operators.values():
        assert gone(pid)


def _healthy(client: OperatorClient) -> bool:
    """Whether the operator answers healthy; False while it is not serving yet."""
    try:
        return client.health() == "healthy"
    except OperatorCallError:
        return False
