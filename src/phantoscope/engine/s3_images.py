"""Import jobs from S3: the images under ``s3://bucket/prefix`` of the server's S3 endpoint
(``PHANTOSCOPE_IMPORT_S3``, else the object store's when it is in S3), named by their keys
under the prefix; each read and checked as an upload's image is.

The prefix is a folder: ``s3://photos/trip`` holds ``trip/a.jpg`` (named ``a.jpg``), not
``trip-2/b.jpg``. Images are found as in a folder: by extension, leaving out keys with a
part starting with ``.``.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from urllib.parse import urlsplit

from phantoscope.engine.entity_names import default_name
from phantoscope.engine.errors import (
    BadRequestError,
    ForbiddenError,
    NotFoundError,
    TooLargeError,
)
from phantoscope.engine.folder_images import IMAGE_EXTENSIONS
from phantoscope.engine.intake import ImageInput, IntakeLimits, check_image
from phantoscope.storage.objects import ObjectNotFoundError, validate_bucket
from phantoscope.storage.s3_objects import S3ObjectStore

SETTING = "PHANTOSCOPE_IMPORT_S3"


def s3_location(value: object) -> tuple[str, str]:
    """The bucket and the prefix (empty, or ending in ``/``) an ``s3://`` source names."""
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme != "s3" or parts.query or parts.fragment:
        raise BadRequestError("INVALID_SOURCE", "source.s3 must be an s3://BUCKET/PREFIX URL")
    try:
        validate_bucket(parts.netloc)
    except ValueError as exc:
        raise BadRequestError("INVALID_SOURCE", f"source.s3: {exc}") from None
    prefix = parts.path.lstrip("/")
    return parts.netloc, prefix if not prefix or prefix.endswith("/") else f"{prefix}/"


def s3_store(store: S3ObjectStore | None) -> S3ObjectStore:
    """The endpoint S3 sources are read from, or the error that says none is set."""
    if store is None:
        raise ForbiddenError(
            "IMPORT_S3_UNSET",
            f"this server reads no S3 sources: set {SETTING} to its S3 endpoint "
            "(s3://KEY:SECRET@host:port), or keep its objects in S3 (PHANTOSCOPE_OBJECTS), "
            "then restart it")
    return store


def _is_image(name: str) -> bool:
    path = PurePosixPath(name)
    return bool(name) and not name.endswith("/") and path.suffix.lower() in IMAGE_EXTENSIONS \
        and not any(part.startswith(".") for part in path.parts)


def s3_items(store: S3ObjectStore, bucket: str, prefix: str) -> list[str]:
    """The images under the prefix, as the job's items: keys relative to the prefix."""
    try:
        listed = store.list_prefix(bucket, prefix)
    except ObjectNotFoundError:
        raise NotFoundError("BUCKET_NOT_FOUND", f"bucket {bucket!r} does not exist on the "
                                                f"server's S3 endpoint ({SETTING})") from None
    names = (key[len(prefix):] for key, _ in listed)
    return [name for name in names if _is_image(name)]


def read_s3(store: S3ObjectStore | None, source: str, item: str,
            limits: IntakeLimits) -> tuple[ImageInput, str | None]:
    """An S3 item's image, checked, and its name (the item)."""
    bucket, prefix = s3_location(source)
    try:
        size, data = s3_store(store).read_key(bucket, prefix + item, limits.max_bytes)
    except ObjectNotFoundError:
        raise BadRequestError("FILE_GONE", f"{item}: removed after the job listed the prefix"
                              ) from None
    if data is None:
        raise TooLargeError("IMAGE_TOO_LARGE",
                            f"{item}: {size:,} bytes; the limit is {limits.max_bytes:,} bytes")
    return check_image(data, limits, item), default_name(item)
