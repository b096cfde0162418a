"""Image files in the forms a real photo folder holds: 16-bit TIFFs, EXIF rotation, alpha,
camera EXIF."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def encoded(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def png(image: Image.Image) -> bytes:
    return encoded(image, "PNG")


def tiff16(image: Image.Image, byteorder: str = "<") -> bytes:
    """The image as a 16-bit TIFF (grey or RGB), in the given byte order."""
    import tifffile

    array = np.asarray(image).astype(np.uint16) * 257
    buffer = io.BytesIO()
    photometric = "rgb" if image.mode == "RGB" else "minisblack"
    tifffile.imwrite(buffer, array, byteorder=byteorder, photometric=photometric)
    return buffer.getvalue()


def exif_rotated(image: Image.Image) -> bytes:
    """A JPEG whose pixels lie on their side, with EXIF Orientation 6 to stand them up."""
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    buffer = io.BytesIO()
    image.transpose(Image.Transpose.ROTATE_90).save(buffer, "JPEG", quality=90, exif=exif)
    return buffer.getvalue()


def with_alpha(image: Image.Image) -> tuple[bytes, bytes]:
    """A PNG whose right half is transparent, and how it looks on white."""
    rgba = image.convert("RGBA")
    alpha = np.full((image.height, image.width), 255, np.uint8)
    alpha[:, image.width // 2 :] = 0
    rgba.putalpha(Image.fromarray(alpha))
    white = Image.new("RGB", image.size, (255, 255, 255))
    white.paste(rgba, mask=rgba.getchannel("A"))
    return png(rgba), png(white)


def with_exif(image: Image.Image, taken_at: str, camera: tuple[str, str] | None = None) -> bytes:
    """A JPEG whose EXIF says when it was taken (``2024:05:01 12:30:00``, the camera's
    local time) and, when given, the camera's make and model."""
    exif = Image.Exif()
    if camera is not None:
        exif[0x010F], exif[0x0110] = camera  # Make, Model
    exif.get_ifd(0x8769)[0x9003] = taken_at  # DateTimeOriginal
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=90, exif=exif)
    return buffer.getvalue()
