"""`eval_command` end to end against a real API server and a real encoder process."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from api_server import ApiServer
from helpers import OperatorProcess
from phantoscope.cli.eval_commands import eval_command
from phantoscope.photoset import build_photo_set

ENCODER = "efficientnet-lite0-encoder"


@pytest.fixture(scope="module")
def photo_set(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("photo-set")
    build_photo_set(out)
    return out


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[ApiServer]:
    api = ApiServer(tmp_path_factory.mktemp("eval-home"), {}).start()
    yield api
    api.stop()


def make_pipeline(server: ApiServer, endpoint: str) -> str:
    operator, pipeline = f"op-{secrets.token_hex(3)}", f"pipe-{secrets.token_hex(3)}"
    registered = server.client.post(
        "/v1/operator/regist", json={"endpoint": endpoint, "name": operator}
    )
    assert registered.status_code == 200, registered.text
    created = server.client.post(f"/v1/pipeline/{pipeline}", json={"encoder": operator})
    assert created.status_code == 200, created.text
    return pipeline


def invoke(*args: str):
    app = typer.Typer()
    app.command()(eval_command)
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


def application_names(server: ApiServer) -> list[str]:
    return [row["_application_name"] for row in server.client.get("/v1/application/").json()]


def test_eval_reports_metrics_chart_and_json(server, photo_set, tmp_path):
    with OperatorProcess(ENCODER) as encoder:
        pipeline = make_pipeline(server, encoder.endpoint)
        out = tmp_path / "out"
        result = invoke(str(photo_set), "--pipeline", pipeline, "--k", "1", "--k", "5",
                        "--url", server.url, "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "60 images in 10 classes" in result.output
    for column in ("mAP@1", "mAP@5", "recall@5", "precision@5", "p50 ms", "p95 ms"):
        assert column in result.output
    assert pipeline in result.output

    with Image.open(out / "results.png") as chart:
        chart.verify()
        assert chart.format == "PNG"

    report = json.loads((out / "results.json").read_text())
    assert report["ks"] == [1, 5] and report["images"] == 60 and report["classes"] == 10
    (run,) = report["pipelines"]
    assert run["pipeline"] == pipeline and run["indexed"] == 60 and run["skipped"] == []
    assert run["queries_scored"] == 60 and len(run["queries"]) == 60
    metrics = run["metrics"]
    assert set(metrics) == {f"{name}@{k}" for name in ("mAP", "recall", "precision")
                            for k in (1, 5)}
    assert all(0.0 <= value <= 1.0 for value in metrics.values())
    # Measured: mAP@1 = 1.000 and mAP@5 = 0.968 (astronaut and rocket edits confuse it a bit).
    assert metrics["mAP@1"] >= 0.8 and metrics["mAP@5"] >= 0.8
    assert run["latency_ms"]["p50"] > 0 and run["latency_ms"]["p95"] >= run["latency_ms"]["p50"]
    for query in run["queries"]:
        assert query["relevant"] == 5 and len(query["ranked"]) == 5
        assert query["entity_id"] not in [hit["id"] for hit in query["ranked"]]
        assert set(query["scores"]) == {f"{name}@{k}" for name in ("AP", "recall", "precision")
                                        for k in (1, 5)}

    # The throw-away application is gone with everything in it.
    assert server.client.get(f"/v1/application/{run['application']}").status_code == 404
    assert not [name for name in application_names(server) if name.startswith("eval-")]


def test_eval_deletes_the_application_when_the_run_fails(server, photo_set, tmp_path):
    with OperatorProcess(ENCODER) as encoder:
        pipeline = make_pipeline(server, encoder.endpoint)
    # The encoder has stopped: the application is created, then every upload fails.
    result = invoke(str(photo_set), "--pipeline", pipeline, "--url", server.url,
                    "--out", str(tmp_path / "out"))
    assert result.exit_code == 1, result.output
    assert f"pipeline {pipeline}" in result.output
    assert not [name for name in application_names(server) if name.startswith("eval-")]
    assert not (tmp_path / "out").exists()
    assert server.counts()["entities"] == 0


def test_eval_refuses_a_folder_without_classes(tmp_path):
    (tmp_path / "only").mkdir()
    (tmp_path / "only" / "a.jpg").write_bytes(b"not read")
    result = invoke(str(tmp_path), "--pipeline", "any", "--url", "http://127.0.0.1:9")
    assert result.exit_code == 2
    assert "two classes at least" in result.output
