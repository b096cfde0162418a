"""A labelled set for duplicate detection, made offline from photos that ship in packages.

For each photo of :data:`COPIED_PHOTOS`: the original (PNG) and copies of it, each made one
way a copy comes about (:data:`COPY_EDITS`): the same bytes, resized, recompressed, cropped
by a few percent, colour-adjusted, turned by EXIF or by 90 degrees, tilted by a few degrees,
mirrored. The repository's ``assets/sample.jpg`` (the astronaut, as a JPEG) joins the
astronaut's copies. For each photo of :data:`SCENES`, near-shots of the same scene that are
not copies (:data:`NEAR_SHOTS`): windows of 70-85 % of each side at shifted places and a
zoom-in, as a second shot of a burst or a retake would frame it; the stereo motorcycle's
right view is a real second shot of its left one. :data:`DISTINCT_PHOTOS` appear once.

``duplicates.json`` holds the truth: ``copies`` (groups of copies of one picture),
``similar`` (groups of pictures of one scene: its copies and near-shots) and ``images``
(every image of the set, paths relative to the folder). Files are ``<photo>/<edit>.<ext>``.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from PIL import Image, ImageEnhance, ImageOps

from phantoscope.photoset import sample_photo

MANIFEST = "duplicates.json"

COPIED_PHOTOS = (
    "astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field",
    "retina", "stereo_motorcycle", "motorcycle_right", "camera", "coins", "grace_hopper",
    "clock", "moon", "brick", "grass", "gravel", "page", "text", "cell",
)
DISTINCT_PHOTOS = ("horse", "logo", "microaneurysms")
SCENES = (
    "astronaut", "coffee", "chelsea", "rocket", "stereo_motorcycle", "camera", "coins",
    "grace_hopper", "clock", "immunohistochemistry",
)
# A second shot of the same scene, copied in its own right (its group joins the first's).
SECOND_SHOTS = {"motorcycle_right": "stereo_motorcycle"}
ASSET_COPY = ("astronaut", "asset-sample.jpg")  # the repository's own photo of her

EXIF_ORIENTATION = 0x0112


@dataclass(frozen=True)
class Written:
    """An edit's file: its bytes and the suffix they need."""

    data: bytes
    suffix: str


def _jpeg(image: Image.Image, quality: int = 90, exif: Image.Exif | None = None) -> Written:
    buffer = io.BytesIO()
    extra = {"exif": exif} if exif is not None else {}
    image.convert("RGB").save(buffer, format="JPEG", quality=quality, **extra)
    return Written(buffer.getvalue(), ".jpg")


def _png(image: Image.Image) -> Written:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return Written(buffer.getvalue(), ".png")


def _scaled(image: Image.Image, factor: float) -> Image.Image:
    size = (max(16, round(image.width * factor)), max(16, round(image.height * factor)))
    return image.resize(size, Image.Resampling.LANCZOS)


def _window(image: Image.Image, side: float, left: float, top: float) -> Image.Image:
    """The part ``side`` of each dimension long, starting at fractions ``left``, ``top``."""
    width, height = image.size
    x, y = round(width * left), round(height * top)
    return image.crop((x, y, x + round(width * side), y + round(height * side)))


def _cropped(image: Image.Image, left: float, top: float, right: float, bottom: float):
    width, height = image.size
    return image.crop((round(width * left), round(height * top),
                       round(width * (1 - right)), round(height * (1 - bottom))))


def _straightened(image: Image.Image, degrees: float) -> Image.Image:
    """Turned by ``degrees`` and cut to the largest centred rectangle of the same shape
    holding no corner fill, as a photo editor straightens a horizon."""
    turned = image.rotate(degrees, resample=Image.Resampling.BICUBIC)
    angle = math.radians(abs(degrees))
    width, height = image.size
    # a wxh box of the same aspect turned by angle fits in WxH when both hold:
    scale = min(width / (width * math.cos(angle) + height * math.sin(angle)),
                height / (width * math.sin(angle) + height * math.cos(angle)))
    keep = (1 - scale) / 2
    return _cropped(turned, keep, keep, keep, keep)


def _exif_turned(image: Image.Image) -> Written:
    """The pixels stored turned a quarter counter-clockwise with EXIF orientation 6 (turn
    them a quarter clockwise to show them): shown upright, it is the original."""
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6
    return _jpeg(image.transpose(Image.Transpose.ROTATE_90), 92, exif)


def _enhanced(image: Image.Image, brightness: float = 1, contrast: float = 1,
              colour: float = 1) -> Image.Image:
    image = ImageEnhance.Brightness(image).enhance(brightness)
    image = ImageEnhance.Contrast(image).enhance(contrast)
    return ImageEnhance.Color(image).enhance(colour)


Edit = Callable[[Image.Image], Written]

