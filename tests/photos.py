"""Real photos shipped with scikit-image (no download), and edited copies of them."""

from __future__ import annotations

import base64
import io

from PIL import Image, ImageEnhance

from phantoscope.photoset import sample_photo as photo

__all__ = ["PHOTO_NAMES", "b64", "edited_copy", "huge_png_header", "jpeg", "photo"]

PHOTO_NAMES = [
    "astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field",
    "retina", "stereo_motorcycle", "camera", "coins", "brick", "grass", "gravel", "page",
    "moon", "text", "clock", "horse", "cell", "colorwheel",
]


def jpeg(image: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def edited_copy(image: Image.Image) -> bytes:
    """Resized to 80 %, 8 % cut off each edge, a little brighter, re-compressed at q=60."""
    width, height = image.size
    cut_x, cut_y = int(width * 0.08), int(height * 0.08)
    edited = image.crop((cut_x, cut_y, width - cut_x, height - cut_y))
    edited = edited.resize((int(edited.width * 0.8), int(edited.height * 0.8)))
    edited = ImageEnhance.Brightness(edited).enhance(1.1)
    return jpeg(edited, quality=60)


def huge_png_header(width: int = 20_000, height: int = 20_000) -> bytes:
    """A PNG that claims width x height pixels (a decompression bomb's header), tiny on disk."""
    import struct
    import zlib

    data = bytearray(jpeg_free_png())
    # IHDR's data starts at byte 16: width, height; its CRC covers type + data (bytes 12..29).
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF)
    return bytes(data)


def jpeg_free_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buffer, format="PNG")
    return buffer.getvalue()
