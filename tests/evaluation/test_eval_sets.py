"""The package-photo evaluation set and reading a labelled folder."""

from __future__ import annotations

import subprocess
import sys

import pytest
from PIL import Image

from helpers import REPO
from phantoscope.evaluation.dataset import DatasetError, load_folder, load_text_queries
from phantoscope.photoset import (
    BASE_PHOTOS,
    EDITS,
    TEXT_PHOTOS,
    TEXT_QUERIES,
    VARIANTS,
    build_photo_set,
    build_text_set,
    sample_photo,
)


def test_photo_set_has_one_folder_of_distinct_variants_per_photo(tmp_path):
    written = build_photo_set(tmp_path, photos=BASE_PHOTOS[:3])
    assert sorted(written) == sorted(BASE_PHOTOS[:3])
    for name, paths in written.items():
        assert [path.stem for path in paths] == list(VARIANTS)
        assert len({path.read_bytes() for path in paths}) == len(VARIANTS)
        for path in paths:
            assert path.parent == tmp_path / name
            with Image.open(path) as image:
                assert image.format == "JPEG" and min(image.size) >= 32


def test_bench_script_writes_the_set(tmp_path):
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "eval_sets.py"), "--out", str(tmp_path),
         "--photos", "coffee,coins", "--variants", "crop,flip"],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "wrote 4 images in 2 classes" in done.stdout
    assert sorted(path.relative_to(tmp_path).as_posix() for path in tmp_path.rglob("*.jpg")) == [
        "coffee/crop.jpg", "coffee/flip.jpg", "coins/crop.jpg", "coins/flip.jpg",
    ]


def test_bench_script_writes_the_text_set(tmp_path):
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "eval_sets.py"), "--out", str(tmp_path), "--text"],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert f"wrote {19 * 7} images in 19 classes and queries.json" in done.stdout
    assert (tmp_path / "queries.json").is_file()


def test_load_folder_labels_by_sub_folder_and_skips_the_rest(tmp_path):
    for label, names in {"cats": ["b.PNG", "a.jpg"], "dogs": ["c.jpeg"]}.items():
        (tmp_path / label).mkdir()
        for name in names:
            (tmp_path / label / name).write_bytes(b"x")
    (tmp_path / "cats" / "notes.txt").write_text("not an image")
    (tmp_path / "cats" / ".hidden.jpg").write_bytes(b"x")
    (tmp_path / ".cache").mkdir()
    (tmp_path / ".cache" / "d.jpg").write_bytes(b"x")
    (tmp_path / "top.jpg").write_bytes(b"x")
    images = load_folder(tmp_path)
    assert [(image.relative_to(tmp_path), image.label) for image in images] == [
        ("cats/a.jpg", "cats"), ("cats/b.PNG", "cats"), ("dogs/c.jpeg", "dogs"),
    ]


def test_load_folder_needs_two_classes(tmp_path):
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "a.jpg").write_bytes(b"x")
    with pytest.raises(DatasetError, match="two classes at least"):
        load_folder(tmp_path)
    with pytest.raises(DatasetError, match="is not a folder"):
        load_folder(tmp_path / "missing")


def test_text_set_holds_each_photo_with_its_edits_and_the_judged_queries(tmp_path):
    written = build_text_set(tmp_path)
    assert sorted(written) == sorted(TEXT_PHOTOS) and len(TEXT_PHOTOS) == 19
    for paths in written.values():
        assert [path.stem for path in paths] == list(EDITS)  # the original and six edits
        assert len({path.read_bytes() for path in paths}) == len(EDITS)
    images = load_folder(tmp_path)
    assert len(images) == 19 * 7
    queries = load_text_queries(tmp_path, {image.label for image in images})
    assert queries == {text: frozenset(found) for text, found in TEXT_QUERIES.items()}
    assert queries["vehicle"] == {"stereo_motorcycle", "motorcycle_right", "rocket"}


def test_photos_from_other_packages_than_scikit_image():
    hopper, right = sample_photo("grace_hopper"), sample_photo("motorcycle_right")
    assert hopper.mode == right.mode == "RGB"
    assert hopper.size == (512, 600)
    assert right.size == sample_photo("stereo_motorcycle").size
    assert right.tobytes() != sample_photo("stereo_motorcycle").tobytes()
