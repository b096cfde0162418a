"""What a process keeps of the catalog between requests, valid while the catalog's version
(:func:`phantoscope.storage.meta.catalog_version`) is the one it was read at."""

from __future__ import annotations

import threading
from collections.abc import Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class CatalogCache(Generic[T]):
    """Values read from the catalog, by key, all read at one catalog version.

    Readers read the version first, then ``get`` at it; on a miss they read the catalog in the
    same transaction and ``put`` at that version. A value put at another version than the
    cache holds empties it first: it never holds more than one version's values, and a
    database restored to an earlier version is not mistaken for the one cached. Thread-safe.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._version = -1
        self._values: dict[Hashable, T] = {}

    def get(self, version: int, key: Hashable) -> T | None:
        with self._lock:
            return self._values.get(key) if version == self._version else None

    def put(self, version: int, key: Hashable, value: T) -> None:
        with self._lock:
            if version != self._version:
                self._version, self._values = version, {}
            self._values[key] = value
