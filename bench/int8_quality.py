"""fp32 against static int8 encoders, side by side in one process: speed and quality.

    .venv/bin/python bench/int8_quality.py [--models efficientnet-lite0,mobilenet-v2]
                                           [--seconds 3] [--rounds 3]

Speed: images/s of ``encoder.run`` (normalise, infer, L2-normalise; what the operator's model
thread does) on prepared 224x224 crops, at batch 1 and 16. The variants take turns, round
after round, so that load from other processes falls on both alike; the median round is shown.

Quality, on photos the int8 models were not calibrated on (the labelled evaluation set of
:mod:`phantoscope.photoset`: 10 scikit-image photos x 6 edits, plus the 10
originals):
- cosine similarity between each image's fp32 and int8 vectors (mean, min);
- nearest-neighbour agreement: the fraction of images whose nearest other image in that
  gallery is the same under fp32 and int8;
- retrieval mAP@1/5/10, recall@10 on the labelled set (every image queries the others, as
  ``phantoscope eval`` does over the API), from each variant's vectors, and the change.

Also times a first quantisation (into a temporary folder; the model cache is left alone).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from phantoscope.evaluation.scoring import mean_scores, query_scores
from phantoscope.photoset import BASE_PHOTOS, build_photo_set, sample_photo
from phantoscope.zoo.efficientnet import EfficientNetLite0Encoder
from phantoscope.zoo.int8 import EfficientNetLite0Int8Encoder, MobileNetV2Int8Encoder
from phantoscope.zoo.mobilenet import MobileNetV2Encoder
from phantoscope.zoo.modelcache import ensure_quantized
from phantoscope.zoo.onnx_encoder import OnnxImageEncoder

MODELS = {
    "efficientnet-lite0": (EfficientNetLite0Encoder, EfficientNetLite0Int8Encoder),
    "mobilenet-v2": (MobileNetV2Encoder, MobileNetV2Int8Encoder),
}
BATCHES = (1, 16)
KS = (1, 5, 10)


def images_per_second(encoder: OnnxImageEncoder, crops: list[np.ndarray], seconds: float) -> float:
    encoder.run(crops)  # warm-up
    done, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        encoder.run(crops)
        done += len(crops)
    return done / elapsed


def speed(pairs: dict[str, tuple[OnnxImageEncoder, OnnxImageEncoder]], seconds: float,
          rounds: int) -> dict[tuple[str, str, int], float]:
    """Median images/s over ``rounds``, per (model, variant, batch); variants interleaved."""
    photo = sample_photo("astronaut")
    samples: dict[tuple[str, str, int], list[float]] = {}
    for _ in range(rounds):
        for model, encoders in pairs.items():
            for batch in BATCHES:
                for variant, encoder in zip(("fp32", "int8"), encoders, strict=True):
                    crops = [encoder._pixels(photo)] * batch
                    rate = images_per_second(encoder, crops, seconds)
                    samples.setdefault((model, variant, batch), []).append(rate)
    return {key: statistics.median(rates) for key, rates in samples.items()}


def held_out_set(folder: Path) -> tuple[list[Image.Image], list[str]]:
    """The labelled evaluation set's images and labels, then the 10 originals (label '')."""
    written = build_photo_set(folder)
    images, labels = [], []
    for label, paths in written.items():
        for path in paths:
            with Image.open(path) as image:
                images.append(image.convert("RGB"))
            labels.append(label)
    for name in BASE_PHOTOS:
        images.append(sample_photo(name))
        labels.append("")
    return images, labels


def retrieval(vectors: np.ndarray, labels: list[str]) -> dict[str, float | None]:
    """mAP@k etc. with each labelled image querying all the other labelled images."""
    similarity = vectors @ vectors.T
    per_query = []
    for i, label in enumerate(labels):
        order = [j for j in np.argsort(-similarity[i], kind="stable") if j != i]
        ranked = [labels[j] for j in order]
        per_query.append(query_scores(ranked, label, labels.count(label) - 1, KS))
    return mean_scores(per_query, KS)


def nearest_other(vectors: np.ndarray) -> np.ndarray:
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -np.inf)
    return similarity.argmax(axis=1)


def quantisation_seconds(encoder: OnnxImageEncoder) -> float:
    """How long quantising this encoder's cached fp32 model takes, into a temporary file."""
    cls = type(encoder)
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        ensure_quantized(encoder.fp32_model_path(), Path(folder) / "int8.onnx",
                         f"{cls.__module__}:{cls.__qualname__}")
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-quantise-timing", action="store_true")
    args = parser.parse_args()
    pairs = {}
    for model in args.models.split(","):
        fp32, int8 = (cls() for cls in MODELS[model])
        fp32.load()
        int8.load()
        pairs[model] = (fp32, int8)

    load_before = os.getloadavg()[0]
    rates = speed(pairs, args.seconds, args.rounds)
    load_after = os.getloadavg()[0]
    print(f"images/s, encoder.run on prepared crops, median of {args.rounds} interleaved rounds "
          f"of {args.seconds:g} s; {os.cpu_count()} CPUs, load average "
          f"{load_before:.1f} -> {load_after:.1f}")
    print(f"{'model':20} {'batch':>5} {'fp32':>8} {'int8':>8} {'int8/fp32':>10}")
    for model in pairs:
        for batch in BATCHES:
            fp32, int8 = rates[(model, "fp32", batch)], rates[(model, "int8", batch)]
            print(f"{model:20} {batch:5} {fp32:8.1f} {int8:8.1f} {int8 / fp32:9.2f}x")

    with tempfile.TemporaryDirectory() as folder:
        images, labels = held_out_set(Path(folder))
    labelled = [i for i, label in enumerate(labels) if label]
    print()
    print(f"quality on {len(images)} held-out images ({len(labelled)} labelled in "
          f"{len(set(labels) - {''})} classes, + {len(images) - len(labelled)} originals)")
    header = (f"{'model':20} {'cos mean':>8} {'cos min':>8} {'NN agree':>8} "
              + " ".join(f"{'mAP@' + str(k) + ' fp32/int8':>19}" for k in KS)
              + f" {'recall@10 fp32/int8':>19}")
    print(header)
    for model, (fp32, int8) in pairs.items():
        a, b = fp32.run(images), int8.run(images)
        cosine = (a * b).sum(axis=1)
        agree = float((nearest_other(a) == nearest_other(b)).mean())
        ma = retrieval(a[labelled], [labels[i] for i in labelled])
        mb = retrieval(b[labelled], [labels[i] for i in labelled])
        cells = [
            f"{ma[key]:.3f}/{mb[key]:.3f} ({mb[key] - ma[key]:+.3f})"
            for key in [f"mAP@{k}" for k in KS] + ["recall@10"]
        ]
        print(f"{model:20} {cosine.mean():8.4f} {cosine.min():8.4f} {agree:8.3f} "
              + " ".join(f"{cell:>19}" for cell in cells))

    if not args.skip_quantise_timing:
        print()
        for model, (_, int8) in pairs.items():
            print(f"first quantisation of {model}: {quantisation_seconds(int8):.1f} s "
                  "(subprocess: pre-process, calibrate on 96 images, write)")


if __name__ == "__main__":
    main()
