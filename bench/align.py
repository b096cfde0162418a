"""Copy alignment (`duplicates.registration.align`) with its early stop against every step
taken, on the same candidate pairs in the same process.

    .venv/bin/python bench/align.py [--runs 3]

The pairs: the labelled duplicate set (`bench/eval_sets.py --duplicates`, made in a temporary
folder), each image's thumbnail made as the API makes it (`describe`), and as candidates
every pair within one copy group or one scene, and every other pair whose hashes are within
CANDIDATE_HASH_BITS (the encoder's candidates need a model; these are the pairs it finds
most). Each way aligns them all, ALIGN_BATCH pairs a call as the server does, `--runs`
times, interleaved. Printed: CPU and wall milliseconds a pair (median), their ratio, the
copies each way finds against the set's truth, and the pairs whose decision differs.
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
from phantoscope.duplicates import registration
from phantoscope.duplicates.decision import CANDIDATE_HASH_BITS, are_copies
from phantoscope.duplicates.descriptor import describe
from phantoscope.duplicates.finder import HashIndex

WAYS = {"every step": 0.0, "early stop": registration.CONVERGED_PIXELS}


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


def align_all(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Copy decisions of every pair, CPU and wall seconds."""
    cpu, wall = time.process_time(), time.perf_counter()
    decided = [are_copies(registration.align(a[start:start + registration.ALIGN_BATCH],
                                             b[start:start + registration.ALIGN_BATCH]))
               for start in range(0, len(a), registration.ALIGN_BATCH)]
    return np.concatenate(decided), time.process_time() - cpu, time.perf_counter() - wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        a, b, truth = candidate_pairs(Path(folder))
    print(f"{len(a):,} candidate pairs, {truth.sum():,} of them copies by the set's truth")
    cpu: dict[str, list[float]] = {way: [] for way in WAYS}
    wall: dict[str, list[float]] = {way: [] for way in WAYS}
    decisions: dict[str, np.ndarray] = {}
    for _ in range(args.runs):
        for way, converged in WAYS.items():
            registration.CONVERGED_PIXELS = converged
            decisions[way], used, took = align_all(a, b)
            cpu[way].append(1000 * used / len(a))
            wall[way].append(1000 * took / len(a))
    for way in WAYS:
        found = decisions[way]
        print(f"{way:>11}: CPU {statistics.median(cpu[way]):.2f} ms a pair "
              f"(runs {' '.join(f'{value:.2f}' for value in cpu[way])}), wall "
              f"{statistics.median(wall[way]):.2f} ms; copies found {found.sum():,} "
              f"({(found & truth).sum():,} true, {(found & ~truth).sum():,} false)")
    base, new = (statistics.median(cpu[way]) for way in WAYS)
    differ = (decisions["every step"] != decisions["early stop"]).sum()
    print(f"early stop / every step: CPU {new / base:.2f}x; decisions that differ: {differ}")


if __name__ == "__main__":
    main()