# name -> how the copy is made from the original picture. "same-bytes" is written apart: it
# is the original file itself.
COPY_EDITS: dict[str, Edit] = {
    "resized-50": lambda image: _jpeg(_scaled(image, 0.5), 90),
    "resized-25": lambda image: _jpeg(_scaled(image, 0.25), 90),
    "jpeg-30": lambda image: _jpeg(image, 30),
    "jpeg-50": lambda image: _jpeg(image, 50),
    "jpeg-75": lambda image: _jpeg(image, 75),
    "jpeg-95": lambda image: _jpeg(image, 95),
    "cropped-2": lambda image: _jpeg(_cropped(image, 0.02, 0.02, 0.02, 0.02)),
    "cropped-5": lambda image: _jpeg(_cropped(image, 0.05, 0.05, 0.05, 0.05)),
    "cropped-4-corner": lambda image: _jpeg(_cropped(image, 0.04, 0.04, 0, 0)),
    "brighter": lambda image: _jpeg(_enhanced(image, brightness=1.3)),
    "darker": lambda image: _jpeg(_enhanced(image, brightness=0.7)),
    "contrast": lambda image: _jpeg(_enhanced(image, contrast=1.5)),
    "saturation": lambda image: _jpeg(_enhanced(image, colour=0.3)),
    "colour-mixed": lambda image: _jpeg(_enhanced(image, 1.15, 0.8, 1.5)),
    "exif-turned": _exif_turned,
    "turned-90": lambda image: _jpeg(image.transpose(Image.Transpose.ROTATE_270)),
    "tilted-3": lambda image: _jpeg(image.rotate(3, resample=Image.Resampling.BICUBIC)),
    "tilted-5": lambda image: _jpeg(image.rotate(-5, resample=Image.Resampling.BICUBIC)),
    "tilted-3-straightened": lambda image: _jpeg(_straightened(image, -3)),
    "mirrored": lambda image: _jpeg(ImageOps.mirror(image)),
    "mirrored-resized": lambda image: _jpeg(_scaled(ImageOps.mirror(image), 0.6), 80),
}

# name -> a near-shot: the same scene framed otherwise (not a copy). Each window shares at
# most 72 % of the area of the two taken together (intersection over union) with the
# original, any copy or another near-shot; a copy shares at least 81 % (cropped-5 with the
# original).
NEAR_SHOTS: dict[str, Edit] = {
    "near-window-85-top-left": lambda image: _jpeg(_window(image, 0.85, 0.0, 0.0)),
    "near-window-80-bottom-right": lambda image: _jpeg(_window(image, 0.80, 0.20, 0.20)),
    "near-window-80-top-right": lambda image: _jpeg(_window(image, 0.80, 0.20, 0.0)),
    "near-window-75-centre": lambda image: _jpeg(_window(image, 0.75, 0.125, 0.125)),
    "near-window-70-bottom-left": lambda image: _jpeg(_window(image, 0.70, 0.0, 0.30)),
    "near-zoom-60": lambda image: _jpeg(_window(image, 0.60, 0.20, 0.20).resize(image.size)),
}


@dataclass
class DuplicateSet:
    """The truth of a set: image paths relative to its folder."""

    images: list[str]
    copies: list[list[str]]
    similar: list[list[str]]

    def to_json(self) -> dict[str, list]:
        return {"copies": self.copies, "similar": self.similar, "images": self.images}


def _photo(name: str) -> Image.Image:
    image = sample_photo(name)
    return image if name != "logo" else image.convert("RGB")


def _write(folder: Path, stem: str, written: Written) -> str:
    path = folder / f"{stem}{written.suffix}"
    path.write_bytes(written.data)
    return path.relative_to(folder.parent).as_posix()


def build_duplicate_set(
    out: Path,
    photos: Sequence[str] = COPIED_PHOTOS,
    scenes: Sequence[str] = SCENES,
    distinct: Sequence[str] = DISTINCT_PHOTOS,
    copy_edits: Sequence[str] = tuple(COPY_EDITS),
    near_shots: Sequence[str] = tuple(NEAR_SHOTS),
) -> DuplicateSet:
    """Write the set into ``out`` (see the module's text) and ``out/duplicates.json``.

    ``scenes`` and a :data:`SECOND_SHOTS` photo get near-shots or join a scene only when
    they are among ``photos`` too.
    """
    out.mkdir(parents=True, exist_ok=True)
    images: list[str] = []
    copies: dict[str, list[str]] = {}
    near: dict[str, list[str]] = {}
    for name in (*photos, *distinct):
        image = _photo(name)
        folder = out / name
        folder.mkdir(exist_ok=True)
        original = _png(image)
        group = [_write(folder, "original", original)]
        if name in photos:
            group.append(_write(folder, "same-bytes", original))
            group += [_write(folder, edit, COPY_EDITS[edit](image)) for edit in copy_edits]
            if name == ASSET_COPY[0]:
                asset = resources.files("phantoscope.assets").joinpath("sample.jpg")
                group.append(_write(folder, Path(ASSET_COPY[1]).stem,
                                    Written(asset.read_bytes(), ".jpg")))
            if name in scenes:
                near[name] = [_write(folder, shot, NEAR_SHOTS[shot](image))
                              for shot in near_shots]
        copies[name] = group
        images += group + near.get(name, [])
    similar: dict[str, list[str]] = {
        name: copies[name] + near[name] for name in photos if name in near
    }
    for second, first in SECOND_SHOTS.items():
        if second in photos and first in photos:
            similar.setdefault(first, list(copies[first])).extend(copies[second])
    truth = DuplicateSet(
        images=images,
        copies=[group for group in copies.values() if len(group) > 1],
        similar=[group for group in similar.values() if len(group) > 1],
    )
    (out / MANIFEST).write_text(json.dumps(truth.to_json(), indent=1) + "\n")
    return truth
