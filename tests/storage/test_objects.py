"""Object stores: one contract, run against a folder and a real S3 server (moto on loopback)."""

from __future__ import annotations

import ctypes
import itertools
import mmap
import socket
import sys
import threading
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from phantoscope.storage.folder_objects import FolderObjectStore
from phantoscope.storage.objects import (
    ObjectNotFoundError,
    ObjectStore,
    ObjectStoreError,
)
from phantoscope.storage.open_stores import open_object_store
from phantoscope.storage.s3_objects import S3ObjectStore
from s3_server import S3TestServer, s3_test_server

JPEG = resources.files("phantoscope.assets").joinpath("sample.jpg").read_bytes()
PNG_HEAD = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@pytest.fixture(scope="module")
def s3() -> S3TestServer:
    with s3_test_server() as server:
        yield server


@pytest.fixture(params=["folder", "s3"])
def store(request, tmp_path) -> ObjectStore:
    if request.param == "folder":
        st = open_object_store(str(tmp_path / "objects"))
    else:
        st = open_object_store(request.getfixturevalue("s3").url)
    yield st
    st.close()


def _name() -> str:
    return f"t-{uuid.uuid4().hex[:16]}"


@pytest.fixture
def bucket(store) -> str:
    name = _name()
    store.ensure_bucket(name)
    yield name
    store.delete_bucket(name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _http_get(url: str) -> tuple[bytes, str]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=10) as resp:
        return resp.read(), resp.headers.get("Content-Type")


# --- the contract, on both backends ------------------------------------------------------------


def test_put_get_round_trip_keeps_bytes_and_content_type(store, bucket):
    assert JPEG[:3] == b"\xff\xd8\xff"
    store.put(bucket, "photo.jpg", JPEG, "image/jpeg")
    assert store.get(bucket, "photo.jpg") == (JPEG, "image/jpeg")
    # The given type is kept, even where the bytes would tell another.
    store.put(bucket, "blob", PNG_HEAD, "application/x-custom")
    assert store.get(bucket, "blob") == (PNG_HEAD, "application/x-custom")
    store.put(bucket, "empty", b"", "application/octet-stream")
    assert store.get(bucket, "empty") == (b"", "application/octet-stream")
    store.put(bucket, "view", memoryview(JPEG), "image/jpeg")
    assert store.get(bucket, "view")[0] == JPEG


def test_put_replaces_an_object(store, bucket):
    store.put(bucket, "k", JPEG, "image/jpeg")
    store.put(bucket, "k", PNG_HEAD, "image/png")
    assert store.get(bucket, "k") == (PNG_HEAD, "image/png")
    assert store.keys(bucket) == ["k"]


def test_keys_lists_every_object_sorted(store, bucket):
    assert store.keys(bucket) == []
    names = ["b.jpg", "a.jpg", "10", "2", "ünïcode-名前.png", "with space.jpg", "a..b"]
    for n in names:
        store.put(bucket, n, n.encode(), "text/plain")
    assert store.keys(bucket) == sorted(names, key=lambda n: n.encode())
    for n in names:
        assert store.get(bucket, n) == (n.encode(), "text/plain")


def test_delete(store, bucket):
    store.put(bucket, "a", b"1", "text/plain")
    store.put(bucket, "b", b"2", "text/plain")
    store.delete(bucket, "a")
    assert store.keys(bucket) == ["b"]
    with pytest.raises(ObjectNotFoundError):
        store.get(bucket, "a")
    store.delete(bucket, "a")  # absent: no error
    store.delete(_name(), "a")  # absent bucket: no error
    assert store.get(bucket, "b") == (b"2", "text/plain")


def test_get_missing_raises_object_not_found(store, bucket):
    with pytest.raises(ObjectNotFoundError) as e:
        store.get(bucket, "nope.jpg")
    assert isinstance(e.value, ObjectStoreError)
    assert "nope.jpg" in str(e.value) and bucket in str(e.value)
    assert (e.value.bucket, e.value.key) == (bucket, "nope.jpg")
    missing = _name()
    with pytest.raises(ObjectNotFoundError, match=f"bucket '{missing}' does not exist"):
        store.get(missing, "nope.jpg")


