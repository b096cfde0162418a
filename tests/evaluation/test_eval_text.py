"""`phantoscope eval --text` end to end: the package-photo text set, a real API server and
the default encoder's labels, searched by words."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from api_server import ApiServer
from helpers import OperatorProcess
from phantoscope.cli.eval_commands import eval_command
from phantoscope.photoset import TEXT_PHOTOS, TEXT_QUERIES, build_text_set

ENCODER = "efficientnet-lite0-encoder"


@pytest.fixture(scope="module")
def text_set(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("text-set")
    build_text_set(out)
    return out


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[ApiServer]:
    api = ApiServer(tmp_path_factory.mktemp("eval-text-home"), {}).start()
    yield api
    api.stop()


def invoke(*args: str):
    app = typer.Typer()
    app.command()(eval_command)
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


def make_pipeline(server: ApiServer, endpoint: str) -> str:
    operator, pipeline = f"op-{secrets.token_hex(3)}", f"pipe-{secrets.token_hex(3)}"
    registered = server.client.post(
        "/v1/operator/regist", json={"endpoint": endpoint, "name": operator}
    )
    assert registered.status_code == 200, registered.text
    created = server.client.post(f"/v1/pipeline/{pipeline}", json={"encoder": operator})
    assert created.status_code == 200, created.text
    return pipeline


def test_eval_text_scores_each_query_against_the_judgements(server, text_set, tmp_path):
    out = tmp_path / "out"
    with OperatorProcess(ENCODER) as encoder:
        pipeline = make_pipeline(server, encoder.endpoint)
        result = invoke(str(text_set), "--pipeline", pipeline, "--text", "--k", "5",
                        "--k", "10", "--url", server.url, "--out", str(out))
    assert result.exit_code == 0, result.output
    images = len(TEXT_PHOTOS) * 7
    assert f"{images} images in {len(TEXT_PHOTOS)} classes, {len(TEXT_QUERIES)} text " \
           "queries" in result.output
    for column in ("AP@10", "precision@5", "mAP@10", "p50 ms"):
        assert column in result.output

    report = json.loads((out / "results.json").read_text())
    assert report["queries"] == len(TEXT_QUERIES) and report["images"] == images
    (run,) = report["pipelines"]
    assert run["indexed"] == images and run["skipped"] == []
    queries = {query["text"]: query for query in run["queries"]}
    assert list(queries) == list(TEXT_QUERIES)
    for text, query in queries.items():
        assert query["relevant"] == 7 * len(TEXT_QUERIES[text])
        assert len(query["ranked"]) <= 10
        assert all(0.0 <= value <= 1.0 for value in query["scores"].values())
    # How the server read the words: WordNet reaches classes for these, not for those.
    assert {term["word"] for term in queries["drink"]["terms"]} == {"drink"}
    assert queries["astronaut"]["terms"] == [] and queries["astronaut"]["unmatched"] == [
        "astronaut"]
    assert queries["astronaut"]["ranked"] == []  # no word named a class: nothing found
    assert queries["brick wall"]["unmatched"] == ["brick", "wall"]
    # What the labels find (measured, see README: 1.0 each): the cat, the coffee, the
    # motorcycles; and nothing for a word no class is below.
    for text in ("cat", "coffee", "drink", "vehicle", "motorcycle"):
        assert queries[text]["scores"]["precision@5"] >= 0.8, (text, queries[text])
    for text in ("cat", "coffee"):  # only the relevant photo's copies came back
        assert {hit["label"] for hit in queries[text]["ranked"]} == set(TEXT_QUERIES[text])
    metrics = run["metrics"]  # measured: mAP@10 0.383, precision@5 0.432
    assert 0.3 <= metrics["mAP@10"] <= 1.0 and 0.3 <= metrics["precision@5"] <= 1.0

    # The throw-away application is gone.
    assert server.client.get(f"/v1/application/{run['application']}").status_code == 404


def test_eval_text_needs_the_queries_file(text_set, tmp_path):
    folder = tmp_path / "set"
    for name in ("chelsea", "coffee"):
        (folder / name).mkdir(parents=True)
        (folder / name / "original.jpg").write_bytes((text_set / name / "original.jpg")
                                                     .read_bytes())
    result = invoke(str(folder), "--pipeline", "any", "--text", "--url", "http://127.0.0.1:9")
    assert result.exit_code == 2
    assert "queries.json is missing" in result.output
    (folder / "queries.json").write_text(json.dumps({"cat": ["chelsea", "rocket"]}))
    result = invoke(str(folder), "--pipeline", "any", "--text", "--url", "http://127.0.0.1:9")
    assert result.exit_code == 2
    assert "names classes with no images" in result.output and "rocket" in result.output
