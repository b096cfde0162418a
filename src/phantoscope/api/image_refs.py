"""Images in requests: `{"url"}` or `{"data"}` as in the original, `{"path", "sha256"}` (a
file on the server, under the folders it may import from), or multipart files."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from phantoscope.engine.context import Stores
from phantoscope.engine.entity_names import default_name, name_from_url
from phantoscope.engine.errors import BadRequestError
from phantoscope.engine.import_sources import ReadBudget, import_roots, read_named_file
from phantoscope.engine.intake import ImageInput, check_image, image_from_base64, image_from_url


class ImageRef(BaseModel):
    model_config = ConfigDict(extra="ignore")

    url: str | None = None
    data: str | None = None
    path: str | None = Field(None, description="A file on the server, by its absolute path "
                             "under PHANTOSCOPE_IMPORT_ROOTS; read only when its bytes have "
                             "the SHA-256 `sha256` gives")
    sha256: str | None = Field(None, description="With `path`: the file's SHA-256, 64 "
                               "lower-case hex digits")


def read_budget(stores: Stores) -> ReadBudget:
    """What the images one request names (files on the server, URLs) may hold together."""
    return ReadBudget(stores.settings.max_request_bytes)


def read_image(stores: Stores, ref: ImageRef, label: str,
               budget: ReadBudget | None = None) -> ImageInput:
    """Fetch, decode or read the image a reference names, within the server's limits (files
    on the server and URLs within ``budget``, the request's, when it names several)."""
    if sum(given is not None for given in (ref.url, ref.data, ref.path)) != 1:
        raise BadRequestError("INVALID_REQUEST",
                              f"{label}: give exactly one of `url`, `data` or `path`")
    if ref.data is not None:
        return image_from_base64(ref.data, stores.limits, label)
    budget = budget or read_budget(stores)
    if ref.path is not None:
        return read_named_file(ref.path, ref.sha256, import_roots(stores.settings.import_roots),
                               stores.limits, label, budget)
    image = image_from_url(ref.url, stores.limits, label)
    budget.take(len(image.data), label)
    return image


def ref_name(ref: ImageRef) -> str | None:
    """The name an image gets when its request names none: its URL's or its file's."""
    if ref.url is not None:
        return name_from_url(ref.url)
    return default_name(Path(ref.path).name) if ref.path is not None else None


def read_file(stores: Stores, data: bytes, label: str) -> ImageInput:
    return check_image(data, stores.limits, label)
