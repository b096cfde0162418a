"""API keys: every route of the app answers no key, a read key and an admin key as specified."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from api_server import ApiServer
from helpers import run_cli
from phantoscope.api.app import create_app
from phantoscope.client import PhantoscopeClient, PhantoscopeError
from phantoscope.config import ServerSettings

READ_KEY = "read-key-0123456789abcdef"
ADMIN_KEY = "admin-key-0123456789abcdef"
KEYS = f"read:{READ_KEY}, admin:{ADMIN_KEY}"

OPEN = {"/healthz", "/readyz", "/v1/settings/ping", "/", "/ui/{path}", "/docs",
        "/docs/oauth2-redirect", "/redoc", "/openapi.json"}
READ_ONLY_POSTS = {"/v1/application/{name}/search", "/v1/pipeline/{name}/test"}
PATH_VALUES = {"name": "nothing-here", "entity_id": "1", "path": "style.css",
               "group": "copies-0", "job_id": "1", "field": "image"}


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[ApiServer]:
    # Listening on every address, with keys: no warning about an open server.
    api = ApiServer(tmp_path_factory.mktemp("keys-home"),
                    {"PHANTOSCOPE_API_KEYS": KEYS, "PHANTOSCOPE_HOST": "0.0.0.0"}).start()
    yield api
    api.stop()


def every_route() -> list[tuple[str, str]]:
    """(method, path template) of every route the app serves, as its middleware sees them."""
    table = create_app(ServerSettings(api_keys=KEYS)).state.route_table
    return sorted({
        (method, template)
        for route, template in zip(table.routes, table.templates(), strict=True)
        for method in getattr(route, "methods", None) or {"GET"}
    })


def concrete(template: str) -> str:
    return template.format(**PATH_VALUES)


def needs(method: str, template: str) -> str | None:
    if template in OPEN:
        return None
    if method in ("GET", "HEAD") or (method == "POST" and template in READ_ONLY_POSTS):
        return "read"
    return "admin"


ROUTES = every_route()


def test_the_route_table_holds_every_documented_route():
    app = create_app(ServerSettings(api_keys=KEYS))
    assert set(app.openapi()["paths"]) <= set(app.state.route_table.templates())
    assert {"/metrics", "/readyz", "/ui/{path}", "/v1/application/{name}/upload"} <= {
        template for _, template in ROUTES}


@pytest.mark.parametrize(("method", "template"), ROUTES, ids=[f"{m} {t}" for m, t in ROUTES])
def test_route_access(server, method, template):
    path = concrete(template)
    role = needs(method, template)
    without = server.client.request(method, path)
    with_read = server.client.request(method, path, headers={"X-API-Key": READ_KEY})
    with_admin = server.client.request(method, path,
                                       headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    if role is None:
        assert without.status_code not in (401, 403), without.text
    else:
        assert without.status_code == 401, without.text
        if method != "HEAD":
            assert without.json()["code"] == "API_KEY_REQUIRED"
        assert without.headers["WWW-Authenticate"].startswith("Bearer")
    if role == "admin":
        assert with_read.status_code == 403, with_read.text
        if method != "HEAD":
            assert with_read.json()["code"] == "API_KEY_FORBIDDEN"
    else:
        assert with_read.status_code not in (401, 403), with_read.text
    assert with_admin.status_code not in (401, 403), with_admin.text


def test_unknown_key_is_refused(server):
    for headers in ({"X-API-Key": "not-a-known-key-at-all"},
                    {"Authorization": "Bearer not-a-known-key-at-all"}):
        answer = server.client.get("/v1/application/", headers=headers)
        assert answer.status_code == 401
        assert answer.json()["code"] == "API_KEY_INVALID"
        assert "invalid_token" in answer.headers["WWW-Authenticate"]
    # Another scheme is no key at all.
    answer = server.client.get("/v1/application/", headers={"Authorization": f"Basic {READ_KEY}"})
    assert answer.json()["code"] == "API_KEY_REQUIRED"


def test_admin_changes_and_read_only_looks(server):
    admin = {"X-API-Key": ADMIN_KEY}
    read = {"X-API-Key": READ_KEY}
    body = {"fields": {"image": {"type": "object", "pipeline": "none"}}}
    refused = server.client.post("/v1/application/gallery", json=body, headers=read)
    assert refused.status_code == 403
    # The admin key gets through to the route, which refuses the unknown pipeline.
    answer = server.client.post("/v1/application/gallery", json=body, headers=admin)
    assert answer.status_code == 404 and answer.json()["code"] == "PIPELINE_NOT_FOUND"
    assert server.client.get("/v1/application/", headers=read).json() == []


def test_metrics_need_a_key(server):
    assert server.client.get("/metrics").status_code == 401
    answer = server.client.get("/metrics", headers={"X-API-Key": READ_KEY})
    assert answer.status_code == 200
    assert "phantoscope_http_requests_total" in answer.text


def test_openapi_documents_the_keys(server):
    schema = server.client.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["headerKey"] == {
        "type": "apiKey", "in": "header", "name": "X-API-Key"}
    assert schema["components"]["securitySchemes"]["bearerKey"]["scheme"] == "bearer"
    search = schema["paths"]["/v1/application/{name}/search"]["post"]
    assert search["security"] == [{"bearerKey": []}, {"headerKey": []}]
    assert "401" in search["responses"] and "403" not in search["responses"]
    assert "403" in schema["paths"]["/v1/application/{name}"]["delete"]["responses"]
    assert schema["paths"]["/healthz"]["get"]["security"] == []


def test_no_warning_with_keys(server):
    assert "without API keys" not in server.log()


def test_python_client_and_cli_send_the_key(server):
    with PhantoscopeClient(server.url, api_key=READ_KEY) as client:
        assert client.applications.list() == []
    with PhantoscopeClient(server.url, api_key="") as client, \
            pytest.raises(PhantoscopeError) as refused:
        client.applications.list()
    assert refused.value.status == 401 and refused.value.code == "API_KEY_REQUIRED"

    listed = run_cli("--api-key", READ_KEY, "app", "list", "--url", server.url)
    assert listed.returncode == 0, listed.stderr
    by_env = run_cli("app", "list", "--url", server.url, env={"PHANTOSCOPE_API_KEY": READ_KEY})
    assert by_env.returncode == 0, by_env.stderr
    without = run_cli("app", "list", "--url", server.url, env={"PHANTOSCOPE_API_KEY": ""})
    assert without.returncode == 1 and "API_KEY_REQUIRED" in without.stderr


@pytest.mark.parametrize(("keys", "message"), [
    (f"read:{READ_KEY},writer:{ADMIN_KEY}", "PHANTOSCOPE_API_KEYS entry 2 is not"),
    (f"admin{ADMIN_KEY}", "PHANTOSCOPE_API_KEYS entry 1 is not"),
    ("read:short", "PHANTOSCOPE_API_KEYS entry 1 (read): a key needs at least 16"),
    (f"read:{READ_KEY},admin:{READ_KEY}", "entry 2 (admin): the same key is given twice"),
])
def test_bad_keys_stop_the_server(tmp_path, keys, message):
    started = run_cli("api", "--port", "1", env={
        "PHANTOSCOPE_HOME": str(tmp_path), "PHANTOSCOPE_API_KEYS": keys})
    assert started.returncode == 2
    assert message in started.stderr
    assert READ_KEY not in started.stderr + started.stdout


def test_open_server_on_every_address_warns(tmp_path):
    api = ApiServer(tmp_path / "home", {"PHANTOSCOPE_HOST": "0.0.0.0",
                                        "PHANTOSCOPE_LOG_FORMAT": "text"}).start()
    try:
        assert api.client.get("/v1/application/").status_code == 200  # open: no key needed
        warning = [line for line in api.log().splitlines() if "without API keys" in line]
        assert warning and " WARNING " in warning[0]
    finally:
        api.stop()


def test_loopback_server_does_not_warn(tmp_path):
    api = ApiServer(tmp_path / "home", {}).start()
    try:
        assert api.client.get("/healthz").json() == {"status": "ok"}
        assert "without API keys" not in api.log()
    finally:
        api.stop()
