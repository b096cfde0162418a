"""An upload that fails part-way leaves nothing behind: real faults, no mocks."""

from __future__ import annotations

import sqlalchemy

from backends import Backends
from phantoscope.operators.process import OperatorProcess
from photos import b64, jpeg, photo

UPLOAD = {"fields": {"image": {"data": b64(jpeg(photo("coffee")))}}}


def _setup(api, endpoint: str) -> None:
    assert api.post("/v1/operator/regist",
                    json={"name": "enc", "endpoint": endpoint}).status_code == 200
    assert api.post("/v1/pipeline/pipe", json={"encoder": "enc"}).status_code == 200
    assert api.post("/v1/application/app", json={
        "fields": {"image": {"type": "object", "pipeline": "pipe"}}}).status_code == 200
    assert api.post("/v1/application/app/upload", json=UPLOAD).status_code == 200


def test_failed_metadata_write_removes_the_stored_image_and_vectors(
    start_server, encoder_endpoint
):
    server = start_server(Backends("lite", "postgres", "folder"))
    api = server.client
    _setup(api, encoder_endpoint)
    before = server.counts()
    database = sqlalchemy.create_engine(server.env["PHANTOSCOPE_META"])
    with database.begin() as connection:  # the database now refuses every new entity row
        connection.execute(sqlalchemy.text(
            "ALTER TABLE entities ADD CONSTRAINT refuse_all CHECK (id < 0) NOT VALID"))
    failed = api.post("/v1/application/app/upload", json=UPLOAD)
    assert failed.status_code == 503 and failed.json()["code"] == "STORAGE_UNAVAILABLE"
    assert server.counts() == before  # the image and the vector written first are gone
    with database.begin() as connection:
        connection.execute(sqlalchemy.text("ALTER TABLE entities DROP CONSTRAINT refuse_all"))
    database.dispose()
    assert api.post("/v1/application/app/upload", json=UPLOAD).status_code == 200
    after = server.counts()
    assert (after["entities"], after["vectors"], after["objects"]) == (
        before["entities"] + 1, before["vectors"] + 1, before["objects"] + 1)


def test_operator_gone_mid_life_is_a_503_and_changes_nothing(start_server):
    server = start_server()
    api = server.client
    with OperatorProcess("efficientnet-lite0-encoder") as operator:
        _setup(api, operator.endpoint)
    before = server.counts()
    failed = api.post("/v1/application/app/upload", json=UPLOAD)
    assert failed.status_code == 503 and failed.json()["code"] == "OPERATOR_UNAVAILABLE"
    assert "check that it is running" in failed.json()["message"]
    searched = api.post("/v1/application/app/search", json={**UPLOAD, "topk": 3})
    assert searched.status_code == 503
    health = api.get("/v1/operator/enc/health")
    assert health.status_code == 503 and health.json()["code"] == "OPERATOR_UNAVAILABLE"
    assert server.counts() == before