def test_missing_bucket_put_and_keys_fail_clearly(store):
    missing = _name()
    with pytest.raises(ObjectStoreError, match=f"bucket '{missing}' does not exist") as e:
        store.put(missing, "k", b"x", "text/plain")
    assert not isinstance(e.value, ObjectNotFoundError)
    with pytest.raises(ObjectStoreError, match=f"bucket '{missing}'.*does not exist"):
        store.keys(missing)
    assert not store.bucket_exists(missing)  # put did not create it


def test_ensure_bucket_is_idempotent(store):
    name = _name()
    assert not store.bucket_exists(name)
    store.ensure_bucket(name)
    store.put(name, "k", b"x", "text/plain")
    store.ensure_bucket(name)
    assert store.bucket_exists(name)
    assert store.keys(name) == ["k"]  # a second ensure keeps the objects
    store.delete_bucket(name)


def test_delete_bucket_removes_everything(store):
    name = _name()
    store.ensure_bucket(name)
    for i in range(5):
        store.put(name, f"img-{i}.jpg", JPEG, "image/jpeg")
    store.delete_bucket(name)
    assert not store.bucket_exists(name)
    with pytest.raises(ObjectNotFoundError):
        store.get(name, "img-0.jpg")
    with pytest.raises(ObjectStoreError):
        store.keys(name)
    store.delete_bucket(name)  # absent: no error
    store.ensure_bucket(name)  # the name can be used again, empty
    assert store.keys(name) == []
    store.delete_bucket(name)


def test_delete_bucket_with_more_than_one_page_of_objects(store):
    name = _name()
    store.ensure_bucket(name)
    keys = [f"obj-{i:05d}" for i in range(1010)]  # S3 lists and deletes 1000 at a time
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda k: store.put(name, k, k.encode(), "text/plain"), keys))
    assert store.keys(name) == keys
    store.delete_bucket(name)
    assert not store.bucket_exists(name)


BAD_BUCKETS = [
    "", "ab", "x" * 64, "Upper", "under_score", "-leading", "trailing-", ".dot", "dot.",
    "a..b", "192.168.1.1", "../escape", "a/b", "with space", "nul\x00byte", "/abs",
]


def test_invalid_bucket_names_are_rejected_with_the_rule(store):
    calls = (
        lambda name: store.ensure_bucket(name),
        lambda name: store.bucket_exists(name),
        lambda name: store.delete_bucket(name),
        lambda name: store.put(name, "k", b"x", "text/plain"),
        lambda name: store.get(name, "k"),
        lambda name: store.delete(name, "k"),
        lambda name: store.keys(name),
        lambda name: store.presigned_url(name, "k", 60),
    )
    for name, call in itertools.product(BAD_BUCKETS, calls):
        with pytest.raises(ValueError, match="3-63 characters of lowercase letters"):
            call(name)


def test_valid_bucket_names_are_accepted(store):
    for name in ("abc", "a" * 63, f"my.bucket-{uuid.uuid4().hex[:8]}", f"0{uuid.uuid4().hex}"):
        store.ensure_bucket(name)
        assert store.bucket_exists(name)
        store.delete_bucket(name)


BAD_KEYS = [
    "", ".", "..", "../x", "../../etc/passwd", "a/b", "/abs", "/etc/passwd", "a\\b", "..\\x",
    "nul\x00byte", "tab\tkey", "new\nline", ".hidden", ".meta", "x" * 256, "é" * 128,
]


def test_path_escaping_and_invalid_keys_are_rejected(store, bucket, tmp_path):
    calls = (
        lambda key: store.put(bucket, key, b"x", "text/plain"),
        lambda key: store.get(bucket, key),
        lambda key: store.delete(bucket, key),
        lambda key: store.presigned_url(bucket, key, 60),
    )
    for key, call in itertools.product(BAD_KEYS, calls):
        with pytest.raises(ValueError, match="object keys must be"):
            call(key)
    assert store.keys(bucket) == []
    # nothing was written anywhere under the test's folder
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_the_longest_valid_key_works(store, bucket):
    key = "k" * 255
    store.put(bucket, key, b"x", "text/plain")
    assert store.get(bucket, key) == (b"x", "text/plain")
    assert store.keys(bucket) == [key]


