"""Original images: a local folder, or any S3 store (AWS, MinIO...).

One interface, chosen by URL (``open_object_store``):

- ``/var/lib/phantoscope/objects``, ``~/data``, ``file:///abs/path`` -> :class:`FolderObjectStore`
- ``s3://ACCESS:SECRET@host:port`` (plain HTTP endpoint: MinIO, moto...) and
  ``s3s://ACCESS:SECRET@host:port`` (HTTPS) -> :class:`S3ObjectStore` on that endpoint
- ``s3://`` (no host) -> :class:`S3ObjectStore` on AWS, credentials from boto3's default chain

S3 URLs take optional query parameters: ``region`` (default ``us-east-1``),
``connect_timeout`` and ``read_timeout`` (seconds), ``max_attempts`` (1 = no retries).
Access and secret keys are percent-decoded (write ``/`` as ``%2F``).

Both backends apply the same rules, so an application behaves the same on either:
bucket names follow S3's rules, keys are flat file names (see :func:`validate_key`), a missing
object raises :class:`ObjectNotFoundError`, any other backend failure :class:`ObjectStoreError`.
"""

from __future__ import annotations

import abc
import contextlib
import ipaddress
import os
import re
import shutil
import threading
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from phantoscope.storage.errors import StoreError

__all__ = [
    "FolderObjectStore",
    "ObjectNotFoundError",
    "ObjectStore",
    "ObjectStoreError",
    "S3ObjectStore",
    "open_object_store",
    "validate_bucket",
    "validate_key",
]

DEFAULT_REGION = "us-east-1"
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


def _validate_content_type(content_type: str) -> str:
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


def _as_bytes(data: Any) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"object data must be bytes, not {type(data).__name__}")


def _validate_expiry(expires_s: int) -> int:
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
# Folder


