"""An upload's images are written side by side, and a failed write leaves none of them."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest

from phantoscope.engine.entities import _put_objects, _undoing
from phantoscope.engine.intake import ImageInput
from phantoscope.storage.folder_objects import FolderObjectStore
from phantoscope.storage.meta import EntityRow
from phantoscope.storage.objects import ObjectStoreError

BUCKET = "shop"


class GatedStore(FolderObjectStore):
    """A folder store whose writes wait until ``together`` of them are under way, and whose
    write of ``failing`` fails as a full disk would."""

    def __init__(self, root, together: int, failing: str | None = None) -> None:
        super().__init__(root)
        self.gate = threading.Barrier(together, timeout=10)
        self.failing = failing

    def put(self, bucket: str, key: str, data: bytes, content_type: str) -> None:
        self.gate.wait()  # BrokenBarrierError unless the writes overlap
        if key == self.failing:
            raise ObjectStoreError(f"cannot store '{key}': no space left on device",
                                   bucket=bucket, key=key)
        super().put(bucket, key, data, content_type)


def images(count: int) -> list[tuple[EntityRow, ImageInput]]:
    return [(EntityRow(object_key=f"key-{i}"), ImageInput(b"jpeg %d" % i, "image/jpeg", "0"))
            for i in range(count)]


@pytest.fixture
def writers():
    with ThreadPoolExecutor(8) as pool:
        yield pool


def test_the_images_of_an_upload_are_written_together(tmp_path, writers):
    store = GatedStore(tmp_path, together=8)
    store.ensure_bucket(BUCKET)
    undo: list = []
    _put_objects(SimpleNamespace(objects=store, object_writers=writers), BUCKET, images(8), undo)
    assert sorted(store.keys(BUCKET)) == [f"key-{i}" for i in range(8)]
    assert len(undo) == 8


def test_a_failed_write_raises_after_the_others_finish_and_their_undo_removes_them(
        tmp_path, writers):
    store = GatedStore(tmp_path, together=8, failing="key-3")
    store.ensure_bucket(BUCKET)
    undo: list = []
    with pytest.raises(ObjectStoreError, match="no space left"):
        _put_objects(SimpleNamespace(objects=store, object_writers=writers), BUCKET, images(8),
                     undo)
    assert len(store.keys(BUCKET)) == 7 == len(undo)  # all written ones are known
    assert _undoing(undo)
    assert store.keys(BUCKET) == []
