"""Finding every copy and similar-shot group of an application of N entities, and checking
one new upload against what is stored (issue 18), with the vectors on Milvus Lite.

    .venv/bin/python bench/duplicates.py [--entities 10000] [--new 50] [--imported 1000]
                                         [--workers 2] [--dimension 1280] [--neighbours 10]
                                         [--seed 0]

Data, synthetic but shaped like real descriptors: scenes drawn as smooth random pictures
(96 x 96: coarse shapes, finer detail and noise), each shown through an 80 x 80 window and
squeezed to the 64 x 64 thumbnail `imaging.phash.thumbnail` makes, hashed by the real
`orientation_hashes`. Of the entities, about 47 % are single shots, 27 % are in copy groups
of 2-4 (the copies mirrored, turned, brightened, cropped by 2-3 %, or noisier) and 26 % in
bursts of 3-5 shots (windows 10-20 % of a side apart). Encoder vectors (1280-d, unit
length) sit around 200 topic centres: a scene at cosine ~0.4 to others of its topic, a
burst's shots at ~0.74 to one another, copies at ~0.94.

Measured, the vectors inserted into Milvus Lite (HNSW, IP) first and indexed (not counted):

- all groups at once (`duplicates.finder.find_pairs`, then `groups.group_copies` and
  `group_pairs`): each entity's nearest --neighbours by vector through
  `MilvusVectorStore.search` (1,000 queries a call), the brute-force hash pass over all
  pairs, the candidate pairs aligned on --workers threads; time of each step and in all;
- one new upload (--new of them: a copy of a stored entity, a new shot of a stored burst or
  a new scene, in turn): `finder.check_new` with its hash scan and one vector search, p50
  and p95 of the whole check;
- the next listing after an import (--imported uploads stored unchecked, or by other
  processes): their pairs judged one image at a time, each with its vector search, its hash
  scan and its candidates aligned (as listings did before `finder.pairs_of_new`), against
  `pairs_of_new`: one hash pass of their rows, a vector search of 1,000 a call, every
  candidate aligned together (one thread; the server's reads of descriptors and thumbnails,
  which the one-at-a-time listing made for each image, are not counted);
- memory: the process's VmRSS / VmHWM (Milvus Lite runs in it) and what the duplicate
  state itself holds (hashes, and the thumbnails, which the server would read from its
  store rather than hold);
- the pair precision and recall against the data's own truth, as a sanity check only
  (synthetic pictures are not photos; `phantoscope eval --duplicates` measures quality).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from filtered_search import available_gb, status_mb
from PIL import Image

from phantoscope.duplicates.finder import HashIndex, Pair, check_new, find_pairs, pairs_of_new
from phantoscope.duplicates.groups import group_copies, group_pairs
from phantoscope.imaging.phash import orientation_hashes
from phantoscope.storage import lite_search
from phantoscope.storage.milvus_vectors import MilvusVectorStore

COLLECTION = "duplicates_bench"
CANVAS, WINDOW, SIDE = 96, 80, 64
TOPICS = 200
INSERT_ROWS = 10_000
SEARCH_ROWS = 1_000
BURST_PLACES = ((0, 0), (16, 0), (0, 16), (16, 16), (8, 8))  # window corners on the canvas


@dataclass
class Entities:
    """The synthetic application: thumbnails, vectors and the truth of each entity."""

    thumbnails: np.ndarray  # (N, 64, 64) uint8
    vectors: np.ndarray  # (N, D) float32, unit rows
    copy_group: np.ndarray  # (N,) its copy group's number, -1 when none
    scene: np.ndarray  # (N,) its scene's number
    place: np.ndarray  # (N,) a burst shot's window (index of BURST_PLACES), -1 for others
    canvases: list[np.ndarray] = field(default_factory=list)  # each scene's, uint8
    scene_vectors: dict[int, np.ndarray] = field(default_factory=dict)


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=-1, keepdims=True)).astype(np.float32)


def _canvas(rng: np.random.Generator) -> np.ndarray:
    def smooth(cells: int, amplitude: float) -> np.ndarray:
        grid = rng.uniform(0, 255, (cells, cells)).astype(np.uint8)
        big = Image.fromarray(grid).resize((CANVAS, CANVAS), Image.Resampling.BICUBIC)
        return (np.asarray(big, dtype=np.float32) - 128) * amplitude

    picture = 128 + smooth(5, 0.9) + smooth(16, 0.4) + rng.normal(0, 4, (CANVAS, CANVAS))
    return np.clip(picture, 0, 255).astype(np.uint8)  # 9 KB a scene (float64: 74 KB)


def _shot(canvas: np.ndarray, left: int, top: int, rng: np.random.Generator,
          inset: int = 0) -> np.ndarray:
    box = (left + inset, top + inset, left + WINDOW - inset, top + WINDOW - inset)
    window = Image.fromarray(canvas).crop(box)
    pixels = np.asarray(window.resize((SIDE, SIDE), Image.Resampling.BOX), dtype=np.float32)
    return np.clip(pixels + rng.normal(0, 1.5, pixels.shape), 0, 255).astype(np.uint8)


def _copy(original: np.ndarray, canvas: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    kind = int(rng.integers(5))
    if kind == 0:
        return np.ascontiguousarray(np.fliplr(original))
    if kind == 1:
        return np.ascontiguousarray(np.rot90(original, int(rng.integers(1, 4))))
    if kind == 2:
        return np.clip(original.astype(np.float32) * 1.2 + 10, 0, 255).astype(np.uint8)
    if kind == 3:
        return _shot(canvas, 8, 8, rng, inset=int(rng.integers(2, 4)))
    return np.clip(original + rng.normal(0, 4, original.shape), 0, 255).astype(np.uint8)


def make_entities(count: int, dimension: int, seed: int) -> Entities:
    rng = np.random.default_rng(seed)
    centres = _unit(rng.standard_normal((TOPICS, dimension)))
    thumbs: list[np.ndarray] = []
    vectors: list[np.ndarray] = []
    copy_group: list[int] = []
    scene: list[int] = []
    place: list[int] = []
    made = Entities(np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0))
    groups = 0

    def noise(amplitude: float) -> np.ndarray:
        return amplitude * _unit(rng.standard_normal(dimension))

    while len(thumbs) < count:
        number = len(made.canvases)
        canvas = _canvas(rng)
        made.canvases.append(canvas)
        centre = _unit(centres[rng.integers(TOPICS)] + noise(1.2))
        made.scene_vectors[number] = centre
        original = _shot(canvas, 8, 8, rng)
        draw = rng.random()
        places: list[int] = []
        if draw < 0.75:  # a single shot (47 % of entities)
            shots = [(original, _unit(centre + noise(0.05)), -1)]
        elif draw < 0.9:  # copies
            members = int(rng.integers(2, 5))
            shots = [(original, _unit(centre + noise(0.05)), groups)] + [
                (_copy(original, canvas, rng), _unit(centre + noise(0.3)), groups)
                for _ in range(members - 1)]
            groups += 1
        else:  # a burst: windows 8-16 px (10-20 %) apart, so no two shots are copies
            places = rng.permutation(len(BURST_PLACES))[:int(rng.integers(3, 6))].tolist()
            shots = [(_shot(canvas, *BURST_PLACES[where], rng), _unit(centre + noise(0.6)), -1)
                     for where in places]
        for index, (picture, vector, group) in enumerate(shots):
            thumbs.append(picture)
            vectors.append(vector)
            copy_group.append(group)
            scene.append(number)
            place.append(places[index] if places else -1)
    made.thumbnails = np.stack(thumbs[:count])
    made.vectors = np.stack(vectors[:count])
    made.copy_group = np.array(copy_group[:count])
    made.scene = np.array(scene[:count])
    made.place = np.array(place[:count])
    return made


def add_new_uploads(made: Entities, count: int, rng: np.random.Generator) -> None:
    """Append ``count`` uploads to check: in turn a copy of a stored single shot, a new shot
    of a stored burst, a new scene."""
    dimension = made.vectors.shape[1]
    singles = np.nonzero((made.copy_group == -1)
                         & (np.bincount(made.scene)[made.scene] == 1))[0]
    used: dict[int, set[int]] = {}
    for scene, where in zip(made.scene.tolist(), made.place.tolist(), strict=True):
        if where >= 0:
            used.setdefault(scene, set()).add(where)
    open_bursts = [scene for scene, taken in used.items() if len(taken) < len(BURST_PLACES)]
    thumbs, vectors = [], []
    for number in range(count):
        kind = number % 3
        if kind == 0:
            entity = int(rng.choice(singles))
            canvas = made.canvases[made.scene[entity]]
            thumbs.append(_copy(made.thumbnails[entity], canvas, rng))
            vectors.append(made.vectors[entity] + 0.3 * _unit(rng.standard_normal(dimension)))
        elif kind == 1:  # at a window none of the burst's shots has: not a copy of one
            scene = int(rng.choice(open_bursts))
            free = sorted(set(range(len(BURST_PLACES))) - used[scene])
            left, top = BURST_PLACES[free[int(rng.integers(len(free)))]]
            thumbs.append(_shot(made.canvases[scene], left, top, rng))
            vectors.append(made.scene_vectors[scene]
                           + 0.6 * _unit(rng.standard_normal(dimension)))
        else:
            thumbs.append(_shot(_canvas(rng), 8, 8, rng))
            vectors.append(rng.standard_normal(dimension))
    made.thumbnails = np.concatenate([made.thumbnails, np.stack(thumbs)])
    made.vectors = np.concatenate([made.vectors, _unit(np.stack(vectors))])


def wait_indexed(store: MilvusVectorStore) -> None:
    """Flush, then wait for Milvus Lite's index builds (a private API; benchmark only)."""
    store.flush(COLLECTION)
    collection = lite_search.local_collection(store.uri, COLLECTION)
    drained = collection._bg_executor.submit(lambda: None)
    while not drained.done():
        time.sleep(1)


