"""Settings, read from the environment in one place. Imports nothing of Phantoscope's own,
so every layer can read it."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Images over this many pixels are refused before decoding (imaging.codec's default too).
MAX_IMAGE_PIXELS = 64_000_000
DEFAULT_OPERATOR_ENDPOINT = "127.0.0.1:50001"
# PHANTOSCOPE_VECTORS value: `phantoscope up` starts a Milvus server under the home folder.
LOCAL_MILVUS_SERVER = "milvus-server"
SERVER_SCHEMES = ("http://", "https://", "tcp://")  # a PHANTOSCOPE_VECTORS naming a server


class OperatorSettings(BaseSettings):
    """How an operator is served. Environment: ``OP_ENDPOINT`` and ``PHANTOSCOPE_*``."""

    model_config = SettingsConfigDict(
        env_prefix="PHANTOSCOPE_", extra="ignore", populate_by_name=True
    )

    # `host:port` the operator reports in Identity and whose port it listens on, as in the
    # original template (`OP_ENDPOINT`).
    endpoint: str = Field(
        DEFAULT_OPERATOR_ENDPOINT, validation_alias=AliasChoices("OP_ENDPOINT")
    )
    max_batch_size: int | None = Field(None, ge=1, le=1024)
    batch_wait_ms: float = Field(2.0, ge=0, le=1000)
    threads: int = Field(32, ge=1, le=512)
    # ONNX Runtime's intra-op threads per model session (None: one per core).
    ort_threads: int | None = Field(None, ge=1, le=256)
    max_items_per_request: int = Field(256, ge=1)
    max_image_pixels: int = Field(MAX_IMAGE_PIXELS, ge=1)
    fetch_timeout_s: float = Field(10.0, gt=0)
    fetch_max_bytes: int = Field(32 * 1024 * 1024, ge=1)
    allow_private_urls: bool = False
    max_message_bytes: int = 100 * 1024 * 1024
    # Stop when the process that started this one is gone (set by `OperatorProcess`, so that
    # an operator never outlives a `phantoscope up` that was killed outright).
    stop_with_parent: bool = False


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address, IPv6 in brackets or not) is this machine's
    loopback."""
    if host.strip("[]") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def endpoint_port(endpoint: str) -> int:
    """The port of a `host:port` endpoint (IPv6 hosts in brackets)."""
    _host, sep, port = endpoint.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"endpoint {endpoint!r} is not of the form host:port")
    return int(port)


class ServerSettings(BaseSettings):
    """The API server and its stores. Environment: ``PHANTOSCOPE_*``.

    Every store defaults to a place under ``home``: Milvus Lite, SQLite and a folder.
    """

    model_config = SettingsConfigDict(env_prefix="PHANTOSCOPE_", extra="ignore")

    home: Path = Path("data")
    host: str = "127.0.0.1"
    port: int = Field(5000, ge=0, le=65535)
    # A `.db` path (Milvus Lite), http://host:19530 (a server), or `milvus-server`: a local
    # Milvus server that `phantoscope up` starts and stops (its data under home).
    vectors: str | None = None
    # The Milvus Lite database `vectors` names is served by another process at this address
    # (http://127.0.0.1:PORT, a `lite_host`), so that several processes (API workers) use
    # it; unset: this process opens it. Only for a Lite path.
    lite_host: str | None = None
    meta: str | None = None  # SQLAlchemy URL
    objects: str | None = None  # a folder path, or s3://KEY:SECRET@host:port
    operator_timeout_s: float = Field(60.0, gt=0)
    # Send images to operators that announce it as their files' bytes; false: base64 to all,
    # as to an original-protocol operator (costs the API CPU; for comparison and debugging).
    operator_image_bytes: bool = True
    # Ask an upload's encoder, when it announces them, for each image's grey thumbnail, so
    # that the duplicate check decodes nothing; false: the API decodes each upload for it
    # (costs the API CPU; for comparison and debugging).
    operator_thumbnails: bool = True
    # Longest wait for one call to the vector store before answering 503.
    storage_timeout_s: float = Field(10.0, gt=0)
    max_upload_bytes: int = Field(32 * 1024 * 1024, ge=1)
    max_image_pixels: int = Field(MAX_IMAGE_PIXELS, ge=1)
    max_batch_images: int = Field(256, ge=1)
    fetch_timeout_s: float = Field(10.0, gt=0)
    allow_private_urls: bool = False
    presign_expires_s: int = Field(3600, ge=60, le=604800)
    # The API's address as callers reach it (`https://images.example`), for the image links
    # in answers; empty: the links are relative (`/v1/application/...`).
    public_url: str = ""
    # Comma-separated `role:key` entries, role `read` (search and list) or `admin` (also
    # change); unset = open to anyone who can reach the port.
    api_keys: str | None = None
    cors_origins: str = ""  # comma-separated origins allowed to call the API from a browser
    max_request_bytes: int = Field(128 * 1024 * 1024, ge=1)  # any one request body
    log_format: Literal["json", "text"] = "json"
    log_level: str = "INFO"
    # What an interrupted upload left is repaired only once older than this, so that
    # uploads still running on another replica are never touched.
    repair_grace_s: float = Field(300.0, ge=0)
    repair_interval_s: float = Field(300.0, ge=0)  # how often a running server repairs; 0: never
    # Folders an import job may read (comma-separated absolute paths, with their subfolders);
    # none by default: the server reads no folder.
    import_roots: str = ""
    # The S3 endpoint import jobs read s3://bucket/prefix sources from, as
    # s3://KEY:SECRET@host:port (the object store's form); empty: the object store's own
    # endpoint when it is S3, else none (S3 sources refused).
    import_s3: str = ""
    job_batch_size: int = Field(32, ge=1, le=256)  # images of a job stored together
    job_concurrency: int = Field(4, ge=0, le=64)  # batches in work at once; 0: runs no jobs
    # A job's claimed items not finished (nor renewed) for this long are taken for abandoned
    # (their server was killed) and claimed again.
    job_lease_s: float = Field(60.0, gt=0)
    job_poll_s: float = Field(1.0, gt=0)  # how often an idle server looks for job work
    # After a field switches pipeline, the old pipeline's vectors are kept this long (a
    # switch back within it needs no reindex), then removed.
    switch_grace_s: float = Field(86400.0, ge=0)
    # How often a watch job's folder is scanned for files added, changed and removed.
    watch_interval_s: float = Field(30.0, gt=0)

    @model_validator(mode="after")
    def _lite_host_serves_lite(self) -> ServerSettings:
        vectors = (self.vectors or "").strip().lower()
        server = vectors == LOCAL_MILVUS_SERVER or vectors.startswith(SERVER_SCHEMES)
        if self.lite_host and server:
            raise ValueError(
                "PHANTOSCOPE_LITE_HOST names a Milvus Lite host, but PHANTOSCOPE_VECTORS "
                "names a Milvus server: unset one of them")
        return self

    @property
    def vectors_uri(self) -> str:
        return self.vectors or str(self.home / "milvus.db")

    @property
    def meta_url(self) -> str:
        return self.meta or f"sqlite:///{self.home / 'meta.db'}"

    @property
    def objects_url(self) -> str:
        return self.objects or str(self.home / "objects")