class FolderObjectStore(ObjectStore):
    """Objects as files: ``<root>/<bucket>/<key>``.

    The content type given at ``put`` is kept in ``<root>/<bucket>/.meta/<key>``; an object
    without one (copied in by hand) gets the type its first bytes tell. Writes go to a temporary
    file in the same folder, flushed to disk (when ``fsync``), then renamed over the target, so a
    crash never leaves half an image. A deleted bucket is first renamed out of sight, so a
    half-deleted one is never visible; leftovers are removed at the next open.
    """

    _META = ".meta"
    _TMP_PREFIX = ".tmp-"
    _TRASH_PREFIX = ".deleting-"

    def __init__(self, root: str | os.PathLike[str], *, fsync: bool = True):
        self.root = Path(root).expanduser().absolute()
        self.fsync = fsync
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ObjectStoreError(
                f"cannot create the object store folder {self.root}: {_os_reason(e)}"
            ) from e
        if not self.root.is_dir():
            raise ObjectStoreError(f"the object store path {self.root} is not a folder")
        self._clean_trash()

    def __repr__(self) -> str:
        return f"FolderObjectStore('{self.root}')"

    def ping(self) -> None:
        if not self.root.is_dir() or not os.access(self.root, os.W_OK | os.X_OK):
            raise ObjectStoreError(f"the object store folder {self.root} is not writable")

    # paths ------------------------------------------------------------------------------------

    def _bucket_dir(self, bucket: str) -> Path:
        return self.root / validate_bucket(bucket)

    def _paths(self, bucket: str, key: str) -> tuple[Path, Path, Path]:
        bdir = self._bucket_dir(bucket)
        validate_key(key)
        return bdir, bdir / key, bdir / self._META / key

    def _clean_trash(self) -> None:
        try:
            entries = list(os.scandir(self.root))
        except OSError:
            return
        for entry in entries:
            if entry.name.startswith(self._TRASH_PREFIX):
                shutil.rmtree(entry.path, ignore_errors=True)

    # buckets ----------------------------------------------------------------------------------

    def ensure_bucket(self, bucket: str) -> None:
        bdir = self._bucket_dir(bucket)
        try:
            (bdir / self._META).mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ObjectStoreError(
                f"cannot create bucket '{bucket}' in {self.root}: {_os_reason(e)}", bucket=bucket
            ) from e

    def bucket_exists(self, bucket: str) -> bool:
        return self._bucket_dir(bucket).is_dir()

    def delete_bucket(self, bucket: str) -> None:
        bdir = self._bucket_dir(bucket)
        trash = self.root / f"{self._TRASH_PREFIX}{bucket}-{uuid.uuid4().hex}"
        try:
            os.rename(bdir, trash)
        except FileNotFoundError:
            return
        except OSError as e:
            raise ObjectStoreError(
                f"cannot delete bucket '{bucket}' in {self.root}: {_os_reason(e)}", bucket=bucket
            ) from e
        try:
            shutil.rmtree(trash)
        except OSError as e:
            raise ObjectStoreError(
                f"bucket '{bucket}' was removed but its files could not all be deleted "
                f"from {trash}: {_os_reason(e)}",
                bucket=bucket,
            ) from e

    # objects ----------------------------------------------------------------------------------

    def put(self, bucket: str, key: str, data: bytes, content_type: str) -> None:
        bdir, path, meta = self._paths(bucket, key)
        data = _as_bytes(data)
        content_type = _validate_content_type(content_type)
        if not bdir.is_dir():
            raise ObjectStoreError(
                f"cannot store '{key}': bucket '{bucket}' does not exist", bucket=bucket, key=key
            )
        try:
            # The type first: a crash in between leaves a harmless stray type file, never an
            # image with the wrong type.
            meta.parent.mkdir(exist_ok=True)
            self._write_atomic(meta, content_type.encode("ascii"))
            self._write_atomic(path, data)
        except OSError as e:
            if not bdir.is_dir():
                raise ObjectStoreError(
                    f"cannot store '{key}': bucket '{bucket}' does not exist",
                    bucket=bucket,
                    key=key,
                ) from e
            raise ObjectStoreError(
                f"cannot store '{key}' in bucket '{bucket}': {_os_reason(e)}",
                bucket=bucket,
                key=key,
            ) from e

    def _write_atomic(self, path: Path, data: bytes) -> None:
        tmp = path.parent / f"{self._TMP_PREFIX}{uuid.uuid4().hex}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                if self.fsync:
                    f.flush()
                    os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def get(self, bucket: str, key: str) -> tuple[bytes, str]:
        bdir, path, meta = self._paths(bucket, key)
        try:
            data = path.read_bytes()
        except (FileNotFoundError, NotADirectoryError) as e:
            if bdir.is_dir():
                what = f"no object '{key}' in bucket '{bucket}'"
            else:
                what = f"bucket '{bucket}' does not exist"
            raise ObjectNotFoundError(f"cannot read '{key}': {what}", bucket=bucket, key=key) from e
        except OSError as e:
            raise ObjectStoreError(
                f"cannot read '{key}' from bucket '{bucket}': {_os_reason(e)}",
                bucket=bucket,
                key=key,
            ) from e
        try:
            content_type = meta.read_text("ascii").strip() or sniff_content_type(data)
        except (OSError, UnicodeDecodeError):
            content_type = sniff_content_type(data)
        return data, content_type

    def delete(self, bucket: str, key: str) -> None:
        _bdir, path, meta = self._paths(bucket, key)
        for p in (path, meta):
            try:
                os.unlink(p)
            except (FileNotFoundError, NotADirectoryError):
                pass
            except OSError as e:
                raise ObjectStoreError(
                    f"cannot delete '{key}' from bucket '{bucket}': {_os_reason(e)}",
                    bucket=bucket,
                    key=key,
                ) from e

    def keys(self, bucket: str) -> list[str]:
        bdir = self._bucket_dir(bucket)
        try:
            with os.scandir(bdir) as it:
                names = [
                    e.name
                    for e in it
                    if not e.name.startswith(".") and e.is_file(follow_symlinks=False)
                ]
        except (FileNotFoundError, NotADirectoryError) as e:
            raise ObjectStoreError(
                f"cannot list bucket '{bucket}': it does not exist", bucket=bucket
            ) from e
        except OSError as e:
            raise ObjectStoreError(
                f"cannot list bucket '{bucket}': {_os_reason(e)}", bucket=bucket
            ) from e
        return sorted(names, key=lambda n: n.encode("utf-8", "surrogateescape"))

    def modified_times(self, bucket: str) -> dict[str, float]:
        bdir = self._bucket_dir(bucket)
        times: dict[str, float] = {}
        try:
            with os.scandir(bdir) as it:
                for e in it:
                    if e.name.startswith(".") or not e.is_file(follow_symlinks=False):
                        continue
                    with contextlib.suppress(FileNotFoundError):  # deleted meanwhile
                        times[e.name] = e.stat(follow_symlinks=False).st_mtime
            return times
        except OSError as e:
            raise ObjectStoreError(
                f"cannot list bucket '{bucket}': {_os_reason(e)}", bucket=bucket
            ) from e

    def presigned_url(self, bucket: str, key: str, expires_s: int) -> str | None:
        self._paths(bucket, key)
        _validate_expiry(expires_s)
        return None


