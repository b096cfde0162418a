"""The S3 object store: AWS S3 or any S3-compatible server (MinIO, moto, Ceph...) through
boto3 (see :class:`S3ObjectStore`), and the ``s3://`` / ``s3s://`` URLs that name one
(:func:`open_s3_url`, called by :func:`phantoscope.storage.open_stores.open_object_store`)."""

from __future__ import annotations

import re
import threading
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from phantoscope.storage.objects import (
    ObjectNotFoundError,
    ObjectStore,
    ObjectStoreError,
    as_bytes,
    sniff_content_type,
    validate_bucket,
    validate_content_type,
    validate_expiry,
    validate_key,
)

__all__ = ["DEFAULT_REGION", "S3ObjectStore", "open_s3_url"]

DEFAULT_REGION = "us-east-1"


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
        data = as_bytes(data)
        content_type = validate_content_type(content_type)
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

    # import sources: any key of any bucket (``/`` included), read only ---------------------

    def list_prefix(self, bucket: str, prefix: str) -> list[tuple[str, int]]:
        """(key, size) of the bucket's objects whose keys start with ``prefix``, in key
        order; a bucket that does not exist: :class:`ObjectNotFoundError`."""
        from botocore.exceptions import BotoCoreError, ClientError

        validate_bucket(bucket)
        try:
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=prefix)
            found = [(o["Key"], int(o["Size"])) for page in pages for o in page.get("Contents", [])]
        except ClientError as e:
            if _client_error(e)[0] == "NoSuchBucket":
                raise ObjectNotFoundError(
                    f"cannot list bucket '{bucket}': it does not exist", bucket=bucket) from e
            raise self._fail("list", e, bucket) from e
        except BotoCoreError as e:
            raise self._fail("list", e, bucket) from e
        return sorted(found, key=lambda each: each[0].encode("utf-8"))

    def read_key(self, bucket: str, key: str, max_bytes: int) -> tuple[int, bytes | None]:
        """The object's size and bytes (None, unread, when over ``max_bytes``); a key or
        bucket that does not exist: :class:`ObjectNotFoundError`."""
        from botocore.exceptions import BotoCoreError, ClientError

        validate_bucket(bucket)
        try:
            reply = self._client.get_object(Bucket=bucket, Key=key)
            size = int(reply["ContentLength"])
            with reply["Body"] as body:
                return size, (body.read() if size <= max_bytes else None)
        except ClientError as e:
            raise self._fail("read", e, bucket, key) from e
        except BotoCoreError as e:
            raise self._fail("read", e, bucket, key) from e

    def presigned_url(self, bucket: str, key: str, expires_s: int) -> str | None:
        from botocore.exceptions import BotoCoreError

        validate_bucket(bucket)
        validate_key(key)
        validate_expiry(expires_s)
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


def open_s3_url(url: str, *, https: bool) -> S3ObjectStore:
    """The store an ``s3://`` (``https`` False) or ``s3s://`` URL names (see
    :mod:`phantoscope.storage.objects`)."""
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
