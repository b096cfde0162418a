"""Copy alignment (`duplicates.registration.align`): CPU a pair by how many pairs one call
aligns, on the same candidate pairs in the same process.

    .venv/bin/python bench/align.py [--batches 256,64,32] [--runs 3]

The pairs: the labelled duplicate set (`bench/eval_sets.py --duplicates`, made in a temporary
folder), each image's thumbnail made as the API makes it (`describe`), and as candidates
every pair within one copy group or one scene, and every other pair whose hashes are within
CANDIDATE_HASH_BITS (the encoder's candidates need a model; these are the pairs it finds
most). Each call size aligns them all, `--runs` times, interleaved; the first is the
baseline. Printed: CPU and wall milliseconds a pair (median) and the CPU's ratio to the
baseline's, the copies found against the set's truth, and whether every figure of every pair
is the same as the baseline's.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from itertools import combinations
from pathlib import Path

import numpy as np

from phantoscope.duplicate_set import build_duplicate_set
from phantoscope.duplicates.decision import CANDIDATE_HASH_BITS, are_copies
from phantoscope.duplicates.descriptor import describe
from phantoscope.duplicates.finder import HashIndex
from phantoscope.duplicates.registration import ALIGN_BATCH, Alignment, align


def candidate_pairs(folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The set's thumbnails as (first, second) arrays of the candidate pairs, and which of
    the pairs are copies by the set's truth."""
    truth = build_duplicate_set(folder)
    number = {image: at for at, image in enumerate(truth.images)}
    descriptors = [describe((folder / image).read_bytes()) for image in truth.images]
    index = HashIndex()
    index.add(range(len(descriptors)), np.array([item.orientation_hashes
                                                 for item in descriptors], dtype=np.uint64))
    pairs = {(first, second) for first, second, _ in index.near_pairs(CANDIDATE_HASH_BITS)}
    copy_pairs = set()
    for groups, copies in ((truth.copies, True), (truth.similar, False)):
        for group in groups:
            for first, second in combinations(sorted(number[image] for image in group), 2):
                pairs.add((first, second))
                if copies:
                    copy_pairs.add((first, second))
    ordered = sorted(pairs)
    thumbs = np.stack([item.pixels for item in descriptors])
    firsts, seconds = (np.array(side) for side in zip(*ordered, strict=True))
    return (thumbs[firsts], thumbs[seconds],
            np.array([pair in copy_pairs for pair in ordered], dtype=bool))


def align_all(a: np.ndarray, b: np.ndarray, batch: int) -> tuple[Alignment, float, float]:
    """Every pair aligned, ``batch`` pairs a call: the figures, CPU and wall seconds."""
    cpu, wall = time.process_time(), time.perf_counter()
    parts = [align(a[start:start + batch], b[start:start + batch])
             for start in range(0, len(a), batch)]
    return Alignment.joined(parts), time.process_time() - cpu, time.perf_counter() - wall


def same(one: Alignment, other: Alignment) -> bool:
    """Whether every figure of every pair is bit for bit the same."""
    return all(np.array_equal(getattr(one, name), getattr(other, name), equal_nan=True)
               for name in Alignment.__dataclass_fields__)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", default=f"{ALIGN_BATCH},64,32",
                        help="comma-separated pairs a call; the first is the baseline "
                        f"(default: ALIGN_BATCH, {ALIGN_BATCH}, then 64 and 32)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    batches = [int(value) for value in args.batches.split(",")]
    if not batches or min(batches) < 1:
        parser.error("--batches: comma-separated counts of at least 1")
    with tempfile.TemporaryDirectory() as folder:
        a, b, truth = candidate_pairs(Path(folder))
    print(f"{len(a):,} candidate pairs, {truth.sum():,} of them copies by the set's truth; "
          f"ALIGN_BATCH {ALIGN_BATCH}")
    cpu: dict[int, list[float]] = {batch: [] for batch in batches}
    wall: dict[int, list[float]] = {batch: [] for batch in batches}
    figures: dict[int, Alignment] = {}
    for _ in range(args.runs):
        for batch in batches:
            figures[batch], used, took = align_all(a, b, batch)
            cpu[batch].append(1000 * used / len(a))
            wall[batch].append(1000 * took / len(a))
    base = statistics.median(cpu[batches[0]])
    for batch in batches:
        found = are_copies(figures[batch])
        print(f"{batch:>5} pairs a call: CPU {statistics.median(cpu[batch]):.2f} ms a pair "
              f"(runs {' '.join(f'{value:.2f}' for value in cpu[batch])}; "
              f"{statistics.median(cpu[batch]) / base:.2f}x), wall "
              f"{statistics.median(wall[batch]):.2f} ms; copies found {found.sum():,} "
              f"({(found & truth).sum():,} true, {(found & ~truth).sum():,} false); figures "
              f"{'the same as' if same(figures[batch], figures[batches[0]]) else 'NOT the same as'}"
              f" {batches[0]}'s")


if __name__ == "__main__":
    main()