def _os_reason(e: OSError) -> str:
    return e.strerror or type(e).__name__


# ---------------------------------------------------------------------------------------------
# S3


class S3ObjectStore(ObjectStore):
    """Objects in S3 or an S3-compatible server, through one thread-safe boto3 client.

    ``endpoint_url`` None means AWS (virtual-hosted addressing); otherwise path-style
    addressing on that endpoint (MinIO, moto, Ceph...). Without ``access_key`` and
    ``secret_key``, boto3's default credential chain applies (environment, profile, instance
    role...). ``max_attempts`` counts the first try (1 = no retries).
    """

    def __init__(
        self,
        endpoint_url: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        *,
        region: str = DEFAULT_REGION,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 60.0,
        max_attempts: int = 3,
        max_pool_connections: int = 32,
    ):
        import boto3
        from botocore.config import Config

        if (access_key is None) != (secret_key is None):
            raise ValueError("give both an S3 access key and a secret key, or neither")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if connect_timeout_s <= 0 or read_timeout_s <= 0:
            raise ValueError("S3 timeouts must be positive")
        self.endpoint_url = endpoint_url
        self.region = region
        config = Config(
            region_name=region,
            signature_version="s3v4",
            connect_timeout=connect_timeout_s,
            read_timeout=read_timeout_s,
            retries={"max_attempts": max_attempts, "mode": "standard"},
            max_pool_connections=max_pool_connections,
            s3={"addressing_style": "path" if endpoint_url else "auto"},
            # S3-compatible servers do not all accept the flexible checksums newer botocore
            # sends by default; AWS does not need them either.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        # A session is not thread-safe, the client it makes is: make one, here, once.
        session = boto3.session.Session(
            aws_access_key_id=access_key, aws_secret_access_key=secret_key, region_name=region
        )
        self._client = session.client("s3", endpoint_url=endpoint_url, config=config)
        self._where = endpoint_url or f"AWS S3 ({region})"
        self._closed = threading.Event()

    def __repr__(self) -> str:
        return f"S3ObjectStore('{self._where}')"

    def ping(self) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._client.list_buckets()
        except (BotoCoreError, ClientError) as e:
            raise ObjectStoreError(f"cannot reach {self._where}: {e}") from e

    def close(self) -> None:
        if not self._closed.is_set():
            self._closed.set()
            self._client.close()

    # errors -----------------------------------------------------------------------------------

    def _fail(
        self, action: str, e: Exception, bucket: str, key: str | None = None
    ) -> ObjectStoreError:
        """An ObjectStoreError saying what failed where, from a botocore exception."""
        from botocore.exceptions import ClientError

        what = f"bucket '{bucket}'" if key is None else f"'{key}' in bucket '{bucket}'"
        if isinstance(e, ClientError):
            code, message = _client_error(e)
            if code in ("NoSuchKey", "NoSuchBucket", "404", "NotFound"):
                reason = (
                    f"bucket '{bucket}' does not exist"
                    if code == "NoSuchBucket" or key is None
                    else f"no object '{key}' in bucket '{bucket}'"
                )
                if key is None:
                    return ObjectStoreError(f"cannot {action} {what}: {reason}", bucket=bucket)
                return ObjectNotFoundError(
                    f"cannot {action} '{key}': {reason}", bucket=bucket, key=key
                )
            detail = f"{code}: {message}" if message and message != code else code
            return ObjectStoreError(
                f"cannot {action} {what} on {self._where}: {detail}", bucket=bucket, key=key
            )
        return ObjectStoreError(
            f"cannot {action} {what} on {self._where}: {e}", bucket=bucket, key=key
        )

    # buckets ----------------------------------------------------------------------------------

    def ensure_bucket(self, bucket: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        validate_bucket(bucket)
        kwargs: dict[str, Any] = {"Bucket": bucket}
        if self.region != DEFAULT_REGION:
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            self._client.create_bucket(**kwargs)
        except ClientError as e:
            code, _ = _client_error(e)
            if code == "BucketAlreadyOwnedByYou":
                return
            if code == "BucketAlreadyExists":
                raise ObjectStoreError(
                    f"cannot create bucket '{bucket}' on {self._where}: the name is taken "
                    "by another account",
                    bucket=bucket,
                ) from e
            raise self._fail("create", e, bucket) from e
        except BotoCoreError as e:
            raise self._fail("create", e, bucket) from e

    def bucket_exists(self, bucket: str) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        validate_bucket(bucket)
        try:
            self._client.head_bucket(Bucket=bucket)
        except ClientError as e:
            code, _ = _client_error(e)
            if code in ("404", "NoSuchBucket", "NotFound"):
                return False
            raise self._fail("check", e, bucket) from e
        except BotoCoreError as e:
            raise self._fail("check", e, bucket) from e
        return True

    def delete_bucket(self, bucket: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        validate_bucket(bucket)
        try:
            for attempt in range(3):
                self._empty(bucket, versions=attempt > 0)
                try:
                    self._client.delete_bucket(Bucket=bucket)
                    return
                except ClientError as e:
                    # Versioned objects, or a writer racing us: empty again, versions included.
                    if _client_error(e)[0] != "BucketNotEmpty" or attempt == 2:
                        raise
        except ClientError as e:
            if _client_error(e)[0] == "NoSuchBucket":
                return
            raise self._fail("delete", e, bucket) from e
        except BotoCoreError as e:
            raise self._fail("delete", e, bucket) from e

    def _empty(self, bucket: str, *, versions: bool) -> None:
        if versions:
            pages = self._client.get_paginator("list_object_versions").paginate(Bucket=bucket)
            batches = (
                [
                    {"Key": o["Key"], "VersionId": o["VersionId"]}
                    for o in page.get("Versions", []) + page.get("DeleteMarkers", [])
                ]
                for page in pages
            )
        else:
            pages = self._client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            batches = ([{"Key": o["Key"]} for o in page.get("Contents", [])] for page in pages)
        for batch in batches:
            for i in range(0, len(batch), 1000):
                resp = self._client.delete_objects(
                    Bucket=bucket, Delete={"Objects": batch[i : i + 1000], "Quiet": True}
                )
                errors = resp.get("Errors") or []
                if errors:
                    first = errors[0]
                    raise ObjectStoreError(
                        f"cannot delete bucket '{bucket}' on {self._where}: {len(errors)} "
                        f"object(s) could not be deleted, e.g. '{first.get('Key')}': "
                        f"{first.get('Code')}: {first.get('Message')}",
                        bucket=bucket,
                    )

    # objects ----------------------------------------------------------------------------------

    def put(self, bucket: str, key: str, data: bytes, content_type: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        validate_bucket(bucket)
        validate_key(key)
        data = _as_bytes(data)
        content_type = _validate_content_type(content_type)
        try:
            self._client.put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type)
        except ClientError as e:
            if _client_error(e)[0] == "NoSuchBucket":
                raise ObjectStoreError(
                    f"cannot store '{key}': bucket '{bucket}' does not exist",
                    bucket=bucket,
                    key=key,
                ) from e
            raise self._fail("store", e, bucket, key) from e
        except BotoCoreError as e:
            raise self._fail("store", e, bucket, key) from e

    def get(self, bucket: str, key: str) -> tuple[bytes, str]:
        from botocore.exceptions import BotoCoreError, ClientError

        validate_bucket(bucket)
        validate_key(key)
        try:
            resp = self._client.get_object(Bucket=bucket, Key=key)
            with resp["Body"] as body:
                data = body.read()
        except (ClientError, BotoCoreError) as e:
            raise self._fail("read", e, bucket, key) from e
        except OSError as e:  # connection dropped mid-body
            raise ObjectStoreError(
                f"cannot read '{key}' in bucket '{bucket}' on {self._where}: {e}",
                bucket=bucket,
                key=key,
            ) from e
        return data, resp.get("ContentType") or sniff_content_type(data)

    def delete(self, bucket: str, key: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        validate_bucket(bucket)
        validate_key(key)
        try:
            self._client.delete_object(Bucket=bucket, Key=key)
        except ClientError as e:
            if _client_error(e)[0] in ("NoSuchBucket", "NoSuchKey"):
                return
            raise self._fail("delete", e, bucket, key) from e
        except BotoCoreError as e:
            raise self._fail("delete", e, bucket, key) from e

    def keys(self, bucket: str) -> list[str]:
        from botocore.exceptions import BotoCoreError, ClientError

        validate_bucket(bucket)
        try:
            pages = self._client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
        except ClientError as e:
            if _client_error(e)[0] == "NoSuchBucket":
                raise ObjectStoreError(
                    f"cannot list bucket '{bucket}': it does not exist", bucket=bucket
                ) from e
            raise self._fail("list", e, bucket) from e
        except BotoCoreError as e:
            raise self._fail("list", e, bucket) from e
        return sorted(keys, key=lambda k: k.encode("utf-8"))

    def modified_times(self, bucket: str) -> dict[str, float]:
        from botocore.exceptions import BotoCoreError, ClientError

        validate_bucket(bucket)
        try:
            pages = self._client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            return {
                o["Key"]: o["LastModified"].timestamp()
                for page in pages
                for o in page.get("Contents", [])
            }
        except (ClientError, BotoCoreError) as e:
            raise self._fail("list", e, bucket) from e

    def presigned_url(self, bucket: str, key: str, expires_s: int) -> str | None:
        from botocore.exceptions import BotoCoreError

        validate_bucket(bucket)
        validate_key(key)
        _validate_expiry(expires_s)
        try:
            return self._client.generate_presigned_url(
                "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires_s
            )
        except BotoCoreError as e:  # e.g. no credentials found
            raise self._fail("sign a URL for", e, bucket, key) from e


def _client_error(e: Any) -> tuple[str, str]:
    err = e.response.get("Error", {}) if isinstance(getattr(e, "response", None), dict) else {}
    code = str(err.get("Code") or e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
    return code or "error", str(err.get("Message") or "")


# ---------------------------------------------------------------------------------------------
# By URL

_S3_OPTIONS = {
    "region": ("region", str),
    "connect_timeout": ("connect_timeout_s", float),
    "read_timeout": ("read_timeout_s", float),
    "max_attempts": ("max_attempts", int),
}
_REGION_RE = re.compile(r"[a-z0-9-]{1,32}")


def open_object_store(url: str) -> ObjectStore:
    """The object store a URL names (see the module's docstring)."""
    if not isinstance(url, str) or not url.strip():
        raise ValueError("the object store URL is empty; give a folder path or an s3:// URL")
    url = url.strip()
    scheme, sep, _ = url.partition("://")
    scheme = scheme.lower() if sep else ""
    if scheme in ("s3", "s3s"):
        return _open_s3(url, https=scheme == "s3s")
    if scheme == "file":
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise ValueError(
                f"file URL '{url}' names a host; write file:///absolute/path "
                "(three slashes) or a plain path"
            )
        if parts.query or parts.fragment:
            raise ValueError(f"file URL '{url}' takes no query or fragment")
        path = unquote(parts.path)
        if not path:
            raise ValueError(f"file URL '{url}' names no folder")
        return FolderObjectStore(path)
    if sep and re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme) and len(scheme) > 1:
        raise ValueError(
            f"unsupported object store URL scheme '{scheme}://': use a folder path, "
            "file:///path, s3://KEY:SECRET@host:port, s3s://KEY:SECRET@host:port or s3://"
        )
    return FolderObjectStore(url)


def _open_s3(url: str, *, https: bool) -> S3ObjectStore:
    parts = urlsplit(url)
    safe = _redact(parts)
    if parts.path not in ("", "/") or parts.fragment:
        raise ValueError(
            f"S3 URL '{safe}' must name only the endpoint (no path): buckets are chosen "
            "by the application"
        )
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"S3 URL '{safe}' has an invalid port") from None
    host = parts.hostname
    access = unquote(parts.username) if parts.username is not None else None
    secret = unquote(parts.password) if parts.password is not None else None
    if access is not None and secret is None:
        raise ValueError(f"S3 URL '{safe}' gives an access key but no secret key (KEY:SECRET@)")
    if not access and not secret:
        access = secret = None  # boto3's default credential chain
    elif not access or not secret:
        raise ValueError(f"S3 URL '{safe}' has an empty access key or secret key")

    options: dict[str, Any] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name not in _S3_OPTIONS:
            raise ValueError(
                f"S3 URL '{safe}' has an unknown option '{name}'; "
                f"known: {', '.join(_S3_OPTIONS)}"
            )
        arg, kind = _S3_OPTIONS[name]
        try:
            options[arg] = kind(value)
        except ValueError:
            raise ValueError(
                f"S3 URL '{safe}': option '{name}' must be a {kind.__name__}, not '{value}'"
            ) from None
    region = options.get("region", DEFAULT_REGION)
    if not _REGION_RE.fullmatch(region):
        raise ValueError(f"S3 URL '{safe}': '{region}' is not a region name (e.g. eu-west-1)")

    endpoint = None
    if host:
        shown_host = f"[{host}]" if ":" in host else host
        endpoint = f"{'https' if https else 'http'}://{shown_host}"
        if port is not None:
            endpoint += f":{port}"
    elif port is not None:
        raise ValueError(f"S3 URL '{safe}' gives a port but no host")
    return S3ObjectStore(endpoint, access, secret, **options)


def _redact(parts: Any) -> str:
    """The URL with its secret key hidden, for error messages."""
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{hostport}" if ":" in userinfo else f"{user}@{hostport}"
    query = f"?{parts.query}" if parts.query else ""
    return f"{parts.scheme}://{netloc}{parts.path}{query}"