def neighbours_from(store: MilvusVectorStore, vectors: np.ndarray, topk: int):
    spent = {"seconds": 0.0, "calls": 0}

    def neighbours(ids: Sequence[int]) -> list[list[tuple[int, float]]]:
        began = time.perf_counter()
        hits = store.search(COLLECTION, vectors[list(ids)], topk + 1)
        spent["seconds"] += time.perf_counter() - began
        spent["calls"] += 1
        return [[(hit.id, hit.distance) for hit in row] for row in hits]

    return neighbours, spent


def sanity(pairs: Sequence[Pair], made: Entities) -> str:
    """Pair precision / recall of copies and similar shots against the synthetic truth."""
    copies = {(p.first, p.second) for p in pairs if p.copy}
    similar = {(p.first, p.second) for p in pairs if p.similar}

    def truth(labels: np.ndarray) -> set[tuple[int, int]]:
        members: dict[int, list[int]] = {}
        for entity, label in enumerate(labels.tolist()):
            if label >= 0:
                members.setdefault(label, []).append(entity)
        return {(a, b) for group in members.values() for i, a in enumerate(group)
                for b in group[i + 1:]}

    said = []
    for name, found, wanted in (("copies", copies, truth(made.copy_group)),
                                ("similar", similar, truth(made.scene))):
        hits = len(found & wanted)
        said.append(f"{name} P {hits / max(len(found), 1):.3f} R {hits / max(len(wanted), 1):.3f}"
                    f" ({len(wanted):,} true pairs)")
    return "; ".join(said)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=10_000)
    parser.add_argument("--new", type=int, default=50, help="new uploads checked one by one")
    parser.add_argument("--imported", type=int, default=1000,
                        help="uploads stored unchecked, then judged by a listing")
    parser.add_argument("--workers", type=int, default=2, help="alignment threads")
    parser.add_argument("--dimension", type=int, default=1280)
    parser.add_argument("--neighbours", type=int, default=10,
                        help="nearest entities by vector asked for each entity")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"{args.entities:,} entities, {args.dimension}-d, {os.cpu_count()} cores, load "
          f"{os.getloadavg()[0]:.1f}, MemAvailable {available_gb():.1f} GB; bench process "
          f"VmRSS {status_mb('self', 'VmRSS'):,.0f} MB", flush=True)
    began = time.perf_counter()
    made = make_entities(args.entities, args.dimension, args.seed)
    stored = args.entities
    add_new_uploads(made, args.new + args.imported, np.random.default_rng(args.seed + 1))
    drawn = time.perf_counter() - began
    began = time.perf_counter()
    hashes = np.array([orientation_hashes(picture) for picture in made.thumbnails],
                      dtype=np.uint64)
    hashing = time.perf_counter() - began
    print(f"drew the data: {drawn:.0f} s; hashed it (8 orientations, done at upload): "
          f"{hashing:.0f} s, {1e3 * hashing / len(hashes):.2f} ms an entity", flush=True)

    with tempfile.TemporaryDirectory(prefix="phantoscope-duplicates-") as folder:
        store = MilvusVectorStore(str(Path(folder) / "vectors.db"), timeout_s=600)
        store.create_collection(COLLECTION, args.dimension, "IP")
        began = time.perf_counter()
        for start in range(0, stored, INSERT_ROWS):
            end = min(start + INSERT_ROWS, stored)
            store.insert(COLLECTION, list(range(start, end)), made.vectors[start:end])
        wait_indexed(store)
        print(f"inserted and indexed {stored:,} vectors: {time.perf_counter() - began:.0f} s; "
              f"VmRSS {status_mb('self', 'VmRSS'):,.0f} MB", flush=True)

        index = HashIndex()
        index.add(list(range(stored)), hashes[:stored])
        neighbours, spent = neighbours_from(store, made.vectors, args.neighbours)
        read = {"seconds": 0.0}

        def thumbnails(ids: Sequence[int]) -> np.ndarray:
            began_read = time.perf_counter()
            out = made.thumbnails[list(ids)]
            read["seconds"] += time.perf_counter() - began_read
            return out

        before = status_mb("self", "VmRSS")
        began = time.perf_counter()
        timings: dict[str, float] = {}
        pairs = find_pairs(index, list(range(stored)), neighbours, thumbnails,
                           neighbour_batch=SEARCH_ROWS, workers=args.workers, timings=timings)
        found = time.perf_counter() - began
        clock = time.perf_counter()
        copies = group_copies((p.first, p.second, p.copy, p.residual) for p in pairs
                              if not np.isnan(p.residual))
        similar = group_pairs((p.first, p.second) for p in pairs if p.similar)
        grouping = time.perf_counter() - clock
        total = found + grouping
        aligned = sum(not np.isnan(p.residual) for p in pairs)
        print(f"\nall groups of {stored:,} entities: {total:.1f} s ({total / 60:.1f} min) — "
              f"vector neighbours {timings['neighbours']:.1f} s ({spent['calls']} searches of "
              f"{SEARCH_ROWS}), hash pass {timings['hashes']:.1f} s, alignment of "
              f"{aligned:,} candidate pairs {timings['judge']:.1f} s on {args.workers} threads "
              f"({1e3 * timings['judge'] / max(aligned, 1):.2f} ms a pair), groups "
              f"{grouping:.2f} s", flush=True)
        print(f"found {len(copies):,} copy groups and {len(similar):,} groups of similar "
              f"shots; {sanity(pairs, made)}", flush=True)
        print(f"memory: VmRSS {status_mb('self', 'VmRSS'):,.0f} MB (before the pass "
              f"{before:,.0f} MB), VmHWM {status_mb('self', 'VmHWM'):,.0f} MB; the hash index "
              f"{hashes[:stored].nbytes / 2**20:.1f} MB, the thumbnails "
              f"{made.thumbnails[:stored].nbytes / 2**20:.0f} MB (the server reads them from "
              f"its store), the vectors {made.vectors[:stored].nbytes / 2**20:.0f} MB",
              flush=True)

        checks: list[float] = []
        verdicts = {"copy": 0, "similar": 0, "none": 0}
        for entity in range(stored, stored + args.new):
            began = time.perf_counter()
            hits = store.search(COLLECTION, made.vectors[entity][None, :], args.neighbours)[0]
            answer = check_new(index, tuple(int(v) for v in hashes[entity]),
                               made.thumbnails[entity],
                               [(hit.id, hit.distance) for hit in hits], thumbnails)
            checks.append(1e3 * (time.perf_counter() - began))
            kind = ("copy" if any(p.copy for p in answer) else
                    "similar" if any(p.similar for p in answer) else "none")
            verdicts[kind] += 1
        if checks:
            checks.sort()
            p95 = checks[min(len(checks) - 1, int(0.95 * len(checks)))]
            print(f"\none new upload checked against {stored:,} stored: p50 "
                  f"{statistics.median(checks):.1f} ms, p95 {p95:.1f} ms over {len(checks)} "
                  f"(vector search, hash scan and alignment of its candidates); found "
                  f"{verdicts}", flush=True)
        if args.imported:
            listing_after_import(store, index, hashes, made, range(stored, len(hashes)),
                                 args.neighbours, thumbnails)
        store.close()


