"""`phantoscope eval FOLDER --duplicates` on a small set made from package photos, its
figures against a count by hand; reading duplicates.json; the set's writer."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from PIL import Image, ImageOps
from typer.testing import CliRunner

from helpers import REPO
from phantoscope.cli.eval_commands import eval_command
from phantoscope.duplicate_set import COPY_EDITS, MANIFEST, NEAR_SHOTS, build_duplicate_set
from phantoscope.evaluation.dataset import DatasetError
from phantoscope.evaluation.duplicates import load_truth, score

EDITS = ("resized-50", "jpeg-50", "mirrored", "cropped-2")
NEAR = ("near-window-80-bottom-right", "near-window-75-centre")


@pytest.fixture(scope="module")
def small_set(tmp_path_factory) -> Path:
    """coffee, the stereo motorcycle's left and right views, each as the original, the same
    bytes again and four copies; two near-shots of the left view; a horse drawn once."""
    out = tmp_path_factory.mktemp("dupset")
    build_duplicate_set(out, photos=("coffee", "stereo_motorcycle", "motorcycle_right"),
                        scenes=("stereo_motorcycle",), distinct=("horse",),
                        copy_edits=EDITS, near_shots=NEAR)
    return out


def invoke(*args: str):
    app = typer.Typer()
    app.command()(eval_command)
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


def test_the_set_and_its_manifest(small_set):
    truth = load_truth(small_set)
    assert len(truth.images) == 3 * 6 + 2 + 1
    assert [len(group) for group in truth.copies] == [6, 6, 6]
    # the scene: the left view's 6 copies, its 2 near-shots and the right view's 6 copies
    assert [len(group) for group in truth.similar] == [14]
    left = small_set / "stereo_motorcycle"
    assert (left / "same-bytes.png").read_bytes() == (left / "original.png").read_bytes()
    assert "horse/original.png" in truth.images
    assert not any("horse" in image for group in truth.copies for image in group)


def test_an_exif_turned_copy_shows_as_the_original(tmp_path):
    build_duplicate_set(tmp_path, photos=("coffee",), scenes=(), distinct=(),
                        copy_edits=("exif-turned",), near_shots=())
    with Image.open(tmp_path / "coffee" / "exif-turned.jpg") as stored:
        assert stored.getexif()[0x0112] == 6
        assert stored.size == (400, 600)  # the pixels lie turned
        assert ImageOps.exif_transpose(stored).size == (600, 400)  # shown upright
    assert set(NEAR_SHOTS).isdisjoint(COPY_EDITS)


def test_eval_duplicates_figures_equal_a_count_by_hand(small_set, tmp_path):
    result = invoke(str(small_set), "--duplicates", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    body = json.loads((tmp_path / "results.json").read_text())
    # by hand: 21 images make 210 pairs; 3 copy groups of 6 make 3 x 15 = 45 copy pairs;
    # similar: those 45, and the scene's 14 images make 91 pairs, of which 30 are copy
    # pairs already: 45 + 91 - 30 = 106
    assert (body["images"], body["pairs"]) == (21, 210)
    assert (body["copy_pairs"], body["similar_pairs"]) == (45, 106)
    assert body["copies"]["pairs"] == {
        "precision": 1.0, "recall": 1.0, "true_positives": 45, "false_positives": 0,
        "false_negatives": 0}
    # the same bytes twice in each group: SHA-256 finds those 3 pairs and no other
    assert body["copies"]["same_bytes_only"] == {
        "precision": 1.0, "recall": round(3 / 45, 4), "true_positives": 3,
        "false_positives": 0, "false_negatives": 42}
    similar = body["similar"]["pairs"]
    assert similar["false_positives"] == 0
    assert similar["true_positives"] + similar["false_negatives"] == 106
    assert body["similar"]["grouped"]["true_positives"] == 106
    assert body["copies"]["by_edit"]["mirrored"] == {"recall": 1.0, "pairs": 15}
    curve = [point["recall"] for point in body["similar"]["curve"]]
    assert curve == sorted(curve, reverse=True) and curve[0] == 1.0
    assert "Duplicates: 21 images, 210 pairs (45 copy, 106 similar)" in result.output
    assert body["thumbnails"] == "encoder"  # as the server gets them from our operator


def test_eval_duplicates_with_the_apis_thumbnails(small_set, tmp_path):
    """--api-thumbnails measures what the server does for an encoder giving none: each
    thumbnail from describe's own decode, at a reduced scale."""
    result = invoke(str(small_set), "--duplicates", "--api-thumbnails", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "thumbnails made by the API" in result.output
    body = json.loads((tmp_path / "results.json").read_text())
    assert body["thumbnails"] == "api"
    assert body["copies"]["pairs"]["precision"] == 1.0
    assert body["copies"]["pairs"]["true_positives"] == 45


def test_eval_duplicates_refuses_a_folder_without_a_manifest(tmp_path):
    result = invoke(str(tmp_path), "--duplicates")
    assert result.exit_code == 2
    assert "duplicates.json is missing" in result.output


def test_eval_without_pipeline_or_duplicates_says_what_to_give(tmp_path):
    result = invoke(str(tmp_path))
    assert result.exit_code == 2 and "give --pipeline" in result.output


def test_a_manifest_naming_unknown_images_is_refused(small_set, tmp_path):
    body = json.loads((small_set / MANIFEST).read_text())
    body["copies"].append(["coffee/original.png", "nowhere.jpg"])
    (tmp_path / "coffee").mkdir()
    for image in body["images"][:2]:
        (tmp_path / image).write_bytes((small_set / image).read_bytes())
    body["images"] = body["images"][:2]
    (tmp_path / MANIFEST).write_text(json.dumps(body))
    with pytest.raises(DatasetError, match="not in 'images'"):
        load_truth(tmp_path)


def test_score_counts_pairs():
    found = score([True, True, False, False, True], [True, False, True, False, True])
    assert (found.true_positives, found.false_positives, found.false_negatives) == (2, 1, 1)
    assert found.precision == pytest.approx(2 / 3) and found.recall == pytest.approx(2 / 3)
    assert score([False], [False]).precision is None


def test_bench_script_writes_the_duplicate_set(tmp_path):
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "eval_sets.py"), "--out", str(tmp_path),
         "--duplicates", "--photos", "moon,stereo_motorcycle,motorcycle_right"],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    truth = load_truth(tmp_path)
    copies = 2 + len(COPY_EDITS)  # the original, the same bytes, each edit
    assert len(truth.images) == 3 * copies + len(NEAR_SHOTS)
    assert f"wrote {len(truth.images)} images, 3 copy groups and 1 scene groups" \
        in done.stdout
