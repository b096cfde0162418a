"""The issue's must-show: a server SIGKILLed in the middle of `phantoscope import` leaves
nothing that points nowhere, and a resumed import stores each image exactly once.

A real `phantoscope api` process over a Milvus server, PostgreSQL and S3 (moto), a real
encoder process, `phantoscope import` of 300 distinct images as a subprocess; the server is
killed while uploads are in flight (the test watches the upload journal in PostgreSQL).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import sqlalchemy
from PIL import Image, ImageDraw

from api_server import ApiServer
from backends import Backends
from helpers import PHANTOSCOPE, run_cli
from phantoscope.client import PhantoscopeClient
from phantoscope.engine.names import bucket_name
from phantoscope.storage.open_stores import open_object_store
from photos import jpeg, photo

APP = "crash"
# Photos without large uniform areas; each gives 15 different 96x96 crops.
SOURCES = ["astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "retina",
           "stereo_motorcycle", "camera", "coins", "brick", "grass", "gravel", "text",
           "clock", "horse", "colorwheel", "moon", "cell", "page", "hubble_deep_field"]
IMAGES = 300
KILL_AFTER_ENTITIES = 40


def make_images(folder: Path) -> dict[str, Path]:
    """300 distinct small JPEGs by SHA-256: crops of the photos, each stamped with its number."""
    folder.mkdir()
    files: dict[str, Path] = {}
    for number in range(IMAGES):
        source = photo(SOURCES[number // 15]).convert("RGB").resize((480, 288))
        column, row = divmod(number % 15, 3)
        crop = source.crop((column * 96, row * 96, column * 96 + 96, row * 96 + 96))
        ImageDraw.Draw(crop).text((4, 4), str(number), fill=(255, 255 - number % 200, 0))
        data = jpeg(crop.resize((128, 128), Image.Resampling.BILINEAR))
        path = folder / f"{number:03d}.jpg"
        path.write_bytes(data)
        files[hashlib.sha256(data).hexdigest()] = path
    assert len(files) == IMAGES
    return files


def set_up(api: httpx.Client, encoder: str) -> None:
    assert api.post("/v1/operator/regist",
                    json={"name": "enc", "endpoint": encoder}).status_code == 200
    assert api.post("/v1/pipeline/crashpipe", json={"encoder": "enc"}).status_code == 200
    assert api.post(f"/v1/application/{APP}", json={
        "fields": {"image": {"type": "object", "pipeline": "crashpipe"}}}).status_code == 200


def kill_mid_import(server: ApiServer, folder: Path, database: sqlalchemy.Engine) -> int:
    """Start the import, SIGKILL the server once entities exist and an upload is half-done
    (a journal row is open and images without rows are stored); the journal rows the crash
    left."""
    images = open_object_store(server.env["PHANTOSCOPE_OBJECTS"])
    importing = subprocess.Popen(
        [PHANTOSCOPE, "import", APP, str(folder), "--url", server.url, "-c", "4", "-b", "8"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    count = sqlalchemy.text(
        "SELECT (SELECT count(*) FROM entities), (SELECT count(*) FROM pending_uploads)")
    try:
        with database.connect() as connection:
            while importing.poll() is None:
                entities, pending = connection.execute(count).one()
                connection.commit()
                if (entities >= KILL_AFTER_ENTITIES and pending
                        and len(images.keys(bucket_name(APP))) > entities):
                    server.process.kill()
                    break
                time.sleep(0.005)
        server.process.wait(timeout=30)
        output, _ = importing.communicate(timeout=300)
    finally:
        images.close()
        if importing.poll() is None:
            importing.kill()
    print(f"\n--- import cut by the crash (exit {importing.returncode}):\n{output[-1500:]}")
    assert server.process.returncode == -9, "the import ended before the server was killed"
    with database.connect() as connection:
        return int(connection.execute(sqlalchemy.text(
            "SELECT count(*) FROM pending_uploads")).scalar_one())


def check(env: dict[str, str], *, show: bool = False) -> tuple[int, dict]:
    """`phantoscope check --json`: its exit code and report; ``show`` also prints the table
    it shows a person."""
    if show:
        shown = run_cli("check", "--examples", "3", env={**env, "COLUMNS": "150"})
        print(f"--- phantoscope check after the crash (exit {shown.returncode}):\n{shown.stdout}")
    answer = run_cli("check", "--json", env=env)
    assert answer.returncode in (0, 1), answer.stderr
    return answer.returncode, json.loads(answer.stdout)


def test_resumed_import_after_a_killed_server_stores_each_image_once(
    backend_settings, encoder_endpoint, tmp_path
):
    files = make_images(tmp_path / "images")
    env = {**backend_settings(Backends("server", "postgres", "s3")),
           "PHANTOSCOPE_REPAIR_GRACE_S": "0"}
    database = sqlalchemy.create_engine(env["PHANTOSCOPE_META"])
    home = Path(env["PHANTOSCOPE_HOME"])
    server = ApiServer(home, env).start()
    try:
        set_up(server.client, encoder_endpoint)
        left = kill_mid_import(server, tmp_path / "images", database)
    finally:
        server.stop()

    code, report = check(env, show=True)
    found = {problem["kind"]: problem["count"] for problem in report["problems"]}
    print(f"--- journal rows left by the crash: {left}; check found: {found}")
    # Every leftover of the crash is an upload named by the journal: nothing else astray.
    assert found == {"interrupted_uploads": left, "vectors_without_rows": 0,
                     "images_without_rows": 0, "entities_missing_vectors": 0,
                     "entities_missing_images": 0}
    assert code == (1 if left else 0)

    server = ApiServer(home, env).start()  # its start-up repairs the interrupted uploads
    try:
        if left:
            assert f"repaired {left} interrupted upload(s)" in server.log()
        code, report = check(env)  # beside the running server
        assert code == 0 and report["clean"]

        resumed = run_cli("import", APP, str(tmp_path / "images"), "--url", server.url,
                          "-c", "4", "-b", "16", timeout=400)
        print(f"--- resumed import:\n{resumed.stdout[-600:]}")
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr

        with PhantoscopeClient(server.url) as client:
            entities = list(client.entities.iterate(APP))
            assert len(entities) == IMAGES == client.applications.count(APP)
            assert {entity.sha256 for entity in entities} == set(files)
            with ThreadPoolExecutor(8) as pool:
                images = list(pool.map(
                    lambda e: httpx.get(e.image_url, follow_redirects=True, timeout=60),
                    entities))
                tops = list(pool.map(lambda path: client.search(APP, path, topk=1), files.values()))
        for entity, answer in zip(entities, images, strict=True):
            assert answer.status_code == 200
            assert hashlib.sha256(answer.content).hexdigest() == entity.sha256
        for sha256, hits in zip(files, tops, strict=True):
            assert hits and hits[0].entity.sha256 == sha256

        code, report = check(env)
        assert code == 0 and report["clean"]
    finally:
        server.stop()
        database.dispose()
