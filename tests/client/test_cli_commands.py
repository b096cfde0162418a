"""`phantoscope search` and `phantoscope app|pipeline|operator ...` against a real server."""

from __future__ import annotations

import json
import re
import secrets

import pytest

from helpers import run_cli
from photos import PHOTO_NAMES, edited_copy, jpeg, photo


@pytest.fixture
def cli(server):
    """`phantoscope ARGS` talking to the test server (found through PHANTOSCOPE_URL)."""
    env = {"PHANTOSCOPE_URL": server.url, "COLUMNS": "200"}
    return lambda *args: run_cli(*args, env=env)


def test_search_prints_the_nearest_image_first(cli, client, gallery, tmp_path):
    photos = {name: jpeg(photo(name)) for name in PHOTO_NAMES}
    batch = client.upload_batch(gallery.app, list(photos.values()))
    ids = {name: item.entity.id for name, item in zip(photos, batch.results, strict=True)}
    query = tmp_path / "query.jpg"
    query.write_bytes(edited_copy(photo("rocket")))

    result = cli("search", gallery.app, str(query), "--topk", "3")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("│")]
    assert len(lines) == 3
    first = [cell.strip() for cell in lines[0].strip("│").split("│")]
    assert first[:2] == ["1", str(ids["rocket"])]
    assert f"/v1/application/{gallery.app}/entity/{ids['rocket']}/image" in result.stdout

    result = cli("search", gallery.app, str(query), "-k", "5", "--field", "image", "--json")
    assert result.returncode == 0, result.stderr
    hits = json.loads(result.stdout)
    assert [hit["rank"] for hit in hits] == [1, 2, 3, 4, 5]
    assert hits[0]["id"] == ids["rocket"] and hits[0]["field"] == "image"
    assert hits[0]["score"] > hits[1]["score"] and hits[0]["box"] is None
    assert hits[0]["image_url"].endswith(f"/entity/{ids['rocket']}/image")

    result = cli("search", "no-such-app", str(query))
    assert result.returncode == 1 and "no application named 'no-such-app'" in result.stderr
    result = cli("search", gallery.app, str(tmp_path / "missing.jpg"))
    assert result.returncode == 2 and "does not exist" in result.stderr


def test_create_show_list_delete(cli, client, encoder_endpoint):
    suffix = secrets.token_hex(3)
    operator, pipeline, app = f"enc-{suffix}", f"pipe-{suffix}", f"app-{suffix}"

    result = cli("operator", "create", operator, "--endpoint", encoder_endpoint)
    assert result.returncode == 0, result.stderr
    assert f"registered operator {operator}" in result.stdout and "healthy" in result.stdout
    result = cli("pipeline", "create", pipeline, "--encoder", operator, "--description", "pics")
    assert result.returncode == 0, result.stderr
    assert f"created pipeline {pipeline}" in result.stdout
    result = cli("app", "create", app, "--pipeline", pipeline, "--field", "photo")
    assert result.returncode == 0, result.stderr
    assert client.applications.get(app).image_fields == {"photo": pipeline}

    shown = cli("operator", "show", operator).stdout
    assert "efficientnet-lite0-encoder" in shown and encoder_endpoint in shown
    assert "healthy" in shown and "1280" in shown
    shown = cli("pipeline", "show", pipeline).stdout
    assert operator in shown and "pics" in shown and "IP" in shown
    client.upload(app, jpeg(photo("coins")))
    shown = cli("app", "show", app).stdout
    assert f"photo → {pipeline}" in shown and re.search(r"entities\s+1\b", shown)
    assert operator in cli("operator", "list").stdout
    assert pipeline in cli("pipeline", "list").stdout
    assert app in cli("app", "list").stdout

    # In-use and non-empty things are refused with the API's message; then deleted in order.
    result = cli("operator", "delete", operator)
    assert result.returncode == 1 and f"used by pipeline(s) {pipeline}" in result.stderr
    result = cli("app", "delete", app)
    assert result.returncode == 1 and "APPLICATION_NOT_EMPTY" in result.stderr
    assert cli("app", "delete", app, "--force").returncode == 0
    assert cli("pipeline", "delete", pipeline).returncode == 0
    assert cli("operator", "delete", operator).returncode == 0
    assert app not in cli("app", "list").stdout

    for kind, message in (
        ("app", f"no application named {app!r}"),
        ("pipeline", f"no pipeline named {pipeline!r}"),
        ("operator", f"no operator named {operator!r}"),
    ):
        name = {"app": app, "pipeline": pipeline, "operator": operator}[kind]
        for action in ("show", "delete"):
            result = cli(kind, action, name)
            assert result.returncode == 1, result.stdout
            assert f"error: {message}" in result.stderr, result.stderr


def test_usage_errors(cli, server):
    result = cli("app", "create", "x")
    assert result.returncode == 2 and "give either --pipeline or --fields" in result.stderr
    result = cli("app", "create", "x", "--fields", "{not json")
    assert result.returncode == 2 and "--fields is not valid JSON" in result.stderr
    result = run_cli("app", "list", "--url", "http://127.0.0.1:9")
    assert result.returncode == 1 and "cannot reach http://127.0.0.1:9" in result.stderr


def test_builtins_lists_the_zoo():
    result = run_cli("operator", "builtins")
    assert result.returncode == 0 and "efficientnet-lite0-encoder (default)" in result.stdout
