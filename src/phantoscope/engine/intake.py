"""Images as callers give them (base64, URL, file upload), checked before anything is stored."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property

from phantoscope.engine.errors import BadRequestError, TooLargeError
from phantoscope.engine.picture import Picture
from phantoscope.imaging.codec import (
    BadImageError,
    ImageTooLargeError,
    b64_to_bytes,
    image_format,
)
from phantoscope.imaging.fetch import FetchError, FetchPolicy, UrlRefusedError, fetch_url

CONTENT_TYPES = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "WEBP": "image/webp",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
}


@dataclass(frozen=True)
class ImageInput:
    """Image file bytes checked to be a whole image, and what the stores need to know."""

    data: bytes
    content_type: str
    sha256: str
    # The caller's own base64 text of ``data`` when it came so, in the standard form.
    given_b64: str | None = field(default=None, repr=False, compare=False)

    @cached_property
    def picture(self) -> Picture:
        """``data`` as operators take it: its bytes, or base64 (the caller's text, or encoded
        once when an operator needs it)."""
        return Picture(raw=self.data, b64=self.given_b64)

    @property
    def b64(self) -> str:
        """``data`` in base64: the caller's text, or encoded once."""
        return self.picture.b64


@dataclass(frozen=True)
class IntakeLimits:
    max_bytes: int
    max_pixels: int
    fetch: FetchPolicy


def check_image(
    data: bytes, limits: IntakeLimits, label: str, given_b64: str | None = None
) -> ImageInput:
    """Accept ``data`` if it is an image within the limits; otherwise a 4xx naming ``label``."""
    if len(data) > limits.max_bytes:
        raise TooLargeError(
            "IMAGE_TOO_LARGE",
            f"{label}: {len(data):,} bytes; the limit is {limits.max_bytes:,} bytes",
        )
    try:
        found_format = image_format(data, max_pixels=limits.max_pixels)
    except ImageTooLargeError as exc:
        raise TooLargeError("IMAGE_TOO_LARGE", f"{label}: {exc}") from None
    except BadImageError as exc:
        raise BadRequestError("NOT_AN_IMAGE", f"{label}: {exc}") from None
    return ImageInput(
        data=data,
        content_type=CONTENT_TYPES.get(found_format, "application/octet-stream"),
        sha256=hashlib.sha256(data).hexdigest(),
        given_b64=given_b64,
    )


def _standard_b64(text: str, data: bytes) -> str | None:
    """``text`` if it is bare, padded standard base64 (what any decoder reads), else None.

    ``text`` decoded to ``data`` after dropping a data URL prefix and spaces and adding
    missing padding, every other character checked: it is that standard form exactly when
    it has the standard form's length, with nothing dropped or added.
    """
    return text if len(text) == 4 * -(-len(data) // 3) else None


def image_from_base64(text: object, limits: IntakeLimits, label: str) -> ImageInput:
    if not isinstance(text, str):
        raise BadRequestError("INVALID_REQUEST", f"{label}: `data` must be a base64 string")
    if len(text) > limits.max_bytes * 4 // 3 + 1024:
        raise TooLargeError(
            "IMAGE_TOO_LARGE", f"{label}: base64 data over the {limits.max_bytes:,}-byte limit"
        )
    try:
        data = b64_to_bytes(text)
    except BadImageError as exc:
        raise BadRequestError("BAD_BASE64", f"{label}: {exc}") from None
    return check_image(data, limits, label, _standard_b64(text, data))


def image_from_url(url: object, limits: IntakeLimits, label: str) -> ImageInput:
    if not isinstance(url, str):
        raise BadRequestError("INVALID_REQUEST", f"{label}: `url` must be a string")
    try:
        data = fetch_url(url, limits.fetch)
    except UrlRefusedError as exc:
        raise BadRequestError("URL_REFUSED", f"{label}: {exc}") from None
    except FetchError as exc:
        raise BadRequestError("URL_FETCH_FAILED", f"{label}: {exc}") from None
    return check_image(data, limits, label)