def test_invalid_content_type_and_data_are_rejected(store, bucket):
    for ct in ("", "   ", "image/jpeg\r\nX-Evil: 1", "x" * 256, "imäge/jpeg"):
        with pytest.raises(ValueError, match="content type"):
            store.put(bucket, "k", b"x", ct)
    with pytest.raises(TypeError, match="bytes"):
        store.put(bucket, "k", "text", "text/plain")
    assert store.keys(bucket) == []


def test_presigned_url(store, bucket):
    store.put(bucket, "photo.jpg", JPEG, "image/jpeg")
    url = store.presigned_url(bucket, "photo.jpg", 300)
    if isinstance(store, FolderObjectStore):
        assert url is None  # the API serves the file itself
    else:
        assert url.startswith(store.endpoint_url + f"/{bucket}/photo.jpg?")  # path-style
        assert parse_qs(urlsplit(url).query)["X-Amz-Expires"] == ["300"]
        assert _http_get(url) == (JPEG, "image/jpeg")
    for bad in (0, -1, 7 * 24 * 3600 + 1, 1.5):
        with pytest.raises(ValueError, match="expires_s"):
            store.presigned_url(bucket, "photo.jpg", bad)


def test_concurrent_puts_and_gets_round_trip_intact(store, bucket):
    threads, per_thread = 8, 50
    barrier = threading.Barrier(threads)

    def payload(t: int, i: int) -> bytes:
        return JPEG[:200] + f"{t}:{i}:".encode() * (1 + (t * 7 + i) % 50)

    def work(t: int) -> int:
        barrier.wait()
        for i in range(per_thread):
            key = f"t{t}-{i:03d}.jpg"
            store.put(bucket, key, payload(t, i), "image/jpeg")
            assert store.get(bucket, key) == (payload(t, i), "image/jpeg")
            other = (t + 1) % threads, max(i - 5, 0)  # read what a neighbour may have written
            try:
                data, _ = store.get(bucket, f"t{other[0]}-{other[1]:03d}.jpg")
            except ObjectNotFoundError:
                continue
            assert data == payload(*other)
        return per_thread

    with ThreadPoolExecutor(threads) as pool:
        assert sum(pool.map(work, range(threads))) == threads * per_thread
    keys = store.keys(bucket)
    assert len(keys) == threads * per_thread
    for t in range(threads):
        for i in range(per_thread):
            assert store.get(bucket, f"t{t}-{i:03d}.jpg") == (payload(t, i), "image/jpeg")


# --- S3 only ----------------------------------------------------------------------------------


def test_s3_unreachable_endpoint_fails_quickly_with_a_clear_error():
    port = _free_port()  # bound then released: nothing listens there
    store = open_object_store(
        f"s3://someone:topsecret@127.0.0.1:{port}?max_attempts=1&connect_timeout=1&read_timeout=1"
    )
    start = time.monotonic()
    for call in (
        lambda: store.ensure_bucket("photos"),
        lambda: store.put("photos", "a.jpg", JPEG, "image/jpeg"),
        lambda: store.get("photos", "a.jpg"),
        lambda: store.keys("photos"),
        lambda: store.bucket_exists("photos"),
        lambda: store.delete_bucket("photos"),
    ):
        with pytest.raises(ObjectStoreError) as e:
            call()
        assert not isinstance(e.value, ObjectNotFoundError)
        msg = str(e.value)
        assert "'photos'" in msg and f"127.0.0.1:{port}" in msg, msg
        assert "topsecret" not in msg and "Error(" not in msg, msg
    assert time.monotonic() - start < 10
    store.close()


