"""The folder object store: each bucket a folder, each object a file (see
:class:`FolderObjectStore`). Opened by :func:`phantoscope.storage.open_stores.open_object_store`
for a path or a ``file://`` URL."""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from pathlib import Path

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

__all__ = ["FolderObjectStore"]


def _drop_cached_pages(fd: int) -> None:
    """Let the kernel drop an open file's pages from its page cache, once they are on disk.

    An import writes every original once and reads few of them back soon, yet each write
    filled new page-cache pages, growing the cache by the whole import: writing a 2.6 MB photo
    took 3.8-4.7 ms of CPU. With the pages of the file before dropped, the next write reuses
    them: 1.7-1.9 ms (60 photos a run, 3 runs each way, 2 cores). Advice only: a file system
    that cannot drop pages keeps them.
    """
    if hasattr(os, "posix_fadvise"):
        with contextlib.suppress(OSError):
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)


class FolderObjectStore(ObjectStore):
    """Objects as files: ``<root>/<bucket>/<key>``.

    The content type given at ``put`` is kept in ``<root>/<bucket>/.meta/<key>``, unless it is
    the type the object's first bytes tell: an object without a type file (such an image, or a
    file copied in by hand) gets the type its bytes tell. Writes go to a temporary file in the
    same folder, flushed to disk (when ``fsync``) and dropped from the page cache, then renamed
    over the target, so a crash never leaves half an image. A deleted bucket is first renamed
    out of sight, so a half-deleted one is never visible; leftovers are removed at the next
    open.
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
        data = as_bytes(data)
        content_type = validate_content_type(content_type)
        if not bdir.is_dir():
            raise ObjectStoreError(
                f"cannot store '{key}': bucket '{bucket}' does not exist", bucket=bucket, key=key
            )
        try:
            # The type first: a crash in between leaves a harmless stray type file (or an
            # earlier object's bytes without theirs), never an image with the wrong type.
            if content_type == sniff_content_type(data):
                # what get() tells from the bytes needs no file (one file, not two, a photo)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(meta)
            else:
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
                    _drop_cached_pages(f.fileno())
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
        validate_expiry(expires_s)
        return None


def _os_reason(e: OSError) -> str:
    return e.strerror or type(e).__name__
