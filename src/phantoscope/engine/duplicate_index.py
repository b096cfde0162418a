"""Each application's duplicate pairs, kept in memory and found incrementally.

An application's index holds the perceptual hashes of its described entities (a
:class:`~phantoscope.duplicates.finder.HashIndex`), which of their vectors describe the whole
image, and, once a listing asked for them, every judged pair. A new upload is checked against
it (:mod:`phantoscope.engine.duplicate_intake`, no rescan) and added; a deletion removes its
entity. A listing first brings it level with the descriptor table (:func:`synced`): entities
stored before revision 0005 get their descriptors
(:mod:`phantoscope.engine.duplicate_backfill`), entities added or deleted by another process
(or stored without a check) are added, judged together against the rest
(:func:`~phantoscope.duplicates.finder.pairs_of_new`), or removed; the first listing after a
start finds every pair at once (:func:`~phantoscope.duplicates.finder.find_pairs`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np

from phantoscope.duplicates.decision import similar_min_cosine
from phantoscope.duplicates.finder import find_pairs, judge, pairs_of_new
from phantoscope.engine.catalog import ApplicationPlan, FieldPlan
from phantoscope.engine.context import Stores
from phantoscope.engine.duplicate_backfill import backfill
from phantoscope.engine.duplicate_state import ApplicationIndex, VectorPlace
from phantoscope.engine.names import partition_name
from phantoscope.imaging.phash import THUMBNAIL, to_unsigned
from phantoscope.storage.duplicate_records import DuplicateRecords

NEIGHBOURS = 10  # encoder neighbours of each image judged (as bench/duplicates.py measures)
CATCH_UP_S = 1.0  # how often uploads look for what other processes stored
# the longest from a descriptor row's time to its commit, with the clocks' skew between
# servers sharing a database
COMMIT_LAG_S = 30.0


def min_cosine(plan: ApplicationPlan) -> float:
    """The similar-shot cosine of the application: its strictest field's."""
    return max((similar_min_cosine(each.encoder.name) for each in plan.fields.values()),
               default=similar_min_cosine(""))


def cosine_of(distance: float, metric: str) -> float:
    """The cosine of two unit vectors from the distance their collection reports (Milvus's
    L2 is the squared distance)."""
    return 1.0 - distance / 2.0 if metric == "L2" else distance


def unsigned(hashes: Sequence[int]) -> tuple[int, ...]:
    return tuple(to_unsigned(int(value)) for value in hashes)


class Lookups:
    """What :mod:`phantoscope.duplicates.finder` asks of the stores for one application."""

    def __init__(self, stores: Stores, application: str, index: ApplicationIndex) -> None:
        self.stores, self.application, self.index = stores, application, index
        self.records = DuplicateRecords(stores.meta)

    def thumbnails(self, ids: Sequence[int]) -> np.ndarray:
        found = self.records.thumbnails(list(ids))
        blank = bytes(THUMBNAIL * THUMBNAIL)  # deleted meantime: aligns with nothing
        return np.stack([np.frombuffer(found.get(int(entity), blank), dtype=np.uint8)
                         .reshape(THUMBNAIL, THUMBNAIL) for entity in ids])

    def near(self, collection: str, metric: str, vectors: np.ndarray
             ) -> list[list[tuple[int, float]]]:
        """For each vector, its stored nearest neighbours in the application: (entity id,
        cosine)."""
        hits = self.stores.vectors.search(collection, vectors, NEIGHBOURS + 1,
                                          partition=partition_name(self.application))
        owners = self.index.owners  # read while uploads and deletions change it
        return [[(owner, cosine_of(hit.distance, metric)) for hit in found
                 if (owner := owners.get(hit.id)) is not None] for found in hits]

    def neighbours(self, ids: Sequence[int]) -> list[list[tuple[int, float]]]:
        at = {int(entity): place for entity in ids
              if (place := self.index.places.get(int(entity))) is not None}
        by_collection: dict[tuple[str, str], list[int]] = {}
        for entity, place in at.items():
            by_collection.setdefault((place.collection, place.metric), []).append(entity)
        found: dict[int, list[tuple[int, float]]] = {}
        for (collection, metric), entities in by_collection.items():
            stored = self.stores.vectors.vectors_of(
                collection, [at[entity].vector_id for entity in entities])
            have = [entity for entity in entities if at[entity].vector_id in stored]
            if not have:
                continue
            matrix = np.stack([stored[at[entity].vector_id] for entity in have])
            found.update(zip(have, self.near(collection, metric, matrix), strict=True))
        return [found.get(int(entity), []) for entity in ids]


def places(plan: ApplicationPlan, rows: list[tuple[int, str, int]]) -> dict[int, VectorPlace]:
    """Whole-image vector places by entity, from (entity, pipeline, vector id) rows of
    pipelines without processors."""
    by_pipeline: dict[str, FieldPlan] = {each.pipeline.name: each for each in plan.fields.values()
                                         if not each.pipeline.processors}
    return {entity: VectorPlace(by_pipeline[pipeline].pipeline.collection,
                                by_pipeline[pipeline].pipeline.metric_type, vector)
            for entity, pipeline, vector in rows if pipeline in by_pipeline}