def test_s3_other_region(s3):
    with open_object_store(s3.url_with(region="eu-west-1")) as store:
        assert isinstance(store, S3ObjectStore) and store.region == "eu-west-1"
        name = _name()
        store.ensure_bucket(name)
        store.ensure_bucket(name)  # outside us-east-1 S3 answers BucketAlreadyOwnedByYou
        store.put(name, "a.jpg", JPEG, "image/jpeg")
        url = store.presigned_url(name, "a.jpg", 60)
        assert "eu-west-1" in parse_qs(urlsplit(url).query)["X-Amz-Credential"][0]
        assert _http_get(url) == (JPEG, "image/jpeg")
        store.delete_bucket(name)


def test_s3_keys_are_percent_decoded(s3):
    url = f"s3://AK%2Bx:se%2Fcr%40et@{s3.host}:{s3.port}"
    with open_object_store(url) as store:
        name = _name()
        store.ensure_bucket(name)
        store.put(name, "k", b"x", "text/plain")
        signed = store.presigned_url(name, "k", 60)
        assert parse_qs(urlsplit(signed).query)["X-Amz-Credential"][0].startswith("AK+x/")
        store.delete_bucket(name)


# --- folder only ------------------------------------------------------------------------------


def test_folder_layout_and_hand_copied_files(tmp_path):
    store = open_object_store(f"file://{tmp_path}/objs")
    assert isinstance(store, FolderObjectStore) and store.root == tmp_path / "objs"
    store.ensure_bucket("photos")
    store.put("photos", "a.jpg", JPEG, "image/jpeg")
    assert (tmp_path / "objs" / "photos" / "a.jpg").read_bytes() == JPEG
    # a file copied in by hand: listed, its type told by its bytes
    (tmp_path / "objs" / "photos" / "hand.png").write_bytes(PNG_HEAD)
    (tmp_path / "objs" / "photos" / "subdir").mkdir()
    assert store.keys("photos") == ["a.jpg", "hand.png"]
    assert store.get("photos", "hand.png") == (PNG_HEAD, "image/png")


def test_folder_keeps_a_type_file_only_for_a_type_the_bytes_do_not_tell(tmp_path):
    store = FolderObjectStore(tmp_path)
    store.ensure_bucket("photos")
    types = tmp_path / "photos" / ".meta"
    store.put("photos", "a.jpg", JPEG, "image/jpeg")
    assert (tmp_path / "photos" / "a.jpg").read_bytes() == JPEG
    assert not (types / "a.jpg").exists()  # one file a photo
    store.put("photos", "b", JPEG, "application/x-custom")
    assert (types / "b").read_text() == "application/x-custom"
    # replaced by an object whose bytes tell its type: the old type goes with the old bytes
    store.put("photos", "b", PNG_HEAD, "image/png")
    assert not (types / "b").exists()
    assert store.get("photos", "b") == (PNG_HEAD, "image/png")
    # as a release before this one wrote every object: a type file beside it, still read
    (types / "old.jpg").write_text("image/x-older")
    (tmp_path / "photos" / "old.jpg").write_bytes(JPEG)
    assert store.get("photos", "old.jpg") == (JPEG, "image/x-older")
    store.delete("photos", "old.jpg")
    assert not (types / "old.jpg").exists()


