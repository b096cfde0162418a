"""Memory of Milvus Lite's compactions: milvus-lite's own merge, segment cache refresh and
data file read against `lite_compaction`'s merge, `lite_pool`'s refresh and `lite_file_read`.

Each way runs in a fresh child process, taking turns (``--runs`` each): a Milvus Lite
collection of 1280-d vectors takes ``--rows`` rows with fresh keys in four flushed files, as
an import's flushes write them; the fourth flush starts milvus-lite's background merge of
the four (into segments of at most 100k rows), its refresh of the segment cache and, with
``--index``, the merged segments' index builds. The ways: ``own`` (milvus-lite's merge and
refresh), ``merged`` (`lite_compaction.merge_files`, milvus-lite's refresh), ``pooled`` (that
and `lite_pool`'s refresh) and ``once`` (that and `lite_file_read`'s read of the merged files
into one buffer per vector column: all of ours, as the engine runs). Printed per way: the
child's VmRSS before the last flush; its peak resident memory (VmHWM) during that flush (the
rows written from the memtable: the same for every way) and from the flush's return until
the merge and index builds are done, and how far each is above; VmRSS after; the wall time;
and the ratios of each way to ``own``.

    .venv/bin/python bench/lite_compaction.py [--rows 200000] [--runs 2] [--index]

``--index`` builds the HNSW index the engine uses (M 16, efConstruction 200) on each segment,
as the engine does (slow: minutes at 200k on 2 cores).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import peak_rss_mb, rss_mb

DIMENSION = 1280
BATCH = 2000
FILES = 4  # flushed files: milvus-lite merges four of a size
MEMTABLE_BYTES = 8 << 30  # so that only the bench's flushes write files
WAYS = ("own", "merged", "pooled", "once")


def child(way: str, rows: int, index: bool) -> dict:
    """Four flushed files of fresh keys, ``rows`` in all, merged ``way`` after the fourth;
    the figures of that last flush and merge."""
    import pyarrow as pa
    from milvus_lite import CollectionSchema, DataType, FieldSchema, MilvusLite

    from phantoscope.storage import lite_compaction, lite_file_read, lite_pool, lite_search

    assert lite_search.install()
    if way != "once":
        lite_file_read.uninstall()
    if way not in ("pooled", "once"):
        lite_pool.uninstall()
    if way == "own":
        lite_compaction.uninstall()
    rng = np.random.default_rng(7)
    per_file = rows // FILES
    with tempfile.TemporaryDirectory() as folder, MilvusLite(folder) as db:
        collection = db.create_collection("photos", CollectionSchema(fields=[
            FieldSchema(name="id", dtype=DataType.INT64, is_primary=True),
            FieldSchema(name="vector", dtype=DataType.FLOAT_VECTOR, dim=DIMENSION),
        ]))
        if index:
            collection.create_index("vector", {"index_type": "HNSW", "metric_type": "IP",
                                               "params": {"M": 16, "efConstruction": 200}})
        collection.load()
        for file in range(FILES):
            for start in range(file * per_file, (file + 1) * per_file, BATCH):
                vectors = rng.normal(size=(BATCH, DIMENSION)).astype(np.float32)
                collection.insert([{"id": start + offset, "vector": vector.tolist()}
                                   for offset, vector in enumerate(vectors)])
            if file == FILES - 1:
                collection._wait_for_bg(timeout=3600)
                gc.collect()
                pa.default_memory_pool().release_unused()
                before = rss_mb(os.getpid())
                Path("/proc/self/clear_refs").write_text("5")  # VmHWM from here
                started = time.perf_counter()
            collection.flush()
        flush_peak = peak_rss_mb(os.getpid())
        Path("/proc/self/clear_refs").write_text("5")  # the merge runs in the background
        collection._wait_for_bg(timeout=3600)
        elapsed = time.perf_counter() - started
        assert collection.num_entities == per_file * FILES
        assert len(collection._manifest.get_data_files("_default")) < FILES  # merged
        return {"before_mb": before, "flush_peak_mb": flush_peak,
                "peak_mb": peak_rss_mb(os.getpid()), "after_mb": rss_mb(os.getpid()),
                "seconds": elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--index", action="store_true")
    parser.add_argument("--child", choices=WAYS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.rows, args.index)))
        return
    figures: dict[str, list[dict]] = {way: [] for way in WAYS}
    for run in range(args.runs):
        for way in WAYS:
            command = [sys.executable, __file__, "--child", way, "--rows", str(args.rows)]
            answer = subprocess.run(command + (["--index"] if args.index else []),
                                    check=True, capture_output=True, text=True,
                                    env={**os.environ, "MILVUS_LITE_MEMTABLE_MEMORY_LIMIT_BYTES":
                                         str(MEMTABLE_BYTES)})
            figures[way].append(json.loads(answer.stdout.splitlines()[-1]))
            print(f"run {run + 1} {way:>6}: {figures[way][-1]}", flush=True)
    keys = ("before_mb", "flush_peak_mb", "peak_mb", "after_mb", "seconds")
    median = {way: {key: statistics.median(run[key] for run in runs) for key in keys}
              for way, runs in figures.items()}
    print(f"\n{args.rows:,} rows of {DIMENSION}-d in {FILES} files, "
          f"{'HNSW' if args.index else 'no'} index, median of {args.runs}; the last flush, "
          "then the merge it starts (and index builds), VmHWM (MB above VmRSS before):")
    print(f"{'way':>8} {'VmRSS before':>13} {'flush':>14} {'merge':>14} {'VmRSS after':>12} "
          f"{'seconds':>8}")
    for way in WAYS:
        figure = median[way]
        flush, merge = (f"{figure[key]:,.0f} ({figure[key] - figure['before_mb']:,.0f})"
                        for key in ("flush_peak_mb", "peak_mb"))
        print(f"{way:>8} {figure['before_mb']:>10,.0f} MB {flush:>14} {merge:>14} "
              f"{figure['after_mb']:>9,.0f} MB {figure['seconds']:>8.1f}")
    own = median["own"]
    own_above = own["peak_mb"] - own["before_mb"]
    for way in WAYS[1:]:
        figure = median[way]
        print(f"{way} / own: merge peak above before "
              f"{(figure['peak_mb'] - figure['before_mb']) / own_above:.2f}, "
              f"its VmHWM {figure['peak_mb'] / own['peak_mb']:.2f}, "
              f"time {figure['seconds'] / own['seconds']:.2f}")

if __name__ == "__main__":
    main()
