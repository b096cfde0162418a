"""Operator replicas: calls spread over them, survive one dying, and use it again on return."""

from __future__ import annotations

import time

from fault_world import SEARCH, UPLOAD, set_up


def test_replicas_share_calls_survive_a_death_and_take_calls_again(tally, start_server):
    first, second = tally(), tally()
    server = start_server(operator_timeout_s="5")
    api = server.client
    endpoints = f"{first.endpoint},{second.endpoint}"
    set_up(api, endpoints)
    operator = api.get("/v1/operator/enc").json()
    assert operator["_endpoint"] == endpoints
    assert operator["_endpoints"] == [first.endpoint, second.endpoint]

    calls = first.calls(), second.calls()
    for _ in range(8):
        assert api.post("/v1/application/app/search", json=SEARCH).status_code == 200
    assert first.calls() - calls[0] >= 3 and second.calls() - calls[1] >= 3
    health = api.get("/v1/operator/enc/health")
    assert health.text == "healthy"
    assert health.headers["Phantoscope-Replicas"] == (
        f"{first.endpoint}=up,{second.endpoint}=up")

    first.process.kill()
    first.process.wait()
    calls = first.calls(), second.calls()
    answers = [api.post("/v1/application/app/upload", json=UPLOAD) for _ in range(5)]
    answers += [api.post("/v1/application/app/search", json=SEARCH) for _ in range(5)]
    assert [answer.status_code for answer in answers] == [200] * 10
    assert first.calls() == calls[0] and second.calls() == calls[1] + 10
    states = {r["endpoint"]: r["state"] for r in api.get("/v1/operator/enc").json()["_replicas"]}
    assert states == {first.endpoint: "down", second.endpoint: "up"}

    first.restart()
    calls = first.calls()
    deadline = time.monotonic() + 15
    while first.calls() == calls and time.monotonic() < deadline:
        assert api.post("/v1/application/app/search", json=SEARCH).status_code == 200
        time.sleep(0.1)
    assert first.calls() > calls, "the restarted replica got no call in 15 s"
    states = {r["endpoint"]: r["state"] for r in api.get("/v1/operator/enc").json()["_replicas"]}
    assert states == {first.endpoint: "up", second.endpoint: "up"}
    assert server.counts()["entities"] == 6


def test_replicas_must_be_one_operator(tally, start_server):
    wide, narrow = tally(), tally(TALLY_DIMENSION="8")
    api = start_server().client

    def register(endpoint: str) -> tuple[int, str, str]:
        answer = api.post("/v1/operator/regist", json={"name": "enc", "endpoint": endpoint})
        body = answer.json()
        return answer.status_code, body.get("code", ""), body.get("message", "")

    status, code, message = register(f"{wide.endpoint},{narrow.endpoint}")
    assert (status, code) == (400, "OPERATOR_REPLICAS_DIFFER")
    assert wide.endpoint in message and narrow.endpoint in message
    assert register(f"{wide.endpoint},not an endpoint")[:2] == (400, "INVALID_ENDPOINT")
    assert register(f"{wide.endpoint},{wide.endpoint}")[:2] == (400, "INVALID_ENDPOINT")
    too_many = ",".join(f"op-{i}.example:50001" for i in range(65))
    assert register(too_many)[:2] == (400, "INVALID_ENDPOINT")
    assert register(f"{'h' * 250}.example:50001")[:2] == (400, "INVALID_ENDPOINT")
    status, code, message = register(f"{wide.endpoint},127.0.0.1:1")
    assert (status, code) == (400, "OPERATOR_UNREACHABLE") and "127.0.0.1:1" in message
    assert api.get("/v1/operator/").json() == []
    status, _, _ = register(f" {wide.endpoint} , {wide.endpoint.replace('127.0.0.1', 'localhost')}")
    assert status == 200
    assert api.get("/v1/operator/enc").json()["_endpoints"] == [
        wide.endpoint, wide.endpoint.replace("127.0.0.1", "localhost")]