def loaded(stores: Stores, plan: ApplicationPlan) -> ApplicationIndex:
    """The application's index with the hashes of every entity described so far (read in
    whole once a process; :func:`caught_up` adds what other processes store later)."""
    name = plan.application.name
    basis = tuple(sorted((each.field, each.pipeline.name) for each in plan.fields.values()
                         if not each.pipeline.processors))
    index = stores.duplicates.of(name, basis)
    with index.lock:
        if not index.loaded:
            index.caught_up_at = time.time()
            _add_stored(stores, plan, index, None)
            index.loaded = True
    return index


def caught_up(stores: Stores, plan: ApplicationPlan, *, at_once: bool = False
              ) -> ApplicationIndex:
    """The application's index with what other processes sharing the stores (API workers,
    replicas) stored since it last looked, at most ``CATCH_UP_S`` ago (``at_once``: now).

    It reads the entities whose descriptors were stored since ``COMMIT_LAG_S`` before its
    last look and adds those it lacks; ones deleted elsewhere stay until a listing levels
    the index, and align with nothing meanwhile (their thumbnails are gone)."""
    index = loaded(stores, plan)
    started = time.time()
    if not at_once and started - index.caught_up_at < CATCH_UP_S:
        return index
    since = datetime.fromtimestamp(index.caught_up_at - COMMIT_LAG_S, UTC).replace(tzinfo=None)
    stored = DuplicateRecords(stores.meta).descriptor_ids_since(plan.application.name, since)
    with index.lock:
        new = [entity for entity in stored if entity not in index.hashes]
        if new:
            added = _add_stored(stores, plan, index, new)
            if index.pairs is not None:
                index.unjudged.update(added)
        index.caught_up_at = max(index.caught_up_at, started)
    return index


def _add_stored(stores: Stores, plan: ApplicationPlan, index: ApplicationIndex,
                ids: Sequence[int] | None) -> list[int]:
    """Add the stored descriptors (of ``ids``, or all) to the index without pairs; the ids
    added."""
    records = DuplicateRecords(stores.meta)
    name = plan.application.name
    described = records.descriptors(name, ids)
    where = places(plan, records.whole_vectors(name, ids))
    for each in described:
        index.add(each.entity_id, unsigned(each.hashes), where.get(each.entity_id))
    return [each.entity_id for each in described]


def synced(stores: Stores, plan: ApplicationPlan) -> ApplicationIndex:
    """The application's index level with its stored entities, with every pair judged.

    The first listing of a process finds every pair in one pass over a snapshot of the
    hashes, holding only the index's pass lock: uploads and deletions go on meanwhile, and
    the entities they added are judged against the rest once the pass is in."""
    backfill(stores, plan.application)
    index = loaded(stores, plan)
    lookups = Lookups(stores, plan.application.name, index)
    cosine = min_cosine(plan)
    with index.passing:
        with index.lock:
            new = _level(stores, plan, index)
            if index.pairs is not None:
                _judge_new(stores, plan, index, lookups, new)
                return index
            _add_stored(stores, plan, index, new)
            snapshot = index.hashes.snapshot()
        ids = snapshot.ids()
        found = find_pairs(snapshot, ids, lookups.neighbours, lookups.thumbnails,
                           min_cosine=cosine)
        with index.lock:
            known = index.known()
            index.pairs = {(pair.first, pair.second): pair for pair in found
                           if pair.first in known and pair.second in known}
            index.pending = {}
            late = sorted(known - set(ids))  # stored by uploads during the pass
            index.remove(late)
            _judge_new(stores, plan, index, lookups, late)
    return index


def _level(stores: Stores, plan: ApplicationPlan, index: ApplicationIndex) -> list[int]:
    """Drop from the index the entities no longer described; the described ones it lacks,
    with those :func:`caught_up` added unjudged (taken out again, to be judged anew)."""
    stored = set(DuplicateRecords(stores.meta).descriptor_ids(plan.application.name))
    unjudged = index.unjudged & stored
    index.unjudged = set()
    index.remove(sorted((index.known() - stored) | unjudged))
    return sorted(stored - index.known())


def _judge_new(stores: Stores, plan: ApplicationPlan, index: ApplicationIndex,
               lookups: Lookups, new: Sequence[int]) -> None:
    """Add stored entities to an index whose pairs are found, judged against the rest and
    each other in one pass, and align what uploads left pending."""
    cosine = min_cosine(plan)
    added = _add_stored(stores, plan, index, new)
    for pair in pairs_of_new(index.hashes, added, lookups.neighbours, lookups.thumbnails,
                             min_cosine=cosine):
        index.pairs[(pair.first, pair.second)] = pair
    if index.pending:  # what uploads left to align
        for pair in judge(index.pending, lookups.thumbnails, min_cosine=cosine):
            index.pairs[(pair.first, pair.second)] = pair
        index.pending = {}
