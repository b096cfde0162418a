"""`phantoscope import` on a messy folder of 50 image files, run as the command itself: sent
to a server that reads no folders, and read by a server from its own disk where its import
roots allow (as the client's `ServerFile` names a file there)."""

from __future__ import annotations

import hashlib
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from faults.tally_process import Tally
from PIL import Image

from api_server import ApiServer, aligned_pairs
from helpers import run_cli
from image_files import encoded, exif_rotated, png, tiff16, with_alpha
from phantoscope.cli import folder_import
from phantoscope.client import PhantoscopeClient, PhantoscopeError, ServerFile
from photos import PHOTO_NAMES, edited_copy, jpeg, photo

# Photos that only appear in one special form, so a search can tell those files apart.
SPECIAL = ("coffee", "camera", "astronaut", "colorwheel")
# The query photo of the search check: no variant of it is in the folder.
QUERY = "clock"
PLAIN = [name for name in PHOTO_NAMES if name not in SPECIAL]
VARIED = [name for name in PLAIN if name != QUERY]
BROKEN = ("broken/truncated.jpg", "broken/notes.jpg", "broken/empty.png")


def build_folder(root: Path) -> dict[str, bytes]:
    """Write 50 image files (42 distinct good images, 5 repeats, 3 broken) and two files
    that are not images; the good ones by relative path."""
    files: dict[str, bytes] = {}
    for index, name in enumerate(PLAIN):  # 16 photos, some deep, some with upper-case names
        folder = ("photos", "photos/2019", "photos/2019/summer/raw")[index % 3]
        suffix = (".jpg", ".JPG", ".jpeg", ".JPEG")[index % 4]
        files[f"{folder}/{name}{suffix}"] = jpeg(photo(name))
    for name in VARIED[:10]:  # 10 edited copies
        files[f"edited/{name}-edited.jpg"] = edited_copy(photo(name))
    for index, name in enumerate(VARIED[10:15]):  # 5 mirrored, as PNG
        mirrored = photo(name).transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        files[f"mirrored/{name}.{'PNG' if index % 2 else 'png'}"] = png(mirrored)
    for name in VARIED[:4]:  # 4 centre crops
        image = photo(name)
        width, height = image.size
        crop = image.crop((width // 4, height // 4, 3 * width // 4, 3 * height // 4))
        files[f"crops/{name}.jpeg"] = jpeg(crop)
    for name, fmt, suffix in zip(
        VARIED[4:7], ("GIF", "WEBP", "BMP"), (".gif", ".Webp", ".bmp"), strict=True
    ):  # 3 turned on their side, in other formats
        files[f"formats/{name}{suffix}"] = encoded(
            photo(name).transpose(Image.Transpose.ROTATE_270), fmt
        )
    files["special/coffee-exif.jpg"] = exif_rotated(photo("coffee"))
    files["special/scans/camera16.tif"] = tiff16(photo("camera").convert("L"))
    files["special/scans/ASTRONAUT16.TIFF"] = tiff16(photo("astronaut"))
    files["special/colorwheel-alpha.PNG"] = with_alpha(photo("colorwheel"))[0]
    assert len(files) == 42 and len(set(files.values())) == 42
    repeats = {
        "copies/chelsea-copy.jpg": files["photos/chelsea.jpg"],
        "copies/deeper/same.JPG": files["special/coffee-exif.jpg"],
        "photos/2019/dup-of-crop.jpg": files[f"crops/{VARIED[0]}.jpeg"],
        "copies/camera16 (1).tiff": files["special/scans/camera16.tif"],
        "mirrored/again.png": next(data for path, data in files.items() if "mirrored/" in path),
    }
    broken = {
        BROKEN[0]: jpeg(photo("moon"))[:3000],
        BROKEN[1]: b"shopping list: milk, eggs\n",
        BROKEN[2]: b"",
    }
    for path, data in {**files, **repeats, **broken}.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    (root / "notes.txt").write_text("not an image")
    (root / "photos" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    return files


@pytest.fixture
def folder(tmp_path) -> tuple[Path, dict[str, bytes]]:
    root = tmp_path / "pictures"
    return root, build_folder(root)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_import_is_complete_reports_failures_and_resumes(server, client, gallery, folder):
    root, good = folder
    env = {"PHANTOSCOPE_URL": server.url, "COLUMNS": "200"}
    command = ("import", gallery.app, str(root), "--concurrency", "4", "--batch-size", "5")

    aligned = aligned_pairs(server.client)
    first = run_cli(*command, env=env)
    output = first.stdout + first.stderr
    assert first.returncode == 1, output
    assert client.applications.count(gallery.app) == 42
    # Stored without the copy check (nothing aligned); the listing finds the mirrored copies.
    assert aligned_pairs(server.client) == aligned
    groups = [{member.name for member in group.entities}
              for group in client.duplicates.iterate(gallery.app)]
    for name in VARIED[10:15]:  # each original with its mirrored copy (a PNG of mirrored/)
        assert any(any(other.startswith("mirrored/") for other in names)
                   and any(other.startswith("photos/") and other.rsplit("/", 1)[1]
                           .split(".")[0] == name for other in names)
                   for names in groups), (name, groups)
    assert {e.sha256 for e in client.entities.iterate(gallery.app)} == set(map(sha, good.values()))
    for path in BROKEN:
        assert path in output
    assert "NOT_AN_IMAGE" in output
    assert "imported: 42" in output and "failed:   3" in output
    assert "skipped:  5 (already imported: 0, duplicates: 5)" in output
    assert "read by the server" not in output  # this server reads no folders: all were sent
    assert "tip: this server reads no folders, so every file was sent to it; started with " \
        f"`phantoscope up --import-root {root}` (or a folder above; PHANTOSCOPE_IMPORT_ROOTS " \
        "for any server)" in output

    # The special files were decoded as they look: a plain rendering finds each first.
    renderings = {
        "special/coffee-exif.jpg": jpeg(photo("coffee")),
        "special/scans/camera16.tif": jpeg(photo("camera")),
        "special/scans/ASTRONAUT16.TIFF": jpeg(photo("astronaut")),
        "special/colorwheel-alpha.PNG": with_alpha(photo("colorwheel"))[1],
    }
    for path, rendering in renderings.items():
        (hit,) = client.search(gallery.app, rendering, topk=1)
        assert hit.entity.sha256 == sha(good[path]), path

    # A second run imports nothing new; the broken files fail again.
    second = run_cli(*command, env=env)
    output = second.stdout + second.stderr
    assert second.returncode == 1, output
    assert "imported: 0" in output and "failed:   3" in output
    assert "skipped:  47 (already imported: 47, duplicates: 0)" in output
    assert client.applications.count(gallery.app) == 42

    # Without the broken files, everything is skipped and the run succeeds.
    shutil.rmtree(root / "broken")
    third = run_cli(*command, env=env)
    output = third.stdout + third.stderr
    assert third.returncode == 0, output
    assert "all 47 images skipped" in output
    assert client.applications.count(gallery.app) == 42


def test_import_refuses_a_missing_application_or_field(server, gallery, tmp_path):
    (tmp_path / "a.jpg").write_bytes(jpeg(photo("coins")))
    env = {"PHANTOSCOPE_URL": server.url}
    result = run_cli("import", "no-such-app", str(tmp_path), env=env)
    assert result.returncode == 1
    assert "no application named 'no-such-app'" in result.stderr
    result = run_cli("import", gallery.app, str(tmp_path), "--field", "photo", env=env)
    assert result.returncode == 1
    assert "has no image field 'photo' (image fields: image)" in result.stderr


@pytest.fixture(scope="module")
def shared_disk(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("shared-disk")


@pytest.fixture(scope="module")
def reading_server(tmp_path_factory, shared_disk, encoder_endpoint) -> Iterator[ApiServer]:
    """A server that may read ``whole/`` of the shared disk, and only ``photos/`` of
    ``part/pictures``; an encoder and a pipeline `pipe` on it."""
    roots = f"{shared_disk / 'whole'},{shared_disk / 'part' / 'pictures' / 'photos'}"
    api = ApiServer(tmp_path_factory.mktemp("reading-api"),
                    {"PHANTOSCOPE_IMPORT_ROOTS": roots}).start()
    with PhantoscopeClient(api.url) as client:
        client.operators.register("encoder", encoder_endpoint)
        client.pipelines.create("pipe", "encoder")
    yield api
    api.stop()


def imported_names(server: ApiServer, app: str) -> dict[str, str]:
    with PhantoscopeClient(server.url) as client:
        return {entity.name: entity.sha256 for entity in client.entities.iterate(app)}


def test_a_server_reads_the_files_its_roots_allow_and_is_sent_the_rest(reading_server,
                                                                       shared_disk):
    env = {"PHANTOSCOPE_URL": reading_server.url, "COLUMNS": "200"}
    with PhantoscopeClient(reading_server.url) as client:
        for app in ("whole", "part"):
            client.applications.create(app, pipeline="pipe")

    root = shared_disk / "whole" / "pictures"
    good = build_folder(root)
    first = run_cli("import", "whole", str(root), "--batch-size", "5", env=env)
    output = first.stdout + first.stderr
    assert first.returncode == 1, output
    assert "imported: 42" in output and "(42 read by the server from its own disk" in output
    assert "tip:" not in output
    assert "failed:   3" in output and "NOT_AN_IMAGE" in output
    assert "skipped:  5 (already imported: 0, duplicates: 5)" in output
    names = imported_names(reading_server, "whole")
    assert len(names) == 42 and set(names.values()) == set(map(sha, good.values()))
    assert all((root / name).is_file() for name in names)  # named by their paths
    again = run_cli("import", "whole", str(root), env=env)
    output = again.stdout + again.stderr
    assert "imported: 0" in output and "skipped:  47 (already imported: 47" in output

    # Only photos/ of this folder is under the server's roots: it reads those, the rest is
    # sent, and the import is the same.
    root = shared_disk / "part" / "pictures"
    good = build_folder(root)
    result = run_cli("import", "part", str(root), "--batch-size", "5", env=env)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    names = imported_names(reading_server, "part")
    assert len(names) == 42 and set(names.values()) == set(map(sha, good.values()))
    under_roots = sum(name.startswith("photos/") for name in names)
    assert 0 < under_roots < 42
    assert "imported: 42" in output
    assert f"({under_roots} read by the server from its own disk" in output


def test_the_client_names_a_file_the_server_reads(reading_server, shared_disk):
    path = shared_disk / "whole" / "single" / "coins.jpg"
    path.parent.mkdir(parents=True)
    path.write_bytes(jpeg(photo("coins")))
    image = ServerFile(str(path), sha(path.read_bytes()))
    with PhantoscopeClient(reading_server.url) as client:
        client.applications.create("single", pipeline="pipe")
        (entity,) = client.upload("single", image)
        assert (entity.name, entity.sha256) == ("coins.jpg", image.sha256)
        (hit,) = client.search("single", image, topk=1)
        assert hit.id == entity.id
        with pytest.raises(PhantoscopeError) as refused:
            client.upload("single", ServerFile(str(path), sha(b"other bytes")))
        assert (refused.value.status, refused.value.code) == (409, "CONTENT_DIFFERS")
        assert client.applications.count("single") == 1


def test_uploads_start_while_the_files_are_still_hashed(server, client, gallery, tmp_path):
    names = [f"{name}.jpg" for name in PLAIN[:6]]
    for name in names:
        (tmp_path / name).write_bytes(jpeg(photo(name.removesuffix(".jpg"))))
    paths = [tmp_path / name for name in names]

    # Files are sorted one at a time, each new one given out as soon as it is sorted.
    plan, sorted_count = folder_import.Plan(), []
    files = folder_import.plan_import(paths, set(), 2, plan, lambda: sorted_count.append(1))
    first = next(files)
    assert (first.path, len(plan.upload), len(sorted_count)) == (paths[0], 1, 1)
    rest = list(files)
    assert [file.path for file in [first, *rest]] == paths and len(sorted_count) == 6

    # A batch is imported while the next is still to come.
    first_imported = threading.Event()

    def batched():
        yield [first, *rest[:2]]
        assert first_imported.wait(60), "the next batch was wanted before the first went"
        yield rest[2:]

    target = folder_import.Target(gallery.app, "image", tmp_path)
    imported, failures = folder_import.upload_all(
        client, target, batched(), 2, lambda done: first_imported.set(),
        folder_import.ServerReads())
    assert (imported, failures) == (6, [])
    assert {entity.name for entity in client.entities.iterate(gallery.app)} == set(names)


def test_requests_in_flight_grow_with_the_replicas_of_the_encoder(client, gallery, tmp_path):
    assert folder_import.default_concurrency(client, gallery.pipeline) == 4  # one replica
    replicas = [Tally(tmp_path) for _ in range(3)]
    for replica in replicas:
        replica.start()
    try:
        for replica in replicas:
            replica.wait_healthy(60)
        endpoint = ",".join(replica.endpoint for replica in replicas)
        client.operators.register("tally-three", endpoint)
        client.pipelines.create("tally-three", "tally-three")
        assert folder_import.default_concurrency(client, "tally-three") == 6  # 2 a replica
        client.pipelines.delete("tally-three")
        client.operators.delete("tally-three")
    finally:
        for replica in replicas:
            replica.stop()
    # a server that does not say (no such pipeline): the plain default
    assert folder_import.default_concurrency(client, "no-such-pipeline") == 4
