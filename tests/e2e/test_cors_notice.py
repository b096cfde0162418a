"""A browser calling the API from an origin CORS does not allow (the original's preview UI on
its own port) gets one warning per origin in the server's log, naming the setting to change."""

from __future__ import annotations

import json
import time

ORIGINAL_UI = "http://127.0.0.1:8000"


def _cors_warnings(server, count: int) -> list[dict]:
    deadline = time.monotonic() + 10
    while True:
        records = [json.loads(line) for line in server.log().splitlines()
                   if line.startswith("{")]
        found = [r for r in records if r["logger"] == "phantoscope.api.cors"]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_a_refused_origin_is_logged_once_naming_the_setting(start_server):
    server = start_server()
    api = server.client
    for _ in range(3):
        answer = api.get("/v1/application/", headers={"Origin": ORIGINAL_UI})
        assert answer.status_code == 200
        assert "access-control-allow-origin" not in answer.headers  # the browser hides it
    preflight = api.options("/v1/application/", headers={
        "Origin": "http://ui.example", "Access-Control-Request-Method": "POST"})
    assert preflight.status_code in (200, 400, 405)
    api.get("/v1/application/", headers={"Origin": server.url})  # the API's own UI
    warnings = _cors_warnings(server, 2)
    time.sleep(0.5)
    warnings = _cors_warnings(server, 3)
    assert [w["origin"] for w in warnings] == [ORIGINAL_UI, "http://ui.example"], warnings
    for warning in warnings:
        assert warning["level"] == "WARNING"
        assert "PHANTOSCOPE_CORS_ORIGINS" in warning["message"]
        assert warning["origin"] in warning["message"]


def test_an_allowed_origin_is_not_reported(start_server):
    server = start_server(cors_origins=ORIGINAL_UI)
    answer = server.client.get("/v1/application/", headers={"Origin": ORIGINAL_UI})
    assert answer.headers.get("access-control-allow-origin") == ORIGINAL_UI
    server.client.get("/v1/application/", headers={"Origin": "http://other.example"})
    warnings = _cors_warnings(server, 2)
    assert [w["origin"] for w in warnings] == ["http://other.example"], warnings
