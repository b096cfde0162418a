"""Labelled evaluation sets made offline from photos that ship in packages.

Each base photo becomes one class: a sub-folder of edited copies of it (crops, a flip,
colour and brightness changes, rescales, JPEG recompression). The photos are scikit-image's
(a dev dependency), plus the right image of its stereo motorcycle pair and matplotlib's
portrait of Grace Hopper (``mpl-data/sample_data``).

The text-query set (:func:`build_text_set`) adds ``queries.json``: for each text query, the
photos a person judged it to describe (:data:`TEXT_QUERIES`); every copy of those photos is
relevant to it.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

BASE_PHOTOS = (
    "astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field",
    "retina", "stereo_motorcycle", "camera", "coins",
)
TEXT_PHOTOS = (
    *BASE_PHOTOS, "motorcycle_right", "grace_hopper", "clock", "moon", "brick", "grass",
    "gravel", "page", "text",
)
QUERIES_FILE = "queries.json"

# Judged by looking at each photo: a query is relevant to a photo when the photo shows it.
# Several have no ImageNet-1k class to reach (astronaut, woman, coins, moon, galaxy, text,
# brick wall, grass, stones, flag, eye): they are kept, and score what the labels find.
TEXT_QUERIES: dict[str, tuple[str, ...]] = {
    "cat": ("chelsea",),
    "animal": ("chelsea",),
    "coffee": ("coffee",),
    "cup": ("coffee",),
    "drink": ("coffee",),
    "vehicle": ("stereo_motorcycle", "motorcycle_right", "rocket"),
    "motorcycle": ("stereo_motorcycle", "motorcycle_right"),
    "rocket": ("rocket",),
    "spacecraft": ("rocket", "astronaut"),  # a space shuttle model stands behind the astronaut
    "person": ("astronaut", "camera", "grace_hopper"),
    "astronaut": ("astronaut",),
    "woman": ("astronaut", "grace_hopper"),
    "uniform": ("grace_hopper",),  # a navy uniform; the astronaut's flight suit is not counted
    "flag": ("astronaut", "grace_hopper"),
    "camera": ("camera",),
    "tripod": ("camera",),
    "clock": ("clock",),
    "coins": ("coins",),
    "moon": ("moon",),
    "galaxy": ("hubble_deep_field",),
    "text": ("page", "text"),
    "brick wall": ("brick",),
    "grass": ("grass",),
    "stones": ("gravel",),
    "eye": ("retina",),
}


def _crop(image: Image.Image, left: float, top: float, right: float, bottom: float):
    width, height = image.size
    return image.crop((int(width * left), int(height * top),
                       int(width * right), int(height * bottom)))


def _scale(image: Image.Image, factor: float) -> Image.Image:
    return image.resize((max(32, int(image.width * factor)), max(32, int(image.height * factor))))


# name -> (edit, JPEG quality). Strong enough edits that encoders can miss some.
VARIANTS: dict[str, tuple[Callable[[Image.Image], Image.Image], int]] = {
    "crop": (lambda image: _crop(image, 0.1, 0.3, 0.6, 0.8), 90),  # a quarter of the photo
    "flip": (lambda image: ImageOps.flip(ImageOps.mirror(image)), 90),  # upside down
    "colour": (
        lambda image: ImageEnhance.Brightness(ImageEnhance.Color(image).enhance(0.2)).enhance(1.6),
        90,
    ),
    "small": (lambda image: _scale(image, 0.12), 90),
    "jpeg": (lambda image: image, 5),
    "mixed": (
        lambda image: ImageEnhance.Contrast(
            _scale(ImageOps.mirror(_crop(image, 0.3, 0.0, 1.0, 0.7)), 0.5).rotate(15)
        ).enhance(0.6),
        40,
    ),
}


def sample_photo(name: str) -> Image.Image:
    """A bundled photo as RGB (no download): scikit-image's ``skimage.data.<name>``, or
    ``motorcycle_right`` (the stereo pair's right image) or ``grace_hopper`` (matplotlib's)."""
    if name == "grace_hopper":
        from matplotlib import cbook

        with Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as image:
            return image.convert("RGB")
    import skimage.data

    if name == "motorcycle_right":
        array = skimage.data.stereo_motorcycle()[1]
    else:
        array = getattr(skimage.data, name)()
    if isinstance(array, tuple):  # stereo_motorcycle: (left, right, disparity)
        array = array[0]
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    return Image.fromarray(array).convert("RGB")


def _jpeg(image: Image.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


# The photo itself, re-encoded: a variant build_photo_set writes only when asked.
EDITS = {"original": ((lambda image: image), 95), **VARIANTS}


def build_photo_set(
    out: Path, photos: Sequence[str] = BASE_PHOTOS, variants: Sequence[str] = tuple(VARIANTS)
) -> dict[str, list[Path]]:
    """Write ``out/<photo>/<variant>.jpg`` for each photo and variant (a name of
    :data:`EDITS`); the files by class."""
    written: dict[str, list[Path]] = {}
    for name in photos:
        base = sample_photo(name)
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        written[name] = []
        for variant in variants:
            edit, quality = EDITS[variant]
            path = folder / f"{variant}.jpg"
            path.write_bytes(_jpeg(edit(base), quality))
            written[name].append(path)
    return written


def build_text_set(
    out: Path,
    queries: Mapping[str, Sequence[str]] = TEXT_QUERIES,
    variants: Sequence[str] = tuple(EDITS),
) -> dict[str, list[Path]]:
    """The photos ``queries`` mention and the rest of :data:`TEXT_PHOTOS`, each as the
    original and its edited copies, and ``out/queries.json`` (query -> relevant photos)."""
    photos = list(dict.fromkeys([*TEXT_PHOTOS, *(photo for found in queries.values()
                                                  for photo in found)]))
    written = build_photo_set(out, photos, variants)
    body = {query: sorted(found) for query, found in queries.items()}
    (out / QUERIES_FILE).write_text(json.dumps(body, indent=2) + "\n")
    return written
