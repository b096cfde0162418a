"""An operator that dies or hangs mid-request: a 503 naming it, in time, nothing written;
and the next request after it comes back works, with no server restart."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

from fault_world import SEARCH, UPLOAD, set_up, timed

OPERATOR_TIMEOUT_S = 3.0


def _is_operator_unavailable(answer) -> bool:
    body = answer.json()
    return (answer.status_code, body["code"]) == (503, "OPERATOR_UNAVAILABLE") and (
        "'enc'" in body["message"])


def test_operator_killed_mid_upload(tally, start_server):
    operator = tally(TALLY_DELAY_S="1.5")
    server = start_server(operator_timeout_s="10")
    api = server.client
    set_up(api, operator.endpoint)
    before = server.counts()
    calls = operator.calls()
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(timed, api.post, "/v1/application/app/upload", json=UPLOAD)
        deadline = time.monotonic() + 10
        while operator.calls() == calls and time.monotonic() < deadline:
            time.sleep(0.02)
        assert operator.calls() > calls, "the upload never reached the operator"
        operator.process.kill()
        answer, elapsed = pending.result(timeout=30)
    print(f"\nkilled mid-upload: {answer.status_code} after {elapsed:.2f} s")
    assert _is_operator_unavailable(answer), answer.text
    assert server.counts() == before

    operator.restart()
    answer = api.post("/v1/application/app/upload", json=UPLOAD)
    assert answer.status_code == 200, answer.text
    after = server.counts()
    assert (after["entities"], after["vectors"], after["objects"]) == (
        before["entities"] + 1, before["vectors"] + 1, before["objects"] + 1)


def test_operator_hanging_is_a_503_within_the_timeout(tally, start_server):
    operator = tally()
    server = start_server(operator_timeout_s=str(OPERATOR_TIMEOUT_S))
    api = server.client
    set_up(api, operator.endpoint)
    before = server.counts()
    os.kill(operator.process.pid, signal.SIGSTOP)
    try:
        answers = [
            timed(api.post, "/v1/application/app/upload", json=UPLOAD),
            timed(api.post, "/v1/application/app/upload", json=UPLOAD),
            timed(api.post, "/v1/application/app/search", json=SEARCH),
        ]
        health = api.get("/v1/operator/enc/health")
    finally:
        os.kill(operator.process.pid, signal.SIGCONT)
    print("\nhung operator: " + ", ".join(
        f"{answer.status_code} after {elapsed:.2f} s" for answer, elapsed in answers))
    for answer, elapsed in answers:
        assert _is_operator_unavailable(answer), answer.text
        assert elapsed < OPERATOR_TIMEOUT_S + 10
    assert health.status_code == 503
    assert server.counts() == before

    answer = api.post("/v1/application/app/upload", json=UPLOAD)
    assert answer.status_code == 200, answer.text
    assert server.counts()["entities"] == before["entities"] + 1
