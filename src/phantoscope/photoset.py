"""A labelled evaluation set made offline from scikit-image's sample photos.

Each base photo becomes one class: a sub-folder of edited copies of it (crops, a flip,
colour and brightness changes, rescales, JPEG recompression). Needs scikit-image (a dev
dependency), which ships the photos.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

BASE_PHOTOS = (
    "astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field",
    "retina", "stereo_motorcycle", "camera", "coins",
)


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
    """One of scikit-image's bundled photos as RGB (no download)."""
    import skimage.data

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


def build_photo_set(
    out: Path, photos: Sequence[str] = BASE_PHOTOS, variants: Sequence[str] = tuple(VARIANTS)
) -> dict[str, list[Path]]:
    """Write ``out/<photo>/<variant>.jpg`` for each photo and variant; the files by class."""
    written: dict[str, list[Path]] = {}
    for name in photos:
        base = sample_photo(name)
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        written[name] = []
        for variant in variants:
            edit, quality = VARIANTS[variant]
            path = folder / f"{variant}.jpg"
            path.write_bytes(_jpeg(edit(base), quality))
            written[name].append(path)
    return written
