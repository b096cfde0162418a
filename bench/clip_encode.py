"""What CLIP ViT-B/32 costs on this CPU: ms per image (image tower) and per text (text tower),
at batch 1 and 16, beside efficientnet-lite0 (the default encoder) in the same run.

    .venv/bin/python bench/clip_encode.py [--repeats 5] [--weights FILE_OR_URL]

Speed does not depend on the weights' values, so without ``--weights`` the bench makes a
seeded random OpenCLIP ViT-B/32 checkpoint (torch and open_clip_torch: the export extra) and
exports it into a temporary model cache. Each item is timed as the server runs it: an image's
``prepare`` (JPEG decode, resize and crop, in the request's thread), then the batch worker's
``run`` (normalise, the ONNX call, L2); a text's ``run`` (tokenizer, the ONNX call, L2). The
photos are JPEGs of 320 to 2400 pixels a long side. Passes interleave the steps, as other
processes share this machine; the table shows the median wall ms per item and this process's
median CPU ms per item (ONNX Runtime's idle threads sleep, so CPU time counts work and moves far
less than wall time when other processes take the cores).
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from common import make_photos, print_table

from phantoscope.zoo.clip import ClipImageEncoder, ClipTextEncoder
from phantoscope.zoo.efficientnet import EfficientNetLite0Encoder

MAX_PIXELS = 50_000_000
SENTENCES = [
    "a photo of a cat sitting on a windowsill",
    "two cups of coffee on a wooden table",
    "a rocket lifting off from the launch pad at night",
    "a red motorcycle parked in front of a garage door",
    "black-and-white portrait of a man with a camera on a tripod",
    "a dog running on the beach at sunset",
    "a plate of pasta with tomato sauce and basil",
    "snow-covered mountains above a lake in the morning",
]


def seeded_checkpoint(folder: Path) -> str:
    import open_clip
    import torch

    torch.manual_seed(0)
    path = folder / "open_clip_pytorch_model.bin"
    torch.save(open_clip.create_model("ViT-B-32").state_dict(), path)
    return str(path)


def prepare_all(encoder: ClipImageEncoder | EfficientNetLite0Encoder, jpegs: list[bytes]) -> None:
    for data in jpegs:
        encoder.prepare(data, max_pixels=MAX_PIXELS)


def per_item(run: Callable[[], object], items: int) -> tuple[float, float]:
    """(wall ms, CPU ms) per item of one call of ``run``."""
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return (
        (time.perf_counter() - wall) * 1000 / items,
        (time.process_time() - cpu) * 1000 / items,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--weights", help="a CLIP checkpoint (default: seeded random weights)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if not args.weights:
            os.environ["PHANTOSCOPE_MODELS"] = str(folder / "models")
        weights = args.weights or seeded_checkpoint(folder)
        clip_image, clip_text = ClipImageEncoder(weights=weights), ClipTextEncoder(weights=weights)
        efficientnet = EfficientNetLite0Encoder()
        for encoder in (clip_image, clip_text, efficientnet):
            encoder.load()

        jpegs = make_photos(16)
        prepared = {
            encoder.name: [encoder.prepare(data, max_pixels=MAX_PIXELS) for data in jpegs]
            for encoder in (clip_image, efficientnet)
        }
        texts = (SENTENCES * 2)[:16]

        modes: dict[tuple[str, str], Callable[[], object]] = {}
        for encoder in (clip_image, efficientnet):
            modes[(f"{encoder.name} prepare", "-")] = functools.partial(prepare_all, encoder, jpegs)
            for batch in (1, 16):
                crops = prepared[encoder.name][:batch]
                modes[(f"{encoder.name} run", str(batch))] = functools.partial(encoder.run, crops)
        for batch in (1, 16):
            modes[(f"{clip_text.name} run", str(batch))] = functools.partial(
                clip_text.run, texts[:batch]
            )
        for run in modes.values():  # warm-up: first calls allocate
            run()
        timings: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for _ in range(args.repeats):
            for key, run in modes.items():
                items = 16 if key[1] in ("-", "16") else 1
                timings.setdefault(key, []).append(per_item(run, items))

    rows = []
    for (mode, batch), samples in timings.items():
        wall = statistics.median(sample[0] for sample in samples)
        cpu = statistics.median(sample[1] for sample in samples)
        rows.append([mode, str(batch), f"{wall:.1f}", f"{cpu:.1f}"])
    print(f"{os.cpu_count()} CPUs, {args.repeats} passes")
    print_table(["step", "batch", "wall ms/item", "CPU ms/item"], rows)


if __name__ == "__main__":
    main()
