"""Images in requests: `{"url"}` or `{"data"}` as in the original, or multipart files."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from phantoscope.engine.context import Stores
from phantoscope.engine.errors import BadRequestError
from phantoscope.engine.intake import ImageInput, check_image, image_from_base64, image_from_url


class ImageRef(BaseModel):
    model_config = ConfigDict(extra="ignore")

    url: str | None = None
    data: str | None = None


def read_image(stores: Stores, ref: ImageRef, label: str) -> ImageInput:
    """Fetch or decode the image a reference names, within the server's limits."""
    if (ref.url is None) == (ref.data is None):
        raise BadRequestError("INVALID_REQUEST", f"{label}: give exactly one of `url` or `data`")
    if ref.data is not None:
        return image_from_base64(ref.data, stores.limits, label)
    return image_from_url(ref.url, stores.limits, label)


def read_file(stores: Stores, data: bytes, label: str) -> ImageInput:
    return check_image(data, stores.limits, label)