def test_folder_write_is_atomic(tmp_path, monkeypatch):
    store = FolderObjectStore(tmp_path)
    store.ensure_bucket("photos")
    store.put("photos", "a.jpg", JPEG, "image/jpeg")

    def crash(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.fsync", crash)
    with pytest.raises(ObjectStoreError, match=r"cannot store 'a\.jpg' in bucket 'photos'"):
        store.put("photos", "a.jpg", b"half an image", "image/jpeg")
    monkeypatch.undo()
    assert store.get("photos", "a.jpg") == (JPEG, "image/jpeg")  # the old image, whole
    leftovers = [p.name for p in tmp_path.rglob(".tmp-*")]
    assert leftovers == []


def test_folder_cleans_half_deleted_buckets_on_open(tmp_path):
    store = FolderObjectStore(tmp_path)
    store.ensure_bucket("photos")
    trash = tmp_path / ".deleting-photos-1234"
    (trash / "x").mkdir(parents=True)
    FolderObjectStore(tmp_path)
    assert not trash.exists()
    assert store.bucket_exists("photos")


def test_folder_root_that_is_a_file_is_an_error(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(ObjectStoreError, match=r"not a folder|cannot create"):
        FolderObjectStore(tmp_path / "f")


# --- URLs -------------------------------------------------------------------------------------


def test_urls_choose_the_backend(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert open_object_store("rel/objs").root == tmp_path / "rel" / "objs"
    assert open_object_store(str(tmp_path / "a")).root == tmp_path / "a"
    assert open_object_store(f"file://{tmp_path}/b%20c").root == tmp_path / "b c"
    assert open_object_store(f"file://localhost{tmp_path}/d").root == tmp_path / "d"

    def s3(url: str) -> S3ObjectStore:
        st = open_object_store(url)
        assert isinstance(st, S3ObjectStore)
        st.close()
        return st

    assert s3("s3://k:s@minio:9000").endpoint_url == "http://minio:9000"
    assert s3("s3s://k:s@minio.example.com:9443").endpoint_url == "https://minio.example.com:9443"
    assert s3("S3S://k:s@minio.example.com").endpoint_url == "https://minio.example.com"
    assert s3("s3://k:s@[::1]:9000").endpoint_url == "http://[::1]:9000"
    aws = s3("s3://?region=eu-central-1")
    assert aws.endpoint_url is None and aws.region == "eu-central-1"
    assert s3("s3://").region == "us-east-1"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "empty"),
        ("http://example.com/x", "unsupported object store URL scheme"),
        ("file://host/x", "names a host"),
        ("s3://k:topsecret@h:9000/bucket", "no path"),
        ("s3://k:topsecret@h:9000?bogus=1", "unknown option 'bogus'"),
        ("s3://k:topsecret@h:9000?max_attempts=x", "must be a int"),
        ("s3://k:topsecret@h:9000?region=EU%20West", "not a region"),
        ("s3://k@h:9000", "no secret key"),
        ("s3://k:topsecret@h:notaport", "invalid port"),
    ],
)
def test_bad_urls(url, message):
    with pytest.raises(ValueError, match=message) as e:
        open_object_store(url)
    assert "topsecret" not in str(e.value)


def _resident_pages(path: Path) -> tuple[int, int]:
    """How many of a file's pages are in the page cache, of how many (mincore(2) on a private
    mapping of it, not yet written to: its pages are the cache's)."""
    size = path.stat().st_size
    pages = -(-size // mmap.PAGESIZE)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_ubyte)]
    with path.open("rb") as file, \
            mmap.mmap(file.fileno(), size, access=mmap.ACCESS_COPY) as mapped:
        first = ctypes.c_char.from_buffer(mapped)
        flags = (ctypes.c_ubyte * pages)()
        failed = libc.mincore(ctypes.addressof(first), size, flags)
        del first  # the mapping closes only once nothing points into it
    if failed:
        raise OSError(ctypes.get_errno(), "mincore failed")
    return sum(flag & 1 for flag in flags), pages


@pytest.mark.skipif(not sys.platform.startswith("linux"),
                    reason="the test reads the page cache with mincore(2) as Linux defines "
                    "it (bit 0 of each page's byte: resident); CI runs on Linux, so it runs "
                    "there")
def test_folder_leaves_no_written_object_in_the_page_cache(tmp_path):
    """An import writes each original once: once on disk, its pages are not kept in memory
    (an unsynced store keeps them: they are not on disk yet)."""
    data = bytes(range(256)) * (4 << 10)  # 1 MiB
    synced, unsynced = FolderObjectStore(tmp_path / "synced"), FolderObjectStore(
        tmp_path / "unsynced", fsync=False)
    for store in (synced, unsynced):
        store.ensure_bucket("photos")
        store.put("photos", "a.jpg", data, "image/jpeg")
    kept, pages = _resident_pages(tmp_path / "synced" / "photos" / "a.jpg")
    assert pages == 256 and kept < pages // 8
    kept, pages = _resident_pages(tmp_path / "unsynced" / "photos" / "a.jpg")
    assert kept == pages
    assert synced.get("photos", "a.jpg") == (data, "image/jpeg")
