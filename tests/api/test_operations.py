"""Operations on a real server: body limits, CORS, /metrics, request ids in JSON logs, and the
health probes as operators and stores go down."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from api_server import ApiServer
from helpers import OperatorProcess, run_cli
from photos import b64, jpeg, photo
from s3_server import s3_test_server

LIMIT = 64 * 1024
ALLOWED = "http://allowed.example"


@pytest.fixture(scope="module")
def histogram_encoder(tmp_path_factory) -> Iterator[OperatorProcess]:
    """The scaffold's colour-histogram encoder: a real operator that starts at once."""
    folder = tmp_path_factory.mktemp("ops-operator") / "histogram"
    made = run_cli("operator", "new", str(folder))
    assert made.returncode == 0, made.stderr
    with OperatorProcess(str(folder)) as operator:
        yield operator


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[ApiServer]:
    api = ApiServer(tmp_path_factory.mktemp("ops-home"), {
        "PHANTOSCOPE_MAX_REQUEST_BYTES": str(LIMIT), "PHANTOSCOPE_CORS_ORIGINS": ALLOWED,
        "PHANTOSCOPE_LOG_FORMAT": "json"}).start()
    yield api
    api.stop()


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def log_entries(server: ApiServer) -> list[dict]:
    lines = (server.home / "api.log").read_text(errors="replace").splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


def setup_application(server: ApiServer, endpoint: str) -> tuple[str, str]:
    """A registered operator, a pipeline and an application on it: (operator, application)."""
    operator, pipeline, app = unique("hist"), unique("pipe"), unique("app")
    api = server.client
    assert api.post("/v1/operator/regist",
                    json={"endpoint": endpoint, "name": operator}).status_code == 200
    assert api.post(f"/v1/pipeline/{pipeline}", json={"encoder": operator}).status_code == 200
    assert api.post(f"/v1/application/{app}", json={
        "fields": {"image": {"type": "object", "pipeline": pipeline}}}).status_code == 200
    return operator, app


# -- request size ---------------------------------------------------------------------------


def test_body_over_the_limit_by_content_length(server):
    answer = server.client.post("/v1/operator/regist", content=b"x" * (LIMIT + 1),
                                headers={"content-type": "application/json"})
    assert answer.status_code == 413
    assert answer.json()["code"] == "REQUEST_TOO_LARGE"


