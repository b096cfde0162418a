"""Finding copy and similar pairs among stored images: all at once, or one new image against
what is stored (no rescan).

Candidates come from two places: the perceptual hashes, compared by brute force (64 bits an
image: 100,000 of them are 0.8 MB, and one image's eight orientations against them all take
a few milliseconds), and the encoder's nearest neighbours, which the caller gets from its
vector store (:data:`Neighbours`). Candidates are aligned by their thumbnails, which the
caller reads from wherever it keeps them (:data:`Thumbnails`), a batch at a time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Container, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from phantoscope.duplicates.decision import (
    CANDIDATE_HASH_BITS,
    SIMILAR_MIN_COSINE,
    are_copies,
    are_similar,
    is_candidate,
)
from phantoscope.duplicates.registration import ALIGN_BATCH, align
from phantoscope.imaging.phash import BITS, nearest_orientation, popcount

Neighbours = Callable[[Sequence[int]], list[list[tuple[int, float]]]]
"""ids -> for each, its nearest stored images by encoder vector: (id, cosine), itself
left out or not (it is dropped)."""
Thumbnails = Callable[[Sequence[int]], np.ndarray]
"""ids -> their thumbnails, a (len(ids), 64, 64) uint8 array."""

HASH_BLOCK = 1 << 22  # hash comparisons in one numpy pass (32 MB of XORs)


@dataclass(frozen=True)
class Pair:
    """Two images judged: ``first < second``. ``cosine`` is NaN when the encoder's
    neighbours did not include the pair; alignment figures are NaN when it was not
    aligned (not a candidate)."""

    first: int
    second: int
    hash_bits: int
    cosine: float
    overlap: float
    residual: float
    worst_block: float
    copy: bool
    similar: bool


class HashIndex:
    """Stored images' hashes in all eight orientations, by id, for brute-force search."""

    def __init__(self) -> None:
        self._ids = np.zeros(0, dtype=np.int64)
        self._hashes = np.zeros((0, 8), dtype=np.uint64)
        self._row: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, entity: object) -> bool:
        return entity in self._row

    def ids(self) -> list[int]:
        """The stored ids, in the order they were added."""
        return self._ids.tolist()

    def snapshot(self) -> HashIndex:
        """A copy that later adds and removes leave as it is (the arrays are replaced,
        never changed in place, so they are shared)."""
        copy = HashIndex()
        copy._ids, copy._hashes, copy._row = self._ids, self._hashes, dict(self._row)
        return copy

    def add(self, ids: Sequence[int], orientation_hashes: np.ndarray) -> None:
        """Add images: their ids and (len(ids), 8) orientation hashes (upright first)."""
        hashes = np.asarray(orientation_hashes, dtype=np.uint64).reshape(len(ids), 8)
        start = len(self._ids)
        self._ids = np.concatenate([self._ids, np.asarray(ids, dtype=np.int64)])
        self._hashes = np.concatenate([self._hashes, hashes])
        self._row.update((int(entity), start + offset) for offset, entity in enumerate(ids))

    def remove(self, ids: Sequence[int]) -> None:
        gone = {int(entity) for entity in ids} & self._row.keys()
        if not gone:
            return
        keep = np.ones(len(self._ids), dtype=bool)
        keep[[self._row[entity] for entity in gone]] = False
        self._ids, self._hashes = self._ids[keep], self._hashes[keep]
        self._row = {int(entity): row for row, entity in enumerate(self._ids)}

    def near(self, orientation_hashes: Sequence[int],
             max_bits: int = CANDIDATE_HASH_BITS) -> tuple[np.ndarray, np.ndarray]:
        """Stored ids whose upright hash is within ``max_bits`` of one of a picture's eight
        orientation hashes, and those distances."""
        bits = nearest_orientation(orientation_hashes, self._hashes[:, 0])
        found = np.nonzero(bits <= max_bits)[0]
        return self._ids[found], bits[found]

    def near_pairs(self, max_bits: int = CANDIDATE_HASH_BITS) -> Iterator[tuple[int, int, int]]:
        """Every stored pair (first id, second id, bits) within ``max_bits``, each once:
        a brute-force pass, HASH_BLOCK comparisons at a time."""
        upright = self._hashes[:, 0]
        rows_at_once = max(1, HASH_BLOCK // max(len(self._ids), 1))
        for start in range(0, len(self._ids), rows_at_once):
            stop = min(start + rows_at_once, len(self._ids))
            later = upright[start + 1:]  # a pair is found from its earlier row
            best = np.full((stop - start, len(later)), BITS, dtype=np.uint8)
            differ = np.empty(best.shape, dtype=np.uint64)
            for which in range(8):
                np.bitwise_xor(self._hashes[start:stop, which][:, None], later[None, :],
                               out=differ)
                np.minimum(best, popcount(differ), out=best)
            rows, columns = np.nonzero(best <= max_bits)
            ahead = columns + 1 > rows  # the later image, not an earlier one of the block
            for row, column in zip(rows[ahead], columns[ahead], strict=True):
                yield (int(self._ids[start + row]), int(self._ids[start + 1 + column]),
                       int(best[row, column]))

    def near_pairs_of(self, ids: Sequence[int], max_bits: int = CANDIDATE_HASH_BITS
                      ) -> Iterator[tuple[int, int]]:
        """Every stored pair within ``max_bits`` that holds one of stored ``ids``, as (one of
        ``ids``, the other; a pair of two of them comes twice): a brute-force pass of their
        rows against all, HASH_BLOCK comparisons at a time."""
        rows = np.array([self._row[int(entity)] for entity in ids], dtype=np.int64)
        upright = self._hashes[:, 0]
        rows_at_once = max(1, HASH_BLOCK // max(len(self._ids), 1))
        for start in range(0, len(rows), rows_at_once):
            block = rows[start:start + rows_at_once]
            best = np.full((len(block), len(upright)), BITS, dtype=np.uint8)
            differ = np.empty(best.shape, dtype=np.uint64)
            for which in range(8):
                np.bitwise_xor(self._hashes[block, which][:, None], upright[None, :],
                               out=differ)
                np.minimum(best, popcount(differ), out=best)
            found, columns = np.nonzero(best <= max_bits)
            for row, column in zip(block[found], columns, strict=True):
                if row != column:
                    yield int(self._ids[row]), int(self._ids[column])

    def distances(self, orientation_hashes: Sequence[int], ids: Sequence[int]) -> np.ndarray:
        """The hash distance (nearest orientation) of a picture to each of stored ``ids``."""
        rows = [self._row[int(entity)] for entity in ids]
        return nearest_orientation(orientation_hashes, self._hashes[rows, 0])

    def pair_distances(self, firsts: Sequence[int], seconds: Sequence[int]) -> np.ndarray:
        """The hash distance (nearest orientation) of each pair of stored images."""
        if not len(firsts):
            return np.zeros(0, dtype=np.int64)
        one = self._hashes[[self._row[int(entity)] for entity in firsts]]
        other = self._hashes[[self._row[int(entity)] for entity in seconds], 0]
        return popcount(one ^ other[:, None]).min(axis=1).astype(np.int64)


def _sorted_out(keys: list[tuple[int, int]], bits: np.ndarray, cosine: np.ndarray,
                min_cosine: float,
                ) -> tuple[dict[tuple[int, int], tuple[int, float]], list[Pair]]:
    """The candidates among ``keys`` (to align), and the pairs that are only similar;
    ``bits`` and ``cosine`` (NaN: not known) are the keys' figures, in order."""
    candidate = is_candidate(bits, cosine)
    similar = are_similar(cosine, np.zeros(len(keys), dtype=bool), min_cosine) & ~candidate
    candidates = {keys[at]: (int(bits[at]), float(cosine[at]))
                  for at in np.nonzero(candidate)[0]}
    nan = float("nan")
    similar_only = [Pair(*keys[at], int(bits[at]), float(cosine[at]), nan, nan, nan, False,
                         True) for at in np.nonzero(similar)[0]]
    return candidates, similar_only


def _judge_batch(chunk: list[tuple[int, int]],
                 candidates: dict[tuple[int, int], tuple[int, float]],
                 thumbnails: Thumbnails, min_cosine: float) -> list[Pair]:
    ids = sorted({entity for pair in chunk for entity in pair})
    pictures = dict(zip(ids, thumbnails(ids), strict=True))
    alignment = align(np.stack([pictures[first] for first, _ in chunk]),
                      np.stack([pictures[second] for _, second in chunk]))
    copies = are_copies(alignment)
    cosines = np.array([candidates[key][1] for key in chunk])
    similar = are_similar(cosines, copies, min_cosine)
    return [
        Pair(first, second, candidates[(first, second)][0], float(cosines[index]),
             float(alignment.overlap[index]), float(alignment.residual[index]),
             float(alignment.worst_block[index]), bool(copies[index]), bool(similar[index]))
        for index, (first, second) in enumerate(chunk)
    ]


def judge(candidates: dict[tuple[int, int], tuple[int, float]], thumbnails: Thumbnails,
          *, workers: int = 1, min_cosine: float = SIMILAR_MIN_COSINE) -> list[Pair]:
    """Align the candidate pairs ``{(first, second): (hash bits, cosine)}`` by their
    thumbnails and judge each, ALIGN_BATCH pairs at a time on ``workers`` threads (numpy
    lets go of the GIL in the heavy steps). ``min_cosine``: the encoder's similar-shot
    cosine (:func:`~phantoscope.duplicates.decision.similar_min_cosine`)."""
    keys = list(candidates)
    chunks = [keys[start:start + ALIGN_BATCH] for start in range(0, len(keys), ALIGN_BATCH)]
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        done = pool.map(
            lambda chunk: _judge_batch(chunk, candidates, thumbnails, min_cosine), chunks)
        return [pair for judged in done for pair in judged]


def _neighbour_cosines(ids: Sequence[int], neighbours: Neighbours, partners: Container[int],
                       batch: int) -> dict[tuple[int, int], float]:
    """The encoder's cosine of each pair of one of ``ids`` with one of its neighbours among
    ``partners``, by (smaller id, larger id): the larger where both sides found it."""
    cosine: dict[tuple[int, int], float] = {}
    for start in range(0, len(ids), batch):
        chunk = list(ids[start:start + batch])
        for entity, found in zip(chunk, neighbours(chunk), strict=True):
            for other, value in found:
                if other != entity and other in partners:
                    key = (min(entity, other), max(entity, other))
                    cosine[key] = max(value, cosine.get(key, -1.0))
    return cosine


def find_pairs(index: HashIndex, ids: Sequence[int], neighbours: Neighbours,
               thumbnails: Thumbnails, *, neighbour_batch: int = 1000, workers: int = 1,
               min_cosine: float = SIMILAR_MIN_COSINE,
               timings: dict[str, float] | None = None) -> list[Pair]:
    """Every candidate pair among ``ids`` (all stored in ``index``), judged: the hash pairs
    and each image's encoder neighbours; pairs neither aligned nor similar are left out.
    ``timings``, when given, gets the seconds of each step: neighbours, hashes, judge."""
    timings = {} if timings is None else timings
    clock = time.perf_counter()
    members = {int(entity) for entity in ids}
    cosine = _neighbour_cosines(ids, neighbours, members, neighbour_batch)
    timings["neighbours"] = time.perf_counter() - clock
    clock = time.perf_counter()
    bits = {(first, second): found for first, second, found in index.near_pairs()
            if first in members and second in members}
    keys = list(bits.keys() | cosine.keys())
    known = np.array([bits.get(key, -1) for key in keys], dtype=np.int64)
    unknown = np.nonzero(known < 0)[0]
    known[unknown] = index.pair_distances([keys[at][0] for at in unknown],
                                          [keys[at][1] for at in unknown])
    candidates, similar_only = _sorted_out(
        keys, known, np.array([cosine.get(key, np.nan) for key in keys]), min_cosine)
    timings["hashes"] = time.perf_counter() - clock
    clock = time.perf_counter()
    judged = judge(candidates, thumbnails, workers=workers, min_cosine=min_cosine)
    timings["judge"] = time.perf_counter() - clock
    return judged + similar_only


def pairs_of_new(index: HashIndex, ids: Sequence[int], neighbours: Neighbours,
                 thumbnails: Thumbnails, *, neighbour_batch: int = 1000,
                 min_cosine: float = SIMILAR_MIN_COSINE) -> list[Pair]:
    """Every candidate pair that one of ``ids`` makes with any image of ``index`` (``ids``
    among them), judged as :func:`find_pairs` judges it: the pairs a full pass adds once the
    ids are stored. Their candidates are aligned together (far cheaper a pair than one
    image's at a time)."""
    cosine = _neighbour_cosines(ids, neighbours, index, neighbour_batch)
    near = {(min(entity, other), max(entity, other)) for entity, other in index.near_pairs_of(ids)}
    keys = sorted(near | cosine.keys())
    # measured anew, as find_pairs measures a pair: the first's orientations against the
    # second's upright hash (near_pairs_of measured from the new image's side)
    bits = index.pair_distances([first for first, _ in keys], [second for _, second in keys])
    candidates, similar_only = _sorted_out(
        keys, bits, np.array([cosine.get(key, np.nan) for key in keys]), min_cosine)
    return judge(candidates, thumbnails, min_cosine=min_cosine) + similar_only


Candidates = dict[tuple[int, int], tuple[int, float]]
"""Pairs to align, ``{(first, second): (hash bits, cosine)}`` (NaN cosine: not known)."""


def new_candidates(index: HashIndex, new_hashes: Sequence[int],
                   neighbours: Sequence[tuple[int, float]], *,
                   min_cosine: float = SIMILAR_MIN_COSINE, new_id: int = -1
                   ) -> tuple[Candidates, list[Pair]]:
    """What :func:`check_new` judges of one new image: the candidate pairs to align, and the
    pairs similar by encoder alone (judged already)."""
    near_ids, near_bits = index.near(new_hashes)
    bits = dict(zip(near_ids.tolist(), near_bits.tolist(), strict=True))
    cosine = {int(other): float(value) for other, value in neighbours}
    others = sorted(bits.keys() | cosine.keys())
    known = np.array([bits.get(other, -1) for other in others], dtype=np.int64)
    unknown = np.nonzero(known < 0)[0]
    if len(unknown):
        known[unknown] = index.distances(new_hashes, [others[at] for at in unknown])
    return _sorted_out(
        [(min(new_id, other), max(new_id, other)) for other in others], known,
        np.array([cosine.get(other, np.nan) for other in others], dtype=np.float64),
        min_cosine)


def with_picture(thumbnails: Thumbnails, entity: int, picture: np.ndarray) -> Thumbnails:
    """``thumbnails``, knowing one more picture (a new image's, not stored yet)."""

    def read(ids: Sequence[int]) -> np.ndarray:
        stored = [other for other in ids if other != entity]
        pictures = dict(zip(stored, thumbnails(stored), strict=True)) if stored else {}
        pictures[entity] = np.asarray(picture, dtype=np.uint8)
        return np.stack([pictures[other] for other in ids])

    return read


def check_new(index: HashIndex, new_hashes: Sequence[int], new_thumbnail: np.ndarray,
              neighbours: Sequence[tuple[int, float]], thumbnails: Thumbnails, *,
              min_cosine: float = SIMILAR_MIN_COSINE, new_id: int = -1) -> list[Pair]:
    """One new image (not yet in ``index``; ``new_id`` in the answer) against what is
    stored: the stored images it copies or resembles. ``neighbours``: its nearest stored
    images by encoder vector, (id, cosine). Each pair is (smaller id, larger id), aligned in
    that order, as :func:`find_pairs` makes it: the figures agree whichever found it."""
    candidates, similar_only = new_candidates(index, new_hashes, neighbours,
                                              min_cosine=min_cosine, new_id=new_id)
    return judge(candidates, with_picture(thumbnails, new_id, new_thumbnail),
                 min_cosine=min_cosine) + similar_only
