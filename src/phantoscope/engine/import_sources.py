"""Where an import job's images come from: a folder on the server (only under the roots the
settings allow) or a list of URLs; each item read and checked as an upload's image is.

A folder is refused unless its real path (links resolved) lies under a root of
``PHANTOSCOPE_IMPORT_ROOTS``; a path with ``..`` is refused as written. A file is checked
again when it is read, so a link inside the folder that leads outside the roots (or one put
there after the job listed the folder) is not read.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from phantoscope.engine.entity_names import default_name, name_from_url
from phantoscope.engine.errors import BadRequestError, ForbiddenError, NotFoundError, TooLargeError
from phantoscope.engine.folder_images import find_images
from phantoscope.engine.intake import ImageInput, IntakeLimits, check_image, image_from_url

MAX_URLS = 100_000
MAX_URL = 2048
ROOTS_SETTING = "PHANTOSCOPE_IMPORT_ROOTS"


def import_roots(setting: str) -> list[Path]:
    """The real paths of the roots a comma-separated setting names."""
    return [Path(os.path.realpath(part.strip())) for part in setting.split(",") if part.strip()]


def _inside(path: Path, roots: Sequence[Path]) -> bool:
    return any(path == root or path.is_relative_to(root) for root in roots)


def checked_folder(value: object, roots: Sequence[Path]) -> Path:
    """The real path of the folder a job names, or the error that refuses it."""
    if not isinstance(value, str) or not value:
        raise BadRequestError("INVALID_SOURCE", "source.folder must be a path (a string)")
    given = Path(value)
    if not given.is_absolute():
        raise BadRequestError("INVALID_FOLDER",
                              f"folder {value!r} is relative: give its absolute path on the server")
    if ".." in given.parts:
        raise BadRequestError("INVALID_FOLDER",
                              f"folder {value!r} holds '..': give the path without it")
    if not roots:
        raise ForbiddenError(
            "IMPORT_ROOTS_UNSET",
            f"this server reads no folders: set {ROOTS_SETTING} to the folders it may import "
            "from (comma-separated), then restart it")
    real = Path(os.path.realpath(given))
    if not _inside(real, roots):
        links = " (through a symbolic link)" if real != given else ""
        raise ForbiddenError(
            "FOLDER_NOT_ALLOWED",
            f"folder {value!r} is outside the folders this server may import from{links}: "
            f"{', '.join(str(root) for root in roots)} ({ROOTS_SETTING})")
    if not real.exists():
        raise NotFoundError("FOLDER_NOT_FOUND", f"folder {value!r} does not exist on the server")
    if not real.is_dir():
        raise BadRequestError("NOT_A_FOLDER", f"{value!r} is a file, not a folder")
    return real


def folder_items(folder: Path) -> list[str]:
    """The folder's images as the job's items: paths relative to it, with ``/``."""
    return [path.relative_to(folder).as_posix() for path in find_images(folder)]


def checked_urls(value: object) -> list[str]:
    """The URLs a job names, or the error that refuses them (each is fetched only later)."""
    if not isinstance(value, list) or not value:
        raise BadRequestError("INVALID_SOURCE", "source.urls must be a list of http(s) URLs")
    if len(value) > MAX_URLS:
        raise BadRequestError("INVALID_SOURCE", f"{len(value):,} URLs; a job takes at most "
                                                f"{MAX_URLS:,}: split them into several jobs")
    for index, url in enumerate(value):
        if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https") \
                or len(url) > MAX_URL:
            raise BadRequestError(
                "INVALID_SOURCE",
                f"source.urls[{index}] is not an http(s) URL of at most {MAX_URL} characters")
    return list(value)


def read_file(folder: Path, item: str, roots: Sequence[Path],
              limits: IntakeLimits) -> tuple[ImageInput, str | None]:
    """A folder item's image, checked, and its name (the item)."""
    path = Path(os.path.realpath(folder / item))
    if not _inside(path, roots):
        raise ForbiddenError("FILE_OUTSIDE_ROOTS",
                             f"{item}: a link to a file outside the folders this server may "
                             f"import from ({ROOTS_SETTING}); it was not read")
    try:
        if path.stat().st_size > limits.max_bytes:
            raise TooLargeError("IMAGE_TOO_LARGE", f"{item}: {path.stat().st_size:,} bytes; "
                                                   f"the limit is {limits.max_bytes:,} bytes")
        data = path.read_bytes()
    except FileNotFoundError:
        raise BadRequestError("FILE_GONE", f"{item}: removed after the job listed the folder"
                              ) from None
    except OSError as exc:
        raise BadRequestError("READ_ERROR", f"{item}: {exc.strerror or exc}") from None
    return check_image(data, limits, item), default_name(item)


def read_url(url: str, limits: IntakeLimits) -> tuple[ImageInput, str | None]:
    """A URL item's image, fetched (SSRF-safe) and checked, and its name (the URL's file)."""
    return image_from_url(url, limits, url), name_from_url(url)
