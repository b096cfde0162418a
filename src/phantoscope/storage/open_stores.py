"""Opening a store from the URL or path that names it: the one place that knows every
backend (each backend module imports only its interface module)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote, urlsplit

from phantoscope.storage.folder_objects import FolderObjectStore
from phantoscope.storage.milvus_vectors import MilvusVectorStore
from phantoscope.storage.objects import ObjectStore
from phantoscope.storage.s3_objects import S3ObjectStore
from phantoscope.storage.vectors import VectorStore


def open_object_store(url: str) -> ObjectStore:
    """The object store a URL names (the forms: :mod:`phantoscope.storage.objects`)."""
    if not isinstance(url, str) or not url.strip():
        raise ValueError("the object store URL is empty; give a folder path or an s3:// URL")
    url = url.strip()
    scheme, sep, _ = url.partition("://")
    scheme = scheme.lower() if sep else ""
    if scheme in ("s3", "s3s"):
        from phantoscope.storage.s3_objects import open_s3_url  # boto3 only when asked for

        return open_s3_url(url, https=scheme == "s3s")
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


def open_import_s3(url: str, objects: ObjectStore) -> S3ObjectStore | None:
    """The S3 endpoint import jobs read ``s3://bucket/prefix`` sources from: ``url`` (an
    ``s3://`` or ``s3s://`` URL of the object store's form) when given, else the object store
    itself when it is in S3, else none."""
    url = url.strip()
    if not url:
        return objects if isinstance(objects, S3ObjectStore) else None
    scheme = url.partition("://")[0].lower()
    if scheme not in ("s3", "s3s"):
        raise ValueError("the S3 endpoint of import jobs must be an s3:// or s3s:// URL "
                         "(s3://KEY:SECRET@host:port, or s3:// for AWS)")
    from phantoscope.storage.s3_objects import open_s3_url  # boto3 only when asked for

    return open_s3_url(url, https=scheme == "s3s")


def open_vector_store(uri: str, **options: Any) -> VectorStore:
    """Open vector collections by URI.

    ``path/to/vectors.db`` (relative or absolute; its parent folder is created): embedded
    Milvus Lite. ``http://host:19530``, ``https://…`` or ``tcp://…``: a Milvus server (token
    from ``$PHANTOSCOPE_MILVUS_TOKEN``, or ``user:password@`` in the URI). `options` go to
    `MilvusVectorStore` (`index_type`, `token`, `lite_flush_bytes`, `timeout_s`,
    `lite_host`: the address of the process serving a Lite database, see `lite_host`).
    """
    if not isinstance(uri, str) or not uri.strip():
        raise ValueError("the vector store URI is empty")
    return MilvusVectorStore(uri.strip(), **options)
