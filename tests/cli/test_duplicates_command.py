"""`phantoscope duplicates APP` against a real API server with the default encoder: the
groups as a table and as JSON, --kind similar, and --delete-extras (refused without
confirmation, then keeping each group's suggested copy)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from api_server import ApiServer
from helpers import OperatorProcess
from phantoscope.cli.main import app
from phantoscope.duplicate_set import COPY_EDITS, NEAR_SHOTS
from photos import b64, photo

UPLOADS = [("coffee", "original"), ("coffee", "jpeg-50"), ("coffee", "resized-50"),
           ("coffee", "near-window-75-centre"), ("clock", "original"), ("clock", "mirrored"),
           ("horse", "original")]


def _image(name: str, edit: str) -> str:
    picture = photo(name)
    if edit == "original":
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG")
        return b64(buffer.getvalue())
    return b64({**COPY_EDITS, **NEAR_SHOTS}[edit](picture).data)


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[tuple[ApiServer, dict[tuple[str, str], int]]]:
    with OperatorProcess("efficientnet-lite0-encoder") as encoder:
        api_server = ApiServer(tmp_path_factory.mktemp("cli-duplicates") / "home", {}).start()
        try:
            api = api_server.client
            assert api.post("/v1/operator/regist", json={
                "name": "enc", "endpoint": encoder.endpoint}).status_code == 200
            assert api.post("/v1/pipeline/pipe", json={"encoder": "enc"}).status_code == 200
            assert api.post("/v1/application/album", json={
                "fields": {"image": {"type": "object", "pipeline": "pipe"}}}).status_code == 200
            ids = {}
            for name, edit in UPLOADS:
                answer = api.post("/v1/application/album/upload", json={
                    "fields": {"image": {"data": _image(name, edit)}}, "name": f"{name}-{edit}"})
                assert answer.status_code == 200, answer.text
                ids[(name, edit)] = answer.json()[0]["_id"]
            yield api_server, ids
        finally:
            api_server.stop()


def cli(server: ApiServer, *args: str, answer: str | None = None):
    return CliRunner().invoke(app, ["duplicates", "album", "--url", server.url, *args],
                              input=answer, env={"COLUMNS": "200"})


def test_the_groups_as_json_and_as_a_table(server):
    api_server, ids = server
    shown = cli(api_server, "--json")
    assert shown.exit_code == 0, shown.output
    groups = json.loads(shown.stdout)
    members = sorted(sorted(each["_id"] for each in group["entities"]) for group in groups)
    assert members == sorted([
        sorted([ids[("coffee", "original")], ids[("coffee", "jpeg-50")],
                ids[("coffee", "resized-50")]]),
        sorted([ids[("clock", "original")], ids[("clock", "mirrored")]])])
    coffee = next(group for group in groups if ids[("coffee", "original")] in
                  [each["_id"] for each in group["entities"]])
    assert coffee["keep"] == ids[("coffee", "original")] and coffee["reason"]

    table = cli(api_server)
    assert table.exit_code == 0, table.output
    assert "coffee-jpeg-50" in table.stdout and "JPEG q50" in table.stdout
    assert f"{coffee['id']}: keep {coffee['keep']}, {coffee['reason']}" in table.stdout
    assert "2 groups, 3 extra copies" in table.stdout

    similar = json.loads(cli(api_server, "--kind", "similar", "--json").stdout)
    assert any(ids[("coffee", "near-window-75-centre")] in [e["_id"] for e in group["entities"]]
               for group in similar)
    bad = cli(api_server, "--kind", "twins")
    assert bad.exit_code == 2


def test_delete_extras_asks_then_keeps_each_suggested_copy(server):
    api_server, ids = server
    before = api_server.counts()
    refused = cli(api_server, "--delete-extras", answer="n\n")
    assert refused.exit_code == 1 and "nothing deleted" in refused.output
    assert api_server.counts() == before
    assert cli(api_server, "--yes").exit_code == 2  # --yes alone confirms nothing

    done = cli(api_server, "--delete-extras", "--yes")
    assert done.exit_code == 0, done.output
    assert "deleted 3 images" in done.stdout
    assert api_server.counts()["entities"] == before["entities"] - 3
    listing = api_server.client.get("/v1/application/album/entity", params={"num": 100})
    left = {entity["_id"] for entity in listing.json()}
    # the suggested copies: the lossless originals
    assert left == {ids[key] for key in (("coffee", "original"), ("clock", "original"),
                                         ("coffee", "near-window-75-centre"),
                                         ("horse", "original"))}
    assert "no groups of copies" in cli(api_server).stdout
