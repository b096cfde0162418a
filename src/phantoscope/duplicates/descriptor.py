"""What duplicate detection keeps of each image: its bytes' SHA-256, its perceptual hash and
grey thumbnail, and what says which copy is best (size as shown, format, JPEG quality).

The encoder's vector, the other descriptor, comes from the pipeline's encoder with the
upload; nothing here runs a model.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from PIL import Image

from phantoscope.imaging.codec import DEFAULT_MAX_PIXELS, decode_image, open_image
from phantoscope.imaging.exif import read_exif
from phantoscope.imaging.phash import THUMBNAIL, orientation_hashes, phash, thumbnail

LOSSLESS_FORMATS = frozenset({"PNG", "BMP", "TIFF", "GIF", "PPM"})

# The IJG (libjpeg) luminance quantisation table at quality 50, in natural row order:
# an encoder at quality q scales it by 5000 / q (q < 50) or 200 - 2q (q >= 50), in percent.
_IJG_LUMINANCE = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
], dtype=np.float64)


@dataclass(frozen=True)
class ImageDescriptor:
    """One image's duplicate-detection descriptors."""

    sha256: str
    phash: int  # unsigned 64 bits (imaging.phash.to_signed for a BIGINT column)
    thumbnail: bytes  # THUMBNAIL x THUMBNAIL grey levels, row by row
    width: int  # as shown (EXIF orientation applied)
    height: int
    format: str  # Pillow's name: "JPEG", "PNG", ...
    quality: int | None  # estimated JPEG quality 1-100; None when not a JPEG
    size: int  # bytes

    @property
    def pixels(self) -> np.ndarray:
        """The thumbnail as a (64, 64) uint8 array."""
        return np.frombuffer(self.thumbnail, dtype=np.uint8).reshape(THUMBNAIL, THUMBNAIL)

    @cached_property
    def orientation_hashes(self) -> tuple[int, ...]:
        """The hashes of the eight turns and mirrorings of the picture (upright first)."""
        return orientation_hashes(self.pixels)

    @property
    def lossless(self) -> bool:
        return self.format in LOSSLESS_FORMATS


def jpeg_quality(image: Image.Image) -> int | None:
    """The quality an IJG-style encoder was most likely given for a JPEG (from its
    luminance table), or None for other formats."""
    tables = getattr(image, "quantization", None)
    if image.format != "JPEG" or not tables or 0 not in tables:
        return None
    luminance = np.asarray(tables[0], dtype=np.float64)
    if luminance.shape != _IJG_LUMINANCE.shape:
        return None
    scale = float(np.median(luminance / _IJG_LUMINANCE)) * 100
    quality = (200 - scale) / 2 if scale <= 100 else 5000 / scale
    return int(min(100, max(1, round(quality))))


def describe(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS,
             thumb: np.ndarray | None = None, sha256: str | None = None) -> ImageDescriptor:
    """The descriptors of image file bytes. ``thumb``: the picture's
    :func:`~phantoscope.imaging.phash.thumbnail` when it was made already (by the encoder
    that decoded the image for its model); else the picture is decoded here, at a reduced
    scale. ``sha256``: the bytes' hex digest when the caller has it (a 12 MP photo's takes
    a few milliseconds). Raises :class:`~phantoscope.imaging.codec.BadImageError` for bytes
    that are no usable image."""
    header = open_image(data, max_pixels=max_pixels)
    shown = read_exif(data)
    if thumb is None:
        thumb = thumbnail(decode_image(data, min_side=2 * THUMBNAIL, max_pixels=max_pixels))
    elif thumb.shape != (THUMBNAIL, THUMBNAIL) or thumb.dtype != np.uint8:
        raise ValueError(f"a thumbnail is {THUMBNAIL} x {THUMBNAIL} uint8 levels, not "
                         f"{thumb.shape} {thumb.dtype}")
    return ImageDescriptor(
        sha256=sha256 or hashlib.sha256(data).hexdigest(),
        phash=phash(thumb),
        thumbnail=thumb.tobytes(),
        width=int(shown.get("width", header.width)),
        height=int(shown.get("height", header.height)),
        format=header.format or "",
        quality=jpeg_quality(header),
        size=len(data),
    )
