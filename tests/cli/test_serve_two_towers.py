"""A user's custom_operator.py may hold both towers of a CLIP-class model, an image encoder
and its text encoder: `phantoscope operator serve FOLDER:Class` serves either one."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from helpers import OperatorProcess, run_cli

TWO_TOWERS = textwrap.dedent('''
    import numpy as np
    from phantoscope.operators import Encoder, TextEncoder, l2_normalize

    class ImageTower(Encoder):
        name = "two-towers-image"
        dimension = 3

        def run(self, images):
            return l2_normalize(np.stack(
                [np.asarray(image, dtype=np.float32).mean(axis=(0, 1)) for image in images]))

    class TextTower(TextEncoder):
        name = "two-towers-text"
        dimension = 3

        def run(self, texts):
            return l2_normalize(np.array(
                [[len(text), text.count(" ") + 1, sum(map(ord, text)) % 97 + 1]
                 for text in texts], dtype=np.float32))
''')


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    made = tmp_path_factory.mktemp("user") / "clip-like"
    made.mkdir()
    (made / "custom_operator.py").write_text(TWO_TOWERS)
    return made


@pytest.mark.parametrize(("tower", "identity"), [
    ("TextTower", "name=two-towers-text type=encoder input=text"),
    ("ImageTower", "name=two-towers-image type=encoder input=image"),
])
def test_folder_and_class_serve_that_tower(folder, tower, identity):
    with OperatorProcess(f"{folder}:{tower}") as served:
        result = run_cli("operator", "test", "-e", served.endpoint)
    assert result.returncode == 0, result.stdout + result.stderr
    assert identity in result.stdout and result.stdout.rstrip().endswith("OK")


def test_a_folder_of_several_operators_says_how_to_pick_one(folder):
    result = run_cli("operator", "serve", str(folder))
    assert result.returncode == 2
    assert "defines several operators (ImageTower, TextTower)" in result.stderr
    assert f"{folder}:ImageTower" in result.stderr.replace("\n", "")


def test_a_class_the_folder_lacks_is_named(folder):
    result = run_cli("operator", "serve", f"{folder}:AudioTower")
    assert result.returncode == 2
    assert "no operator class 'AudioTower'" in result.stderr
    assert "ImageTower, TextTower" in result.stderr
