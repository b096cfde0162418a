"""What labels cost: the default encoder with its classifier head (features + class
probabilities + top-5 labels, as served) against the same model without it (features only,
as before labels), fp32 and static int8.

    .venv/bin/python bench/label_cost.py [--images 96] [--batch 4] [--repeats 7]

The model without the head is the served ONNX file cut at ``features`` (``onnx.utils``), so
both run the same trunk. Three levels, each with and without the head:

  session  the bare ONNX Runtime call on preprocessed tensors;
  encode   what the server's batch worker runs: preprocess, the call, L2, top-5 labels;
  ingest   decode the JPEG + encode: the CPU ceiling of one operator process.

The head is also timed alone (the served file cut from ``features`` to ``probabilities``,
on the photos' features, then the top-5 labels): its CPU time per image is small enough to
measure steadily, unlike the difference of two noisy totals.

Passes interleave every mode, as other processes share this machine. For each level the
table shows images/s (best and median over passes) and this process's CPU time per image
(median; ONNX Runtime's idle threads sleep, so CPU time counts work, and it moves far less
than images/s when other processes take the cores), and the cost of the head from each:
1 - with/without for images/s, with/without - 1 for CPU time.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import onnx.utils
from common import describe_photos, make_photos, print_table

from phantoscope.imaging.codec import decode_image
from phantoscope.operators.labels import IMAGENET_1K, imagenet_class_ids, top_labels
from phantoscope.zoo.efficientnet import EfficientNetLite0Encoder
from phantoscope.zoo.int8 import EfficientNetLite0Int8Encoder
from phantoscope.zoo.modelcache import FEATURES, PROBABILITIES
from phantoscope.zoo.runtime import create_session


class CachedFile(EfficientNetLite0Encoder):
    """EfficientNet-Lite0's preprocessing over a given ONNX file (fp32 or int8, with or
    without the head)."""

    def __init__(self, path: Path, labels: str) -> None:
        super().__init__()
        self.path = path
        self.labels = labels

    def model_path(self) -> Path:
        return self.path


def pair(served: Path, folder: Path) -> tuple[CachedFile, CachedFile]:
    """(with the head, without it): the served file, and that file cut at ``features``."""
    cut = folder / f"{served.stem}-features-only.onnx"
    onnx.utils.extract_model(str(served), str(cut), ["images"], [FEATURES])
    with_head, without = CachedFile(served, IMAGENET_1K), CachedFile(cut, "")
    with_head.load()
    without.load()
    return with_head, without


def modes(
    encoder: CachedFile, photos: Sequence[bytes], batch: int
) -> dict[str, Callable[[], object]]:
    """The three levels for one encoder, as functions running every photo once."""
    assert encoder._session is not None
    session, name, outputs = encoder._session, encoder._input_name, encoder.outputs()
    prepared = [encoder.prepare(data, max_pixels=1 << 30) for data in photos]
    pixels = [prepared[i:i + batch] for i in range(0, len(prepared), batch)]
    tensors = [encoder.preprocess(chunk) for chunk in pixels]
    files = [photos[i:i + batch] for i in range(0, len(photos), batch)]

    def ingest() -> None:
        for chunk in files:
            images = [decode_image(data, min_side=encoder.min_image_side) for data in chunk]
            encoder.encode(images)

    return {
        "session": lambda: [session.run(outputs, {name: tensor}) for tensor in tensors],
        "encode": lambda: [encoder.encode(chunk) for chunk in pixels],
        "ingest": ingest,
    }


def head_alone_ms(
    encoder: CachedFile, folder: Path, photos: Sequence[bytes], batch: int, seconds: float
) -> float:
    """CPU milliseconds an image of the classifier head alone, with the top-5 labels."""
    assert encoder._session is not None
    cut = folder / f"{encoder.path.stem}-head-only.onnx"
    onnx.utils.extract_model(str(encoder.path), str(cut), [FEATURES], [PROBABILITIES])
    head = create_session(cut)
    prepared = [encoder.prepare(data, max_pixels=1 << 30) for data in photos]
    features = [
        encoder._session.run([FEATURES], {encoder._input_name: encoder.preprocess(chunk)})[0]
        for chunk in (prepared[i:i + batch] for i in range(0, len(prepared), batch))
    ]
    ids = imagenet_class_ids()
    images, started, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - started < seconds:
        for chunk in features:
            top_labels(head.run([PROBABILITIES], {FEATURES: chunk})[0], ids)
            images += len(chunk)
    return 1000 * (time.process_time() - cpu) / images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=96)
    parser.add_argument("--batch", type=int, default=4, help="images a model call (served: 4)")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    photos = make_photos(args.images)
    print(f"{args.images} photos ({describe_photos(photos)}), batch {args.batch}")
    fp32, int8 = EfficientNetLite0Encoder(), EfficientNetLite0Int8Encoder()
    fp32.load()
    int8.load()
    rates: dict[tuple[str, str, str], list[float]] = {}
    cpu_ms: dict[tuple[str, str, str], list[float]] = {}
    head_ms: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="label-cost-") as folder:
        runs: dict[tuple[str, str, str], Callable[[], object]] = {}
        for variant, encoder in (("fp32", fp32), ("int8", int8)):
            with_head, without = pair(encoder.model_path(), Path(folder))
            head_ms[variant] = head_alone_ms(with_head, Path(folder), photos, args.batch, 3.0)
            for head, chosen in (("with head", with_head), ("without", without)):
                for level, run in modes(chosen, photos, args.batch).items():
                    run()  # warm-up
                    runs[(variant, level, head)] = run
        for _ in range(args.repeats):
            for key, run in runs.items():
                started, cpu = time.perf_counter(), time.process_time()
                run()
                rates.setdefault(key, []).append(args.images / (time.perf_counter() - started))
                cpu_ms.setdefault(key, []).append(
                    1000 * (time.process_time() - cpu) / args.images
                )
    rows = []
    for variant in ("fp32", "int8"):
        for level in ("session", "encode", "ingest"):
            keys = [(variant, level, head) for head in ("without", "with head")]
            without, with_head = (rates[key] for key in keys)
            cpu_without, cpu_with = (statistics.median(cpu_ms[key]) for key in keys)
            rows.append([
                variant, level,
                f"{max(without):.1f} / {statistics.median(without):.1f}",
                f"{max(with_head):.1f} / {statistics.median(with_head):.1f}",
                f"{1 - max(with_head) / max(without):+.1%} / "
                f"{1 - statistics.median(with_head) / statistics.median(without):+.1%}",
                f"{cpu_without:.2f} / {cpu_with:.2f}",
                f"{cpu_with / cpu_without - 1:+.1%}",
            ])
        encode_ms = statistics.median(cpu_ms[(variant, "encode", "without")])
        ingest_ms = statistics.median(cpu_ms[(variant, "ingest", "without")])
        rows.append([
            variant, "head alone", "", "", "", f"{head_ms[variant]:.3f}",
            f"+{head_ms[variant] / encode_ms:.1%} of encode, "
            f"+{head_ms[variant] / ingest_ms:.1%} of ingest",
        ])
    print_table(
        ["model", "level", "img/s without head: best / median", "with head", "cost from img/s",
         "CPU ms/img without / with", "cost from CPU"],
        rows,
    )


if __name__ == "__main__":
    main()
