"""`imaging.phash` on package photos: the hash holds through resizing, recompression and
colour changes, finds a picture turned or mirrored through its orientation hashes, and
tells distinct photos apart."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageOps

from phantoscope.imaging.phash import (
    BITS,
    hamming,
    nearest_orientation,
    orientation_hashes,
    phash,
    popcount,
    thumbnail,
    to_signed,
    to_unsigned,
)
from phantoscope.photoset import sample_photo

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "camera", "coins", "grace_hopper")


def jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def hash_of(image: Image.Image) -> int:
    return phash(thumbnail(image))


@pytest.fixture(scope="module")
def photos() -> dict[str, Image.Image]:
    return {name: sample_photo(name) for name in PHOTOS}


def test_the_thumbnail_is_64_grey_levels_square():
    thumb = thumbnail(Image.new("RGB", (1000, 300), (10, 200, 30)))
    assert thumb.shape == (64, 64) and thumb.dtype == np.uint8
    assert np.all(thumb == thumb[0, 0])


@pytest.mark.parametrize("edit", [
    lambda image: image.resize((image.width // 2, image.height // 2), Image.Resampling.LANCZOS),
    lambda image: image.resize((image.width // 4, image.height // 4), Image.Resampling.LANCZOS),
    lambda image: jpeg(image, 30),
    lambda image: ImageEnhance.Brightness(image).enhance(1.3),
    lambda image: ImageEnhance.Contrast(image).enhance(1.5),
    lambda image: ImageEnhance.Color(image).enhance(0.3),
], ids=["half", "quarter", "jpeg-30", "brighter", "contrast", "saturation"])
def test_the_hash_holds_through_resizing_recompression_and_colour(photos, edit):
    for name, image in photos.items():
        assert hamming(hash_of(image), hash_of(edit(image))) <= 6, name


@pytest.mark.parametrize("turn", [
    Image.Transpose.FLIP_LEFT_RIGHT, Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_180,
    Image.Transpose.ROTATE_270, Image.Transpose.TRANSPOSE,
])
def test_a_turned_or_mirrored_copy_is_found_by_its_orientation_hashes(photos, turn):
    for name, image in photos.items():
        stored = np.array([hash_of(image)], dtype=np.uint64)
        turned = image.transpose(turn)
        assert hash_of(turned) != hash_of(image), name  # the plain hash does change
        assert nearest_orientation(orientation_hashes(thumbnail(turned)), stored)[0] <= 4, name


def test_the_first_orientation_hash_is_the_hash(photos):
    thumb = thumbnail(photos["coffee"])
    assert orientation_hashes(thumb)[0] == phash(thumb)
    mirrored = thumbnail(ImageOps.mirror(photos["coffee"]))
    assert hamming(orientation_hashes(thumb)[4], phash(mirrored)) <= 2


def test_each_orientation_hash_is_the_hash_of_the_thumbnail_so_turned(photos):
    for name, image in photos.items():
        thumb = thumbnail(image)
        turned = [np.rot90(thumb, quarter) for quarter in range(4)]
        views = [*turned, *(np.fliplr(view) for view in turned)]
        assert orientation_hashes(thumb) == tuple(phash(view) for view in views), name


def test_distinct_photos_differ_in_many_bits(photos):
    hashes = {name: orientation_hashes(thumbnail(image)) for name, image in photos.items()}
    names = sorted(hashes)
    for index, first in enumerate(names):
        for second in names[index + 1:]:
            stored = np.array([hashes[second][0]], dtype=np.uint64)
            assert nearest_orientation(hashes[first], stored)[0] >= 16, (first, second)


def test_popcount_and_signed_round_trip():
    values = np.array([0, 1, 0xFFFF_FFFF_FFFF_FFFF, 0x8000_0000_0000_0001], dtype=np.uint64)
    assert popcount(values).tolist() == [0, 1, BITS, 2]
    for value in (0, 1, (1 << 63) - 1, 1 << 63, (1 << 64) - 1):
        assert to_unsigned(to_signed(value)) == value
        assert -(1 << 63) <= to_signed(value) < 1 << 63