def test_chunked_body_over_the_limit(server):
    def chunks() -> Iterator[bytes]:
        for _ in range(4):
            yield b"y" * (LIMIT // 2)

    answer = server.client.post("/v1/operator/regist", content=chunks(),
                                headers={"content-type": "application/json"})
    assert "content-length" not in answer.request.headers  # sent chunked
    assert answer.status_code == 413
    assert answer.json()["code"] == "REQUEST_TOO_LARGE"


def test_chunked_body_under_the_limit_gets_through(server):
    def chunks() -> Iterator[bytes]:
        yield b'{"endpoint": "127.0.0.1:1", '
        yield b'"name": "unreachable"}'

    answer = server.client.post("/v1/operator/regist", content=chunks(),
                                headers={"content-type": "application/json"})
    # The route read the whole body, then found no operator at that endpoint.
    assert answer.json()["code"] == "OPERATOR_UNREACHABLE", answer.text


# -- CORS -----------------------------------------------------------------------------------


def test_cors_preflight(server):
    asked = {"Access-Control-Request-Method": "POST",
             "Access-Control-Request-Headers": "x-api-key, content-type"}
    allowed = server.client.options("/v1/application/x/search",
                                    headers={"Origin": ALLOWED, **asked})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == ALLOWED
    assert "x-api-key" in allowed.headers["access-control-allow-headers"].lower()
    denied = server.client.options("/v1/application/x/search",
                                   headers={"Origin": "http://elsewhere.example", **asked})
    assert denied.status_code == 400
    assert "access-control-allow-origin" not in denied.headers
    simple = server.client.get("/v1/application/", headers={"Origin": ALLOWED})
    assert simple.headers["access-control-allow-origin"] == ALLOWED
    assert "x-request-id" in simple.headers["access-control-expose-headers"].lower()


# -- request ids and logs --------------------------------------------------------------------


def test_request_id_is_echoed_and_logged(server):
    given = f"trace-{secrets.token_hex(6)}"
    answer = server.client.get("/v1/application/nothing-here", headers={"X-Request-ID": given})
    assert answer.status_code == 404
    assert answer.headers["X-Request-ID"] == given
    (entry,) = [e for e in log_entries(server) if e.get("request_id") == given]
    assert entry["logger"] == "phantoscope.access"
    assert entry["method"] == "GET" and entry["status"] == 404
    assert entry["route"] == "/v1/application/{name}"
    assert entry["path"] == "/v1/application/nothing-here"
    assert entry["client"] == "127.0.0.1" and entry["duration_ms"] >= 0


def test_an_insane_request_id_is_replaced(server):
    for bad in ("has spaces in it", "x" * 129, "quote\"d"):
        answer = server.client.get("/healthz", headers={"X-Request-ID": bad})
        assert re.fullmatch(r"[0-9a-f]{32}", answer.headers["X-Request-ID"])
    generated = server.client.get("/healthz").headers["X-Request-ID"]
    assert any(e.get("request_id") == generated for e in log_entries(server))


# -- metrics --------------------------------------------------------------------------------


def test_metrics_after_an_upload(server, histogram_encoder):
    operator, app = setup_application(server, histogram_encoder.endpoint)
    image = b64(jpeg(photo("rocket").resize((96, 96))))
    upload = server.client.post(f"/v1/application/{app}/upload",
                                json={"fields": {"image": {"data": image}}})
    assert upload.status_code == 200, upload.text
    server.client.get(f"/v1/application/{app}/entity/count")
    text = server.client.get("/metrics").text
    assert re.search(r'phantoscope_http_requests_total\{method="POST",'
                     r'route="/v1/application/\{name\}/upload",status="200"\} 1\.0', text)
    assert re.search(r'phantoscope_http_requests_total\{method="GET",'
                     r'route="/v1/application/\{name\}/entity/count",status="200"\}', text)
    assert 'phantoscope_http_request_seconds_bucket{le="0.005",method="GET",' in text
    assert app not in re.findall(r'route="([^"]*)"', text)  # templates, never raw paths
    assert f'phantoscope_ingested_images_total{{application="{app}"}} 1.0' in text
    assert re.search(rf'phantoscope_operator_call_seconds_count\{{operator="{operator}",'
                     r'outcome="ok"\} [1-9]', text)
    assert f'phantoscope_entities{{application="{app}"}} 1.0' in text
    assert "phantoscope_store_counts_ok 1.0" in text
    assert 'route="/metrics"' not in text


# -- health ---------------------------------------------------------------------------------


def test_healthz(server):
    answer = server.client.get("/healthz")
    assert answer.status_code == 200 and answer.json() == {"status": "ok"}


def test_readyz_names_a_stopped_operator(tmp_path: Path, start_server):
    folder = tmp_path / "histogram"
    assert run_cli("operator", "new", str(folder)).returncode == 0
    operator = OperatorProcess(str(folder)).start()
    try:
        operator.wait_healthy(timeout_s=120)
        server = start_server()
        name, _ = setup_application(server, operator.endpoint)
        ready = server.client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json() == {"status": "ok", "checks": {
            "meta": {"status": "ok"}, "vectors": {"status": "ok"}, "objects": {"status": "ok"},
            f"operator:{name}": {"status": "ok"}}}
        operator.stop()
        down = server.client.get("/readyz")
        assert down.status_code == 503
        body = down.json()
        assert body["status"] == "unavailable"
        assert body["checks"][f"operator:{name}"]["status"] == "unavailable"
        assert body["checks"]["meta"] == {"status": "ok"}
        assert server.client.get("/healthz").status_code == 200  # alive all the same
    finally:
        operator.stop()


def test_readyz_names_a_stopped_object_store(tmp_path: Path, histogram_encoder):
    with s3_test_server() as s3:
        server = ApiServer(tmp_path / "home", {"PHANTOSCOPE_OBJECTS": s3.url_with(max_attempts=1),
                                               "PHANTOSCOPE_LOG_FORMAT": "json"}).start()
        try:
            assert server.client.get("/readyz").status_code == 200
            setup_application(server, histogram_encoder.endpoint)
        except BaseException:
            server.stop()
            raise
    try:  # the S3 server is stopped now
        down = server.client.get("/readyz")
        assert down.status_code == 503, down.text
        checks = down.json()["checks"]
        assert checks["objects"]["status"] == "unavailable" and checks["objects"]["error"]
        assert checks["meta"] == {"status": "ok"} and checks["vectors"] == {"status": "ok"}
        # A request failing on the store: the error the API logs carries the request's id.
        given = f"trace-{secrets.token_hex(6)}"
        failed = server.client.get("/v1/settings/stats", headers={"X-Request-ID": given})
        assert failed.status_code == 503 and failed.json()["code"] == "STORAGE_UNAVAILABLE"
        errors = [e for e in log_entries(server)
                  if e.get("request_id") == given and e["level"] == "ERROR"]
        assert errors and errors[0]["logger"] == "phantoscope.api.error_handlers"
    finally:
        server.stop()
