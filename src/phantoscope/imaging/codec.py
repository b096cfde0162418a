"""Turning request items (base64 text or fetched bytes) into RGB images, and back."""

from __future__ import annotations

import base64
import binascii
import io
import re
import warnings

from PIL import Image, ImageOps, UnidentifiedImageError

# Refuse images above this many pixels before decoding them (decompression bombs).
DEFAULT_MAX_PIXELS = 64_000_000
# decode_image checks every image against its caller's limit before decoding; Pillow's own
# process-wide cap would refuse first, without saying the size, and cap every limit at 179 MP.
Image.MAX_IMAGE_PIXELS = None

JPEG_END_OF_IMAGE = b"\xff\xd9"

_DATA_URL = re.compile(r"^data:[\w.+/-]*(;[\w=.+-]+)*;base64,", re.IGNORECASE)


class BadImageError(ValueError):
    """The bytes given are not an image this server can use; the message says why."""


class ImageTooLargeError(BadImageError):
    """The image has more pixels than allowed."""


def b64_to_bytes(text: str) -> bytes:
    """Decode a base64 string, bare or as a data URL (``data:image/jpeg;base64,...``)."""
    payload = _DATA_URL.sub("", text.strip(), count=1)
    payload = "".join(payload.split())
    if not payload:
        raise BadImageError("empty base64 data")
    try:
        return base64.b64decode(payload + "=" * (-len(payload) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadImageError(f"not valid base64 ({exc})") from None


def decode_image(
    data: bytes, *, min_side: int | None = None, max_pixels: int = DEFAULT_MAX_PIXELS
) -> Image.Image:
    """Decode image file bytes into an upright RGB image.

    ``min_side``: JPEGs may be decoded at a reduced scale (``Image.draft``) as long as both
    sides stay at least this long; much faster for big photos. ``max_pixels`` refuses
    decompression bombs before any pixel is decoded.
    """
    image = open_image(data, max_pixels=max_pixels)
    width, height = image.size
    if min_side and image.format == "JPEG":
        scale = min(width, height) / min_side
        if scale >= 2:
            image.draft("RGB", (max(1, int(width / scale)), max(1, int(height / scale))))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image.load()
        image = ImageOps.exif_transpose(image)
        return to_rgb(image)
    except Exception as exc:
        raise BadImageError(f"image data is corrupt or truncated ({exc})") from None


def open_image(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Read the header of image file bytes (no pixels decoded yet); refuse what is not an
    image and images over ``max_pixels``."""
    if not data:
        raise BadImageError("empty image data")
    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise BadImageError("not a recognised image format") from None
    except Exception as exc:  # Pillow raises many types for malformed headers
        raise BadImageError(f"unreadable image header ({exc})") from None
    width, height = image.size
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"image is {width}x{height} pixels; the limit is {max_pixels:,} pixels"
        )
    return image


def image_format(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> str:
    """The format of image file bytes (``"JPEG"``, ``"PNG"``...), once they are known to be a
    whole image within ``max_pixels``.

    A JPEG whose header reads and whose last bytes are its end-of-image marker is complete
    (the marker cannot occur inside entropy-coded data), so its pixels are not decoded here:
    that was 1.6 ms of a photo's 1.7 ms check, and its encoder decodes it anyway. Other
    formats, and JPEGs with anything after the marker, are decoded at a reduced scale.
    """
    image = open_image(data, max_pixels=max_pixels)
    found = image.format or ""
    if found == "JPEG" and data.endswith(JPEG_END_OF_IMAGE):
        return found
    decode_image(data, min_side=64, max_pixels=max_pixels)
    return found


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any mode to RGB; transparency is composited onto white."""
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit greyscale: scale to 8 bits rather than clipping.
        image = image.convert("I").point(lambda value: value / 256).convert("L")
    return image.convert("RGB")


def encode_jpeg_b64(image: Image.Image, quality: int = 90) -> str:
    """Encode an image as a base64 JPEG string (how processors return crops)."""
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=quality)
    return base64.b64encode(buffer.getvalue()).decode("ascii")