def listing_after_import(store: MilvusVectorStore, index: HashIndex, hashes: np.ndarray,
                         made: Entities, new: Sequence[int], topk: int, thumbnails) -> None:
    """The pairs of uploads stored unchecked, judged one at a time and together."""
    store.insert(COLLECTION, list(new), made.vectors[list(new)])
    store.flush(COLLECTION)
    neighbours, _ = neighbours_from(store, made.vectors, topk)
    one_by_one, began = index.snapshot(), time.perf_counter()
    singly: list[Pair] = []
    for entity in new:
        [near] = neighbours([entity])
        singly += check_new(one_by_one, tuple(int(v) for v in hashes[entity]),
                            made.thumbnails[entity],
                            [(other, cosine) for other, cosine in near if other in one_by_one],
                            thumbnails, new_id=entity)
        one_by_one.add([entity], hashes[entity][None, :])
    alone = time.perf_counter() - began
    together = index.snapshot()
    together.add(list(new), hashes[list(new)])
    began = time.perf_counter()
    pairs = pairs_of_new(together, list(new), neighbours, thumbnails)
    batched = time.perf_counter() - began
    copies = sum(pair.copy for pair in pairs)
    print(f"\nthe next listing after {len(new):,} uploads stored unchecked, against "
          f"{len(index):,} stored: one image at a time {alone:.1f} s "
          f"({1e3 * alone / len(new):.1f} ms an image), together {batched:.1f} s "
          f"({1e3 * batched / len(new):.1f} ms an image, {alone / batched:.1f}x); "
          f"{copies} copy pairs (one at a time: {sum(pair.copy for pair in singly)})",
          flush=True)


if __name__ == "__main__":
    main()
