"""What sending image bytes to operators (`ExecuteRequest.images`, issue 20) saves the API:
its CPU per imported photo with bytes (the default) against base64 `datas` for every operator
(`PHANTOSCOPE_OPERATOR_IMAGE_BYTES=false`, as the engine talks to an original operator), on
the same files in the same run, at 2.5 MP and a phone's 12 MP.

    .venv/bin/python bench/api_cpu.py [--sizes 1920x1280,4032x3024] [--images 96] [--passes 2]

Each run is a full `phantoscope import` into a fresh `phantoscope up --workers 1`; passes
alternate the order of the two forms. The figure is the median over the passes of the API
process's CPU per image (with Milvus Lite in it). Beside it, the request alone in this
process (building and serialising Execute requests of 32 photos each way, CPU per image), the
operator's CPU per image (it decodes base64 in the one form) and the import's images/s.
"""

from __future__ import annotations

import argparse
import base64
import statistics
import tempfile
import time
from pathlib import Path

from common import print_table, write_photos
from cores import import_run, phone_photos

from phantoscope.operators.proto import omnisearch_pb2 as pb

FORMS = {"base64": "false", "bytes": "true"}  # PHANTOSCOPE_OPERATOR_IMAGE_BYTES
REQUEST_IMAGES = 32  # the engine's encoder chunk


def request_cpu_ms(files: list[bytes], form: str, repeats: int = 5) -> float:
    """CPU ms per image to build and serialise Execute requests of ``files`` in ``form``,
    as the engine does (base64 encoding included), best of ``repeats``."""
    best = float("inf")
    for _ in range(repeats):
        started = time.process_time()
        for first in range(0, len(files), REQUEST_IMAGES):
            chunk = files[first:first + REQUEST_IMAGES]
            if form == "bytes":
                request = pb.ExecuteRequest(images=chunk)
            else:
                request = pb.ExecuteRequest(
                    datas=[base64.b64encode(f).decode("ascii") for f in chunk])
            request.SerializeToString()
        best = min(best, time.process_time() - started)
    return 1000 * best / len(files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1920x1280,4032x3024",
                        help="comma-separated WIDTHxHEIGHT of the JPEGs")
    parser.add_argument("--images", type=int, default=96)
    parser.add_argument("--passes", type=int, default=2)
    args = parser.parse_args()
    rows = []
    for size in args.sizes.split(","):
        width, height = (int(side) for side in size.lower().split("x"))
        photos = phone_photos(args.images, (width, height))
        megabytes = sum(map(len, photos)) / len(photos) / 1e6
        alone = {form: request_cpu_ms(photos, form) for form in FORMS}
        runs: dict[str, list[dict[str, float]]] = {form: [] for form in FORMS}
        with tempfile.TemporaryDirectory(prefix="phantoscope-api-cpu-") as tmp:
            folder = write_photos(Path(tmp) / "photos", photos)[0].parent
            for index in range(args.passes):
                order = list(FORMS) if index % 2 == 0 else list(FORMS)[::-1]
                for form in order:
                    env = {"PHANTOSCOPE_OPERATOR_IMAGE_BYTES": FORMS[form]}
                    runs[form].append(import_run(folder, 1, len(photos), env))
        api = {form: statistics.median(r["api_ms"] for r in runs[form]) for form in FORMS}
        rate = {form: statistics.median(r["rate"] for r in runs[form]) for form in FORMS}
        operators = {form: statistics.median(r["operator_ms"] for r in runs[form])
                     for form in FORMS}
        label = f"{width}x{height} ({width * height / 1e6:.1f} MP, {megabytes:.2f} MB)"
        for form in FORMS:
            rows.append([
                f"{label} {form}", f"{api[form]:.1f}",
                " ".join(f"{r['api_ms']:.1f}" for r in runs[form]),
                f"{api[form] / api['base64']:.2f}", f"{alone[form]:.2f}",
                f"{operators[form]:.1f}", f"{rate[form]:.1f}",
            ])
        print(f"{label}: bytes save the API {api['base64'] - api['bytes']:.1f} ms of CPU an "
              f"image ({api['bytes'] / api['base64']:.2f}x); the request alone "
              f"{alone['base64'] - alone['bytes']:.2f} ms", flush=True)
    print(f"{args.images} JPEGs a size, `up --workers 1`, {args.passes} passes (median; each "
          "pass after it)")
    print_table(["photos, form", "API CPU ms/img", "passes", "x base64",
                 "request alone ms/img", "operator CPU ms/img", "images/s"], rows)


if __name__ == "__main__":
    main()
