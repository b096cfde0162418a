"""Original images: a local folder, or any S3 store (AWS, MinIO...).

This module holds the one interface (:class:`ObjectStore`), its errors and the rules both
backends apply; each backend lives in its own module and is chosen by URL
(:func:`phantoscope.storage.open_stores.open_object_store`):

- ``/var/lib/phantoscope/objects``, ``~/data``, ``file:///abs/path`` -> ``FolderObjectStore``
  (``storage/folder_objects.py``)
- ``s3://ACCESS:SECRET@host:port`` (plain HTTP endpoint: MinIO, moto...) and
  ``s3s://ACCESS:SECRET@host:port`` (HTTPS) -> ``S3ObjectStore`` on that endpoint
  (``storage/s3_objects.py``)
- ``s3://`` (no host) -> ``S3ObjectStore`` on AWS, credentials from boto3's default chain

S3 URLs take optional query parameters: ``region`` (default ``us-east-1``),
``connect_timeout`` and ``read_timeout`` (seconds), ``max_attempts`` (1 = no retries).
Access and secret keys are percent-decoded (write ``/`` as ``%2F``).

Both backends apply the same rules, so an application behaves the same on either:
bucket names follow S3's rules, keys are flat file names (see :func:`validate_key`), a missing
object raises :class:`ObjectNotFoundError`, any other backend failure :class:`ObjectStoreError`.
"""

from __future__ import annotations

import abc
import ipaddress
import re
from typing import Any

from phantoscope.storage.store_error import StoreError

__all__ = [
    "ObjectNotFoundError",
    "ObjectStore",
    "ObjectStoreError",
    "validate_bucket",
    "validate_key",
]

DEFAULT_CONTENT_TYPE = "application/octet-stream"
MAX_KEY_BYTES = 255  # a file name on every common file system
MAX_PRESIGN_S = 7 * 24 * 3600  # SigV4's limit


class ObjectStoreError(StoreError):
    """A backend failure; the message says which bucket/key and what failed."""

    def __init__(self, message: str, *, bucket: str | None = None, key: str | None = None):
        super().__init__(message)
        self.bucket = bucket
        self.key = key


class ObjectNotFoundError(ObjectStoreError):
    """The object (or the bucket holding it) does not exist."""


# ---------------------------------------------------------------------------------------------
# Validation shared by both backends

_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_BUCKET_RULE = (
    "bucket names must be 3-63 characters of lowercase letters, digits, hyphens and dots, "
    "start and end with a letter or digit, have no two adjacent dots, "
    "and not look like an IP address"
)
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def validate_bucket(bucket: str) -> str:
    """Return ``bucket`` if it is a valid S3 bucket name, else raise ValueError saying the rule."""
    if not isinstance(bucket, str):
        raise ValueError(f"bucket name must be a string; {_BUCKET_RULE}")
    if not _BUCKET_RE.fullmatch(bucket) or ".." in bucket or _is_ip(bucket):
        shown = bucket if len(bucket) <= 80 and not _CONTROL_RE.search(bucket) else "(given)"
        raise ValueError(f"invalid bucket name '{shown}': {_BUCKET_RULE}")
    return bucket


def _is_ip(name: str) -> bool:
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        return False
    return True


_KEY_RULE = (
    f"object keys must be 1-{MAX_KEY_BYTES} bytes (UTF-8) with no '/', '\\', "
    "control characters (NUL included), and must not start with '.'"
)


def validate_key(key: str) -> str:
    """Return ``key`` if it is a valid object key, else raise ValueError saying the rule.

    Keys are flat file names, so a folder store can never be escaped (no ``..``, ``/``,
    absolute paths, NUL) and names starting with ``.`` stay free for the store's own files.
    """
    if not isinstance(key, str):
        raise ValueError(f"object key must be a string; {_KEY_RULE}")
    bad = (
        not key
        or len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES
        or "/" in key
        or "\\" in key
        or key.startswith(".")
        or _CONTROL_RE.search(key) is not None
    )
    if bad:
        shown = key if len(key) <= 80 and not _CONTROL_RE.search(key) else "(given)"
        raise ValueError(f"invalid object key '{shown}': {_KEY_RULE}")
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"invalid object key: not valid Unicode; {_KEY_RULE}") from None
    return key


def validate_content_type(content_type: str) -> str:
    """``content_type`` stripped, if it is one a store keeps, else raise ValueError."""
    if (
        not isinstance(content_type, str)
        or not content_type.strip()
        or len(content_type) > 255
        or _CONTROL_RE.search(content_type)
        or not content_type.isascii()
    ):
        raise ValueError(
            "content type must be a non-empty ASCII string of at most 255 characters "
            "without control characters, e.g. 'image/jpeg'"
        )
    return content_type.strip()


def as_bytes(data: Any) -> bytes:
    """An object's data as bytes (from bytes, bytearray or memoryview), else TypeError."""
    if isinstance(data, bytes):
        return data
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"object data must be bytes, not {type(data).__name__}")


def validate_expiry(expires_s: int) -> int:
    """``expires_s`` if it is a presigned URL's lifetime S3 accepts, else raise ValueError."""
    if isinstance(expires_s, bool) or not isinstance(expires_s, int):
        raise ValueError("expires_s must be an integer number of seconds")
    if not 1 <= expires_s <= MAX_PRESIGN_S:
        raise ValueError(f"expires_s must be between 1 and {MAX_PRESIGN_S} seconds (7 days)")
    return expires_s


def sniff_content_type(data: bytes) -> str:
    """The image type told by the first bytes (JPEG, PNG, GIF, WebP, BMP, TIFF), else binary."""
    head = data[:16]
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"BM"):
        return "image/bmp"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "image/tiff"
    return DEFAULT_CONTENT_TYPE


# ---------------------------------------------------------------------------------------------
# The interface


class ObjectStore(abc.ABC):
    """Buckets of objects (bytes plus a content type), addressed by flat keys."""

    @abc.abstractmethod
    def ensure_bucket(self, bucket: str) -> None:
        """Create the bucket if it does not exist (idempotent)."""

    @abc.abstractmethod
    def delete_bucket(self, bucket: str) -> None:
        """Remove the bucket and all its objects; no error if absent."""

    @abc.abstractmethod
    def bucket_exists(self, bucket: str) -> bool: ...

    @abc.abstractmethod
    def put(self, bucket: str, key: str, data: bytes, content_type: str) -> None:
        """Store (or replace) an object. The bucket must exist."""

    @abc.abstractmethod
    def get(self, bucket: str, key: str) -> tuple[bytes, str]:
        """The object's bytes and content type; ObjectNotFoundError if absent."""

    @abc.abstractmethod
    def delete(self, bucket: str, key: str) -> None:
        """Remove an object; no error if it (or its bucket) is absent."""

    @abc.abstractmethod
    def keys(self, bucket: str) -> list[str]:
        """All keys in the bucket, sorted."""

    @abc.abstractmethod
    def modified_times(self, bucket: str) -> dict[str, float]:
        """Every key in the bucket with when it was last written (seconds since the epoch)."""

    @abc.abstractmethod
    def presigned_url(self, bucket: str, key: str, expires_s: int) -> str | None:
        """A URL that GETs the object for ``expires_s`` seconds, or None where the API must
        serve the object itself (folder store)."""

    @abc.abstractmethod
    def ping(self) -> None:
        """Raise :class:`ObjectStoreError` unless the store can be reached."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections. The store must not be used afterwards."""

    def __enter__(self) -> ObjectStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------------------------------------
# By URL
