"""Vector collections: the interface (`VectorStore`, its hits and errors), opened by URI
(:func:`phantoscope.storage.open_stores.open_vector_store`).

Both backends are Milvus, driven by one class, `MilvusVectorStore`
(``storage/milvus_vectors.py``; what only Milvus Lite needs is in ``storage/lite_databases.py``
and ``storage/lite_search.py``); only the URI differs::

    store = open_vector_store("data/vectors.db")            # Milvus Lite, in this process
    store = open_vector_store("http://milvus:19530")        # a Milvus server or cluster

A collection holds an INT64 primary key `id` (given by the caller, never generated) and a
FLOAT_VECTOR `vector` of a fixed dimension, searched with one metric (IP, L2 or COSINE).
Collections made since filtered search also hold each row's `VectorPayload` (a copy of its
entity's name, attributes and EXIF: fields `name`, `attributes`, `exif`), so that a search
can take a filter expression applied inside the vector search (top-k complete). A
collection made by an earlier release has no payload fields (`filterable` is False): it
stores no payloads and takes only filters on `id`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from phantoscope.storage.store_error import StoreError

__all__ = [
    "EMPTY_PAYLOAD",
    "FILTER_FIELDS",
    "METRICS",
    "VectorHit",
    "VectorPayload",
    "VectorStore",
    "VectorStoreError",
]

METRICS = ("IP", "L2", "COSINE")


@dataclass(frozen=True)
class VectorPayload:
    """What a vector row carries besides its vector, for filtered search (a copy of its
    entity's)."""

    name: str = ""  # "" when the entity has no name
    attributes: Mapping[str, Any] = field(default_factory=dict)  # {} when none
    # taken_at as int epoch seconds (UTC), camera str, width/height int; absent when unknown
    exif: Mapping[str, Any] = field(default_factory=dict)


EMPTY_PAYLOAD = VectorPayload()

# Where each filter key lives in a collection with payloads, for
# engine.filters.milvus_expression.
FILTER_FIELDS: dict[str, str] = {
    "name": "name",
    "attributes": "attributes",
    "taken_at": 'exif["taken_at"]',
    "camera": 'exif["camera"]',
    "width": 'exif["width"]',
    "height": 'exif["height"]',
}


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
               partition: str | None = None,
               payloads: Sequence[VectorPayload] | None = None) -> None:
        """Insert rows (into ``partition``, made on first use) with their payloads (one per
        id; None: empty payloads); visible to `count` and `search` when this returns. A
        collection without payload fields (`filterable` False) drops the payloads."""

    @abstractmethod
    def delete(self, name: str, ids: Sequence[int]) -> None: ...

    @abstractmethod
    def search(self, name: str, vectors: np.ndarray, topk: int,
               partition: str | None = None,
               filter: str | None = None) -> list[list[VectorHit]]:
        """For each query vector, up to `topk` hits (within ``partition``), best first.

        ``filter`` is a Milvus boolean expression over the payload fields (see
        `FILTER_FIELDS`) or ``id`` (``id in [1, 2]``), applied inside the search: the hits
        are the best `topk` among the rows it selects."""

    @abstractmethod
    def vectors_of(self, name: str, ids: Sequence[int]) -> dict[int, np.ndarray]:
        """The stored vectors of those ids, by id (ids not in the collection left out)."""

    @abstractmethod
    def filterable(self, name: str) -> bool:
        """Whether the collection carries payload fields (False for one made by an earlier
        release: search it with filters on ``id`` only)."""

    @abstractmethod
    def set_payloads(self, name: str, ids: Sequence[int],
                     payloads: Sequence[VectorPayload]) -> None:
        """Replace the payloads of existing rows, keeping their vectors and partitions; ids
        not in the collection are skipped. A no-op on a collection without payload
        fields."""

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
