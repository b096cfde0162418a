"""Copies against second shots, judged as the server will: real package photos, the labelled
set's own edits, descriptors from file bytes, thumbnails aligned, the measured bounds."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from phantoscope.duplicate_set import COPY_EDITS, NEAR_SHOTS
from phantoscope.duplicates import registration
from phantoscope.duplicates.decision import COPY_MIN_OVERLAP, are_copies
from phantoscope.duplicates.descriptor import describe
from phantoscope.duplicates.registration import align, oriented
from phantoscope.photoset import sample_photo

COPIES = ("resized-25", "jpeg-30", "cropped-5", "cropped-4-corner", "darker", "exif-turned",
          "turned-90", "tilted-3", "tilted-5", "mirrored")


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def coffee() -> Image.Image:
    return sample_photo("coffee")


def thumbs(*datas: bytes) -> np.ndarray:
    return np.stack([describe(data).pixels for data in datas])


def test_copies_of_a_photo_are_copies(coffee):
    original = png(coffee)
    edited = [COPY_EDITS[name](coffee).data for name in COPIES]
    alignment = align(thumbs(*[original] * len(edited)), thumbs(*edited))
    verdicts = are_copies(alignment)
    assert verdicts.all(), [name for name, copy in zip(COPIES, verdicts, strict=True)
                            if not copy]
    found = dict(zip(COPIES, range(len(COPIES)), strict=True))
    # what the map says: a 5 % crop off each side shows 90 % of each side, 81 % of the area
    assert alignment.scale[found["cropped-5"]] == pytest.approx(1 / 0.9, abs=0.02)
    assert alignment.overlap[found["cropped-5"]] == pytest.approx(0.81, abs=0.03)
    assert alignment.overlap[found["jpeg-30"]] > 0.98
    assert alignment.orientation[found["mirrored"]] == 4
    assert alignment.orientation[found["turned-90"]] in (1, 3)
    assert alignment.orientation[found["exif-turned"]] == 0  # shown upright: no turn left


def test_a_second_shot_and_other_framings_are_not_copies(coffee):
    left, right = sample_photo("stereo_motorcycle"), sample_photo("motorcycle_right")
    near = [NEAR_SHOTS[name](coffee).data for name in NEAR_SHOTS]
    firsts = thumbs(png(left), *[png(coffee)] * len(near), png(coffee))
    seconds = thumbs(png(right), *near, png(sample_photo("chelsea")))
    alignment = align(firsts, seconds)
    assert not are_copies(alignment).any()
    # the stereo pair lines up nearly whole (same framing) but not everywhere
    assert alignment.aligned[0] and alignment.overlap[0] > 0.85
    # the 80 % windows line up too, but share too little of the picture
    windows = [index + 1 for index, name in enumerate(NEAR_SHOTS) if "window" in name]
    assert (alignment.aligned[windows]).all()
    assert (alignment.overlap[windows] < COPY_MIN_OVERLAP).all()


def test_a_pair_stops_stepping_once_it_has_converged(coffee, monkeypatch):
    original = png(coffee)
    edited = [COPY_EDITS[name](coffee).data for name in COPIES]
    firsts, seconds = thumbs(*[original] * len(edited)), thumbs(*edited)
    steps: list[int] = []
    solve = np.linalg.solve

    def counted(hessian, gradient):
        steps.append(len(hessian))
        return solve(hessian, gradient)

    monkeypatch.setattr(np.linalg, "solve", counted)
    early = align(firsts, seconds)
    early_steps, steps[:] = sum(steps), []
    monkeypatch.setattr(registration, "CONVERGED_PIXELS", 0.0)  # every step taken
    full = align(firsts, seconds)
    assert early_steps < 0.9 * sum(steps)
    assert are_copies(early).all()
    assert np.array_equal(early.orientation, full.orientation)
    for figure in ("residual", "worst_block", "overlap", "scale"):
        assert getattr(early, figure) == pytest.approx(getattr(full, figure), abs=0.005)


def test_a_pairs_figures_do_not_depend_on_the_pairs_aligned_beside_it(coffee):
    """ALIGN_BATCH only sets the speed: a pair aligned alone, in a call with copies and other
    photos, or in calls cut elsewhere gives the same figures, bit for bit."""
    original = png(coffee)
    others = [png(sample_photo(name)) for name in ("chelsea", "astronaut", "camera")]
    seconds = thumbs(*[COPY_EDITS[name](coffee).data for name in COPIES], *others)
    firsts = thumbs(*[original] * len(seconds))
    together = align(firsts, seconds)
    for cut in (1, 3, 8):
        joined = registration.Alignment.joined(
            [align(firsts[start:start + cut], seconds[start:start + cut])
             for start in range(0, len(firsts), cut)])
        for figure in registration.Alignment.__dataclass_fields__:
            assert np.array_equal(getattr(joined, figure), getattr(together, figure),
                                  equal_nan=True), (figure, cut)


def test_oriented_views_are_the_eight_turns_and_mirrorings():
    square = np.arange(16).reshape(4, 4)
    views = {oriented(square, which).tobytes() for which in range(8)}
    assert len(views) == 8
    assert np.array_equal(oriented(square, 1), np.rot90(square))
    assert np.array_equal(oriented(square, 4), np.fliplr(square))
