"""Import jobs from S3 on real API servers with a real encoder and a real S3 server (moto):
the images under a prefix imported, named by their keys under it; the server's S3 endpoint
from PHANTOSCOPE_IMPORT_S3 or, without it, the S3 object store's; bad sources refused with
a code and nothing made."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, unquote, urlsplit

import boto3
import pytest
from job_world import make_application, photo_bytes, wait_for_job

from api_server import ApiServer
from helpers import run_cli

APP = "from-s3"
BUCKET = "s3-import-jobs"


def s3_client(s3_url: str):
    parts = urlsplit(s3_url)
    return boto3.client(
        "s3", endpoint_url=f"http://{parts.hostname}:{parts.port}",
        aws_access_key_id=unquote(parts.username), aws_secret_access_key=unquote(parts.password),
        region_name=parse_qs(parts.query)["region"][0])


@pytest.fixture(scope="module")
def photos(s3_url) -> dict[str, bytes]:
    """The bucket's objects by key."""
    objects = {
        "trip/a.jpg": photo_bytes(800), "trip/day2/b.jpg": photo_bytes(801),
        "trip/day2/c.JPEG": photo_bytes(802), "trip/broken.jpg": b"not a JPEG",
        "trip/notes.txt": b"not an image", "trip/.hidden/d.jpg": photo_bytes(803),
        "trip-2/x.jpg": photo_bytes(804), "only-text/readme.txt": b"text",
    }
    client = s3_client(s3_url)
    client.create_bucket(Bucket=BUCKET)
    for key, data in objects.items():
        client.put_object(Bucket=BUCKET, Key=key, Body=data)
    return objects


@pytest.fixture(scope="module")
def server(tmp_path_factory, s3_url, photos, tally) -> Iterator[ApiServer]:
    """Objects in a folder; S3 sources read from PHANTOSCOPE_IMPORT_S3."""
    api = ApiServer(tmp_path_factory.mktemp("s3-jobs-api"), {
        "PHANTOSCOPE_IMPORT_S3": s3_url, "PHANTOSCOPE_JOB_POLL_S": "0.2",
        "PHANTOSCOPE_JOB_BATCH_SIZE": "2"}).start()
    make_application(api.client, tally.endpoint, APP, "tally")
    yield api
    api.stop()


def entities(server: ApiServer, app: str = APP) -> dict[str, dict]:
    answer = server.client.get(f"/v1/application/{app}/entity", params={"num": 1000})
    assert answer.status_code == 200, answer.text
    return {entity["name"]: entity for entity in answer.json()}


def start(server: ApiServer, source: object, app: str = APP, **rest: object):
    return server.client.post("/v1/jobs", json={
        "kind": "import", "application": app, "source": {"s3": source}, **rest})


def test_the_images_under_a_prefix_are_imported_named_by_their_keys(server, photos):
    started = start(server, f"s3://{BUCKET}/trip", attributes={"from": "s3"})
    assert started.status_code == 200, started.text
    assert started.json()["total"] == 4  # not trip-2/, notes.txt nor .hidden/
    status = wait_for_job(server.client, started.json()["id"])
    assert (status["state"], status["done"], status["failed"]) == ("done", 3, 1)
    [error] = status["errors"]
    assert error["item"] == "broken.jpg" and error["reason"].startswith("NOT_AN_IMAGE: ")
    stored = entities(server)
    assert set(stored) == {"a.jpg", "day2/b.jpg", "day2/c.JPEG"}
    assert all(entity["attributes"] == {"from": "s3"} for entity in stored.values())
    for name, entity in stored.items():
        image = server.client.get(f"/v1/application/{APP}/entity/{entity['_id']}/image")
        assert image.content == photos[f"trip/{name}"]

    # the whole bucket: what is held already (same bytes) is not stored again
    whole = start(server, f"s3://{BUCKET}")
    assert whole.status_code == 200, whole.text
    status = wait_for_job(server.client, whole.json()["id"])
    assert (status["total"], status["done"], status["failed"]) == (5, 4, 1)
    assert set(entities(server)) == {"a.jpg", "day2/b.jpg", "day2/c.JPEG", "trip-2/x.jpg"}


def test_the_jobs_command_imports_an_s3_prefix(server):
    server.client.post("/v1/application/s3-cli", json={
        "fields": {"photo": {"type": "object", "pipeline": f"{APP}-pipe"}}})
    env = {"PHANTOSCOPE_URL": server.url, "COLUMNS": "200"}
    done = run_cli("jobs", "start", "import", "s3-cli", "--s3", f"s3://{BUCKET}/trip/day2/",
                   "--wait", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "import of 2 images into s3-cli" in done.stdout
    assert set(entities(server, "s3-cli")) == {"b.jpg", "c.JPEG"}
    both = run_cli("jobs", "start", "import", "s3-cli", "some/folder", "--s3",
                   f"s3://{BUCKET}/trip", env=env)
    assert both.returncode == 2 and "--s3" in both.stderr


def test_bad_s3_sources_are_refused_with_a_code_and_nothing_is_made(server):
    refused = [
        ("s3://no-such-bucket-here/trip", 404, "BUCKET_NOT_FOUND"),
        (f"s3://{BUCKET}/nothing-here", 400, "NO_IMAGES"),
        (f"s3://{BUCKET}/only-text", 400, "NO_IMAGES"),
        (f"http://{BUCKET}/trip", 400, "INVALID_SOURCE"),
        ("s3://Not_A_Bucket/trip", 400, "INVALID_SOURCE"),
        (f"s3://{BUCKET}/trip?versionId=1", 400, "INVALID_SOURCE"),
        ("s3:///trip", 400, "INVALID_SOURCE"),
        (["s3://a/b"], 400, "INVALID_SOURCE"),
    ]
    jobs_before = server.client.get("/v1/jobs").json()
    counts = server.counts()
    for source, status, code in refused:
        answer = start(server, source)
        assert (answer.status_code, answer.json()["code"]) == (status, code), (source, answer.text)
        assert answer.json()["message"]
    assert server.client.get("/v1/jobs").json() == jobs_before
    assert server.counts() == counts


def test_a_server_keeping_its_objects_in_s3_reads_s3_sources_there(tmp_path, s3_url, photos,
                                                                    tally):
    api = ApiServer(tmp_path / "home", {"PHANTOSCOPE_OBJECTS": s3_url,
                                        "PHANTOSCOPE_JOB_POLL_S": "0.2"}).start()
    try:
        make_application(api.client, tally.endpoint, "s3-objects", "tally")
        started = start(api, f"s3://{BUCKET}/trip/day2", app="s3-objects")
        assert started.status_code == 200, started.text
        status = wait_for_job(api.client, started.json()["id"])
        assert (status["done"], status["failed"]) == (2, 0)
        assert set(entities(api, "s3-objects")) == {"b.jpg", "c.JPEG"}
    finally:
        api.stop()
