"""Vector collections: the interface (`VectorStore`, its hits and errors), opened by URI
(:func:`phantoscope.storage.open_stores.open_vector_store`).

Both backends are Milvus, driven by one class, `MilvusVectorStore`
(``storage/milvus_vectors.py``; what only Milvus Lite needs is in ``storage/lite_databases.py``
and ``storage/lite_search.py``); only the URI differs::

    store = open_vector_store("data/vectors.db")            # Milvus Lite, in this process
    store = open_vector_store("http://milvus:19530")        # a Milvus server or cluster

A collection holds an INT64 primary key `id` (given by the caller, never generated) and a
FLOAT_VECTOR `vector` of a fixed dimension, searched with one metric (IP, L2 or COSINE).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from phantoscope.storage.store_error import StoreError

__all__ = [
    "METRICS",
    "VectorHit",
    "VectorStore",
    "VectorStoreError",
]

METRICS = ("IP", "L2", "COSINE")


@dataclass(frozen=True)
class VectorHit:
    id: int  # the int64 primary key given at insert
    distance: float  # as Milvus reports it for the collection's metric


class VectorStoreError(StoreError):
    """A vector backend failure; the message says what failed."""


class VectorStore(ABC):
    """Vector collections: create, insert, delete, search, count."""

    @abstractmethod
    def create_collection(self, name: str, dimension: int, metric: str) -> None:
        """Create a loaded collection; a no-op if it exists with the same dimension and metric."""

    @abstractmethod
    def drop_collection(self, name: str) -> None:
        """Drop a collection; no error if it is absent."""

    @abstractmethod
    def has_collection(self, name: str) -> bool: ...

    @abstractmethod
    def insert(self, name: str, ids: Sequence[int], vectors: np.ndarray,
               partition: str | None = None) -> None:
        """Insert rows (into ``partition``, made on first use); visible to `count` and
        `search` when this returns."""

    @abstractmethod
    def delete(self, name: str, ids: Sequence[int]) -> None: ...

    @abstractmethod
    def search(self, name: str, vectors: np.ndarray, topk: int,
               partition: str | None = None) -> list[list[VectorHit]]:
        """For each query vector, up to `topk` hits (within ``partition``), best first."""

    @abstractmethod
    def count(self, name: str, partition: str | None = None) -> int:
        """The exact number of rows (deleted ones excluded), in all or one partition."""

    @abstractmethod
    def ids(self, name: str) -> list[int]:
        """Every id in the collection (deleted ones excluded), all partitions, any order."""

    @abstractmethod
    def drop_partition(self, name: str, partition: str) -> None:
        """Drop a partition with its rows; no error if it is absent."""

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def ping(self) -> None:
        """Raise :class:`VectorStoreError` unless the store answers a cheap call."""
