"""What this process keeps in memory of each application's duplicates: the state that
:mod:`phantoscope.engine.duplicate_index` reads and keeps up to date (held by
:class:`~phantoscope.engine.context.Stores`)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from phantoscope.duplicates.finder import Candidates, HashIndex, Pair


@dataclass(frozen=True)
class VectorPlace:
    """Where an entity's whole-image vector lives."""

    collection: str
    metric: str
    vector_id: int


@dataclass
class ApplicationIndex:
    """One application's hashes, vector places and (once found) judged pairs."""

    # the pipelines whose vectors it places, by image field (whole-image pipelines only;
    # None until it is loaded): a switched field makes a new index
    basis: tuple[tuple[str, str], ...] | None = None
    hashes: HashIndex = field(default_factory=HashIndex)
    places: dict[int, VectorPlace] = field(default_factory=dict)  # by entity id
    owners: dict[int, int] = field(default_factory=dict)  # entity id by vector id
    pairs: dict[tuple[int, int], Pair] | None = None  # None: not found yet
    # candidate pairs of uploads not aligned yet (an upload stops at its first copy): the
    # next listing judges them, so that the pairs end as a full pass finds them
    pending: Candidates = field(default_factory=dict)
    loaded: bool = False
    # when the index last took in what other processes stored (time.time()), and the
    # entities it took in since a listing found the pairs, to be judged by the next one
    caught_up_at: float = 0.0
    unjudged: set[int] = field(default_factory=set)
    # the members of every group listed, by group id: a resolve naming a group that has
    # since changed is told so (409), not that it never existed (404)
    listed: dict[str, list[int]] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)
    # held by the one listing that brings the index level (a first full pass takes minutes
    # at 100k entities; uploads take only ``lock``, so they do not wait for it)
    passing: threading.Lock = field(default_factory=threading.Lock)

    def known(self) -> set[int]:
        return set(self.hashes.ids())

    def add(self, entity: int, hashes: Sequence[int], place: VectorPlace | None,
            pairs: Sequence[Pair] = (), pending: Candidates | None = None) -> None:
        if entity in self.hashes:
            return
        self.hashes.add([entity], np.array([hashes], dtype=np.uint64))
        if place is not None:
            self.places[entity] = place
            self.owners[place.vector_id] = entity
        if self.pairs is not None:
            for pair in pairs:
                self.pairs[(pair.first, pair.second)] = pair
            self.pending.update(pending or {})

    def remove(self, ids: Sequence[int]) -> None:
        gone = set(ids)
        self.hashes.remove(list(gone))
        for entity in gone:
            place = self.places.pop(entity, None)
            if place is not None:
                self.owners.pop(place.vector_id, None)
        if self.pairs is not None:
            self.pairs = {key: pair for key, pair in self.pairs.items()
                          if key[0] not in gone and key[1] not in gone}
        self.pending = {key: found for key, found in self.pending.items()
                        if key[0] not in gone and key[1] not in gone}


class DuplicateIndexes:
    """The indexes of this process's applications, made on first need."""

    def __init__(self) -> None:
        self._indexes: dict[str, ApplicationIndex] = {}
        self._lock = threading.Lock()

    def of(self, application: str, basis: tuple[tuple[str, str], ...] | None = None
           ) -> ApplicationIndex:
        """The application's index; with ``basis``, a new one if it was loaded on another."""
        with self._lock:
            index = self._indexes.get(application)
            if index is None or (None not in (basis, index.basis) and index.basis != basis):
                index = self._indexes[application] = ApplicationIndex()
            if index.basis is None:
                index.basis = basis
            return index

    def listed(self) -> dict[str, ApplicationIndex]:
        """The indexes whose pairs a listing has found, by application."""
        with self._lock:
            return {name: index for name, index in self._indexes.items()
                    if index.pairs is not None}

    def drop(self, application: str) -> None:
        with self._lock:
            self._indexes.pop(application, None)

    def forget(self, application: str, ids: Sequence[int]) -> None:
        """Entities deleted: out of the application's index, if it has one."""
        with self._lock:
            index = self._indexes.get(application)
        if index is not None:
            with index.lock:
                index.remove(ids)
