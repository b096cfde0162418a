"""Search-by-words latency over HTTP at 100k entities, beside search-by-image on the same
server in the same run (issue 17, tier 1: labels).

    .venv/bin/python bench/text_search.py [--rows 100000] [--repeats 40] [--seeds 200]

Data, in a fresh PHANTOSCOPE_HOME on the default stores (Milvus Lite, SQLite, folder):
the default encoder (EfficientNet-Lite0, in this process) encodes --seeds real photos
(scikit-image's samples, cropped, recoloured, scaled) and gives each its real top-5
ImageNet labels. The stored entities are made as bench/search.py makes them (the seeds, then
noisy copies of random seeds: same vectors, same rows, written with the engine's own stores
into the default application); each entity's labels are its seed's, with every probability
multiplied by exp(N(0, 0.25)) (scaled back to sum 1 when over). So labels are synthetic rows
shaped like real ones, as clustered as the photos: every subject holds thousands of entities
and a word like "cat" or "animal" aggregates thousands of label rows. Queries: fixed words
and phrases (below), each --repeats times, and --repeats photos sent as multipart files
(topk 10 both), one at a time over HTTP to `phantoscope up` after 10 warm-ups each.
Other processes share this machine: compare the two columns of one run, not runs.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx
import numpy as np
from common import Latency, engine, make_photos, print_table, timed_ms
from search import encode_photos, synthetic, wait_indexed, write_rows
from sqlalchemy import insert

from phantoscope.cli.launcher import DEFAULT_APPLICATION, DEFAULT_FIELD, ensure_defaults
from phantoscope.config import ServerSettings
from phantoscope.engine.context import Stores
from phantoscope.imaging.codec import decode_image
from phantoscope.operators.process import OperatorProcess
from phantoscope.storage.meta import LabelRow
from phantoscope.storage.milvus_vectors import MilvusVectorStore
from phantoscope.zoo import DEFAULT_ENCODER
from phantoscope.zoo.efficientnet import EfficientNetLite0Encoder

TOPK = 10
WARM_UP = 10
LABEL_CHUNK = 20_000
QUERIES = ("cat", "a dog", "vehicle", "coffee", "animal", "food", "a rocket launch",
           "astronaut in a space suit", "horse and cart", "clock on the wall", "xyzzy")
Labels = list[tuple[str, float]]


def seed_labels(encoder: EfficientNetLite0Encoder, photos: Sequence[bytes]) -> list[Labels]:
    images = [decode_image(data, min_side=encoder.min_image_side) for data in photos]
    found: list[Labels] = []
    for start in range(0, len(images), 16):
        found.extend(list(each) for each in encoder.encode(images[start:start + 16]).labels)
    return found


def entity_labels(seeds: list[Labels], rows: int, seed: int = 0) -> list[Labels]:
    """Each entity's labels: its seed's (the seeds first, then the seeds `synthetic` picked
    with the same generator), probabilities jittered."""
    rng = np.random.default_rng(seed)
    picks = [*range(len(seeds)), *rng.integers(0, len(seeds), rows - len(seeds)).tolist()]
    jitter = np.random.default_rng(seed + 1)
    made = []
    for pick in picks:
        ids = [label for label, _ in seeds[pick]]
        scores = np.array([score for _, score in seeds[pick]])
        scores = scores * np.exp(jitter.normal(0, 0.25, len(scores)))
        scores = scores / max(1.0, float(scores.sum()))
        made.append(list(zip(ids, scores.tolist(), strict=True)))
    return made


def write_labels(stores: Stores, labels: list[Labels]) -> int:
    """The label rows of entities 10**12 + 1, ... (the ids `write_rows` gives), in bulk."""
    rows = [{"entity_id": 10**12 + index + 1, "label": label, "score": score,
             "application": DEFAULT_APPLICATION, "field": DEFAULT_FIELD}
            for index, each in enumerate(labels) for label, score in each]
    for start in range(0, len(rows), LABEL_CHUNK):
        with stores.meta.engine.begin() as connection:
            connection.execute(insert(LabelRow), rows[start:start + LABEL_CHUNK])
    return len(rows)


def populate(home: Path, vectors: np.ndarray, labels: list[Labels]) -> None:
    settings = ServerSettings(home=home, storage_timeout_s=600)
    with OperatorProcess(DEFAULT_ENCODER) as operator:
        stores = Stores.open(settings)
        try:
            ensure_defaults(stores, operator.endpoint)
            pipeline = stores.meta.get_pipeline("default")
            assert pipeline is not None
            started = time.perf_counter()
            write_rows(stores, pipeline.collection, vectors)
            count = write_labels(stores, labels)
            assert isinstance(stores.vectors, MilvusVectorStore)
            wait_indexed(stores.vectors, pipeline.collection)
            print(f"wrote and indexed {len(vectors):,} entities, vectors and {count:,} label "
                  f"rows in {time.perf_counter() - started:.0f} s", flush=True)
        finally:
            stores.close()


def latency(call: Callable[[int], httpx.Response], repeats: int) -> Latency:
    for index in range(WARM_UP):
        call(index).raise_for_status()
    return Latency(tuple(timed_ms(lambda i=i: call(i).raise_for_status())
                         for i in range(repeats)))


def measure(url: str, photos: Sequence[bytes], repeats: int) -> None:
    path = f"/v1/application/{DEFAULT_APPLICATION}/search"
    rows = []
    with httpx.Client(base_url=url, timeout=120) as http:
        image = latency(lambda i: http.post(path, files={"file": ("q.jpg", photos[i % len(
            photos)])}, data={"topk": str(TOPK)}), repeats)
        every: list[float] = []
        for text in QUERIES:
            found = http.post(path, json={"text": text, "topk": TOPK}).json()
            words = latency(lambda _i, text=text: http.post(
                path, json={"text": text, "topk": TOPK}), repeats)
            every.extend(words.samples)
            best = found["hits"][0]["score"] if found["hits"] else 0.0
            rows.append((f'text "{text}"', f"{len(found['hits'])}", f"{best:.2f}",
                         f"{words.pct(50):.1f}", f"{words.pct(95):.1f}"))
    text = Latency(tuple(every))
    rows.append(("text: all queries above", "", "", f"{text.pct(50):.1f}",
                 f"{text.pct(95):.1f}"))
    rows.append(("image (multipart photo)", str(TOPK), "", f"{image.pct(50):.1f}",
                 f"{image.pct(95):.1f}"))
    print_table(("query over HTTP, one at a time", "hits", "best", "p50 ms", "p95 ms"), rows)
    verdict = "met" if text.pct(50) <= image.pct(50) else "NOT met"
    print(f"text p50 {text.pct(50):.1f} ms vs image p50 {image.pct(50):.1f} ms: "
          f"target text <= image {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="stored entities")
    parser.add_argument("--repeats", type=int, default=40, help="timed searches per query")
    parser.add_argument("--seeds", type=int, default=200, help="real photos encoded")
    parser.add_argument("--sigma", type=float, default=0.5, help="as in bench/search.py")
    args = parser.parse_args()

    encoder = EfficientNetLite0Encoder()
    encoder.load()
    seed_photos = make_photos(args.seeds, seed=1)
    seeds = encode_photos(encoder, seed_photos)
    labels = entity_labels(seed_labels(encoder, seed_photos), args.rows)
    vectors = synthetic(seeds, args.rows, args.sigma)
    photos = make_photos(50, seed=2)
    with tempfile.TemporaryDirectory(prefix="phantoscope-bench-") as tmp:
        home = Path(tmp) / "home"
        populate(home, vectors, labels)
        with engine(home=home) as running:
            measure(running.url, photos, args.repeats)


if __name__ == "__main__":
    main()
