"""Images the server reads from its own disks: an import job's folder (only under the roots
the settings allow) or list of URLs, each item read and checked as an upload's image is, and
a single file an upload names by its path (``{"path", "sha256"}``).

A folder or file is refused unless its real path (links resolved) lies under a root of
``PHANTOSCOPE_IMPORT_ROOTS``; a path with ``..`` is refused as written. A file is checked
again when it is read, so a link inside the folder that leads outside the roots (or one put
there after the job listed the folder) is not read. A file named by an upload is stored only
when its bytes have the SHA-256 the request gives: its sender shows it knows them, and a
server whose file of that path differs (another machine's folder) refuses rather than store
the wrong image.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from phantoscope.engine.entity_names import default_name, name_from_url
from phantoscope.engine.errors import (
    BadRequestError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    TooLargeError,
)
from phantoscope.engine.folder_images import find_images
from phantoscope.engine.intake import ImageInput, IntakeLimits, check_image, image_from_url

MAX_URLS = 100_000
MAX_URL = 2048
ROOTS_SETTING = "PHANTOSCOPE_IMPORT_ROOTS"
SHA256 = re.compile(r"[0-9a-f]{64}")


def import_roots(setting: str) -> list[Path]:
    """The real paths of the roots a comma-separated setting names."""
    return [Path(os.path.realpath(part.strip())) for part in setting.split(",") if part.strip()]


def _inside(path: Path, roots: Sequence[Path]) -> bool:
    return any(path == root or path.is_relative_to(root) for root in roots)


def _allowed(value: str, roots: Sequence[Path], what: str, code: str, prefix: str) -> Path:
    """The real path of an absolute path without ``..`` under one of ``roots``, or the error
    that refuses it (``code`` for one outside them); ``what`` names it in messages."""
    if "\0" in value:
        raise BadRequestError(f"INVALID_{what.upper()}",
                              f"{prefix}{what} {value!r} holds a NUL character: no path does")
    given = Path(value)
    if not given.is_absolute():
        raise BadRequestError(f"INVALID_{what.upper()}", f"{prefix}{what} {value!r} is relative: "
                                                         "give its absolute path on the server")
    if ".." in given.parts:
        raise BadRequestError(f"INVALID_{what.upper()}",
                              f"{prefix}{what} {value!r} holds '..': give the path without it")
    if not roots:
        raise ForbiddenError(
            "IMPORT_ROOTS_UNSET",
            f"{prefix}this server reads no folders: set {ROOTS_SETTING} to the folders it may "
            "import from (comma-separated), then restart it")
    real = Path(os.path.realpath(given))
    if not _inside(real, roots):
        links = " (through a symbolic link)" if real != given else ""
        raise ForbiddenError(
            code, f"{prefix}{what} {value!r} is outside the folders this server may import "
                  f"from{links}: {', '.join(str(root) for root in roots)} ({ROOTS_SETTING})")
    return real


def checked_folder(value: object, roots: Sequence[Path]) -> Path:
    """The real path of the folder a job names, or the error that refuses it."""
    if not isinstance(value, str) or not value:
        raise BadRequestError("INVALID_SOURCE", "source.folder must be a path (a string)")
    real = _allowed(value, roots, "folder", "FOLDER_NOT_ALLOWED", "")
    try:
        real.stat()
    except FileNotFoundError:
        raise NotFoundError("FOLDER_NOT_FOUND", f"folder {value!r} does not exist on the server"
                            ) from None
    except OSError as exc:  # a name too long, say
        raise BadRequestError("INVALID_FOLDER", f"folder {value!r}: {exc.strerror or exc}"
                              ) from None
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


class ReadBudget:
    """The bytes one request may still have the server read from its disk or fetch: as many
    as its body may hold, so that naming images costs the server no more memory than sending
    them."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.left = limit

    def take(self, size: int, label: str) -> None:
        if size > self.left:
            raise TooLargeError(
                "REQUEST_TOO_LARGE",
                f"{label}: the images this request names (files on the server, URLs) hold "
                f"over {self.limit:,} bytes together, a request's limit: name fewer in one "
                "request")
        self.left -= size


def _read_regular(path: Path, label: str, limits: IntakeLimits,
                  budget: ReadBudget | None = None) -> bytes:
    """The bytes of the regular file at ``path``, checked once it is open, so that a FIFO or
    device put in a file's place is refused rather than read (a read that could block for
    ever); OSError for the caller to name."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise BadRequestError("NOT_A_FILE", f"{label}: not a file")
        if info.st_size > limits.max_bytes:
            raise TooLargeError("IMAGE_TOO_LARGE", f"{label}: {info.st_size:,} bytes; the "
                                                   f"limit is {limits.max_bytes:,} bytes")
        if budget is not None:
            budget.take(info.st_size, label)
        with open(descriptor, "rb", closefd=False) as file:
            return file.read()
    finally:
        os.close(descriptor)


def read_file(folder: Path, item: str, roots: Sequence[Path],
              limits: IntakeLimits) -> tuple[ImageInput, str | None]:
    """A folder item's image, checked, and its name (the item)."""
    path = Path(os.path.realpath(folder / item))
    if not _inside(path, roots):
        raise ForbiddenError("FILE_OUTSIDE_ROOTS",
                             f"{item}: a link to a file outside the folders this server may "
                             f"import from ({ROOTS_SETTING}); it was not read")
    try:
        data = _read_regular(path, item, limits)
    except FileNotFoundError:
        raise BadRequestError("FILE_GONE", f"{item}: removed after the job listed the folder"
                              ) from None
    except OSError as exc:
        raise BadRequestError("READ_ERROR", f"{item}: {exc.strerror or exc}") from None
    return check_image(data, limits, item), default_name(item)


def read_named_file(value: str, sha256: object, roots: Sequence[Path], limits: IntakeLimits,
                    label: str, budget: ReadBudget) -> ImageInput:
    """The image of the server's file ``value`` names, checked, if its bytes have the SHA-256
    ``sha256`` (lower-case hex) and fit in ``budget``; otherwise the error that refuses it."""
    if not isinstance(sha256, str) or not SHA256.fullmatch(sha256):
        raise BadRequestError("INVALID_SHA256", f"{label}: give the file's `sha256` with its "
                                                "`path`: 64 lower-case hex digits")
    real = _allowed(value, roots, "path", "PATH_NOT_ALLOWED", f"{label}: ")
    try:
        data = _read_regular(real, f"{label}: {value!r}", limits, budget)
    except FileNotFoundError:
        raise NotFoundError("FILE_NOT_FOUND", f"{label}: no file {value!r} on the server"
                            ) from None
    except OSError as exc:
        raise BadRequestError("READ_ERROR", f"{label}: {value!r}: {exc.strerror or exc}"
                              ) from None
    image = check_image(data, limits, label)
    if image.sha256 != sha256:
        raise ConflictError("CONTENT_DIFFERS", f"{label}: the server's file {value!r} holds "
                                               "other bytes than those of the `sha256` given")
    return image


def read_url(url: str, limits: IntakeLimits) -> tuple[ImageInput, str | None]:
    """A URL item's image, fetched (SSRF-safe) and checked, and its name (the URL's file)."""
    return image_from_url(url, limits, url), name_from_url(url)
