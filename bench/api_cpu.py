"""The API's CPU per imported photo, by how it hands photos to operators and where each
upload's duplicate thumbnail is made (issue 20), on the same files in the same run, at 2.5 MP
and a phone's 12 MP:

- `base64`: base64 `datas` to every operator, as to an original one, and the API decodes each
  upload for its thumbnail (`PHANTOSCOPE_OPERATOR_IMAGE_BYTES=false`,
  `PHANTOSCOPE_OPERATOR_THUMBNAILS=false`);
- `bytes`: the files' bytes (`ExecuteRequest.images`), the API still decoding each upload
  (`PHANTOSCOPE_OPERATOR_THUMBNAILS=false`);
- `thumbnails`: bytes, and the operator answers each image's thumbnail from the image it
  decoded for its model (`ExecuteRequest.thumbnails`; the default): the API decodes nothing.

    .venv/bin/python bench/api_cpu.py [--forms bytes,thumbnails] [--sizes 1920x1280,4032x3024]
                                      [--images 96] [--passes 2]

Each run is a full `phantoscope import` into a fresh `phantoscope up --workers 1`; passes
rotate the order of the forms. The figure is the median over the passes of the API
process's CPU per image (with Milvus Lite in it), and its ratio to the first form's. Beside
it, in this process: the Execute request alone (building and serialising requests of 32 photos,
CPU per image) and the copy descriptor alone (`duplicates.descriptor.describe`, decoding or
given the thumbnail); the operator's CPU per image (it decodes base64 in one form and makes
thumbnails in another) and the import's images/s.
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

from phantoscope.duplicates.descriptor import describe
from phantoscope.imaging.codec import decode_image
from phantoscope.imaging.phash import thumbnail
from phantoscope.operators.proto import omnisearch_pb2 as pb

FORMS = {  # the API's environment in each form
    "base64": {"PHANTOSCOPE_OPERATOR_IMAGE_BYTES": "false",
               "PHANTOSCOPE_OPERATOR_THUMBNAILS": "false"},
    "bytes": {"PHANTOSCOPE_OPERATOR_THUMBNAILS": "false"},
    "thumbnails": {},
}
REQUEST_IMAGES = 32  # the engine's encoder chunk
OPERATOR_MIN_SIDE = 256  # efficientnet-lite0-encoder's min_image_side


def request_cpu_ms(files: list[bytes], form: str, repeats: int = 5) -> float:
    """CPU ms per image to build and serialise Execute requests of ``files`` in ``form``,
    as the engine does (base64 encoding included), best of ``repeats``."""
    best = float("inf")
    for _ in range(repeats):
        started = time.process_time()
        for first in range(0, len(files), REQUEST_IMAGES):
            chunk = files[first:first + REQUEST_IMAGES]
            if form != "base64":
                request = pb.ExecuteRequest(images=chunk, thumbnails=form == "thumbnails")
            else:
                request = pb.ExecuteRequest(
                    datas=[base64.b64encode(f).decode("ascii") for f in chunk])
            request.SerializeToString()
        best = min(best, time.process_time() - started)
    return 1000 * best / len(files)


def describe_cpu_ms(files: list[bytes], form: str, repeats: int = 3) -> float:
    """CPU ms per image of the API's copy descriptor in ``form``: decoding the image, or
    given the operator's thumbnail (made beforehand, not counted), best of ``repeats``."""
    thumbs = [thumbnail(decode_image(data, min_side=OPERATOR_MIN_SIDE)) for data in files]
    best = float("inf")
    for _ in range(repeats):
        started = time.process_time()
        for data, thumb in zip(files, thumbs, strict=True):
            describe(data, thumb=thumb if form == "thumbnails" else None)
        best = min(best, time.process_time() - started)
    return 1000 * best / len(files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--forms", default="bytes,thumbnails",
                        help=f"comma-separated forms, of {', '.join(FORMS)}; the first is the "
                        "baseline")
    parser.add_argument("--sizes", default="1920x1280,4032x3024",
                        help="comma-separated WIDTHxHEIGHT of the JPEGs")
    parser.add_argument("--images", type=int, default=96)
    parser.add_argument("--passes", type=int, default=2)
    args = parser.parse_args()
    forms = args.forms.split(",")
    if not forms or any(form not in FORMS for form in forms):
        parser.error(f"--forms: comma-separated, of {', '.join(FORMS)}")
    first = forms[0]
    rows = []
    for size in args.sizes.split(","):
        width, height = (int(side) for side in size.lower().split("x"))
        photos = phone_photos(args.images, (width, height))
        megabytes = sum(map(len, photos)) / len(photos) / 1e6
        alone = {form: request_cpu_ms(photos, form) for form in forms}
        described = {form: describe_cpu_ms(photos[:16], form) for form in forms}
        runs: dict[str, list[dict[str, float]]] = {form: [] for form in forms}
        with tempfile.TemporaryDirectory(prefix="phantoscope-api-cpu-") as tmp:
            folder = write_photos(Path(tmp) / "photos", photos)[0].parent
            for index in range(args.passes):
                shift = index % len(forms)
                for form in forms[shift:] + forms[:shift]:
                    runs[form].append(import_run(folder, 1, len(photos), env=FORMS[form]))
        api = {form: statistics.median(r["api_ms"] for r in runs[form]) for form in forms}
        rate = {form: statistics.median(r["rate"] for r in runs[form]) for form in forms}
        operators = {form: statistics.median(r["operator_ms"] for r in runs[form])
                     for form in forms}
        label = f"{width}x{height} ({width * height / 1e6:.1f} MP, {megabytes:.2f} MB)"
        for form in forms:
            rows.append([
                f"{label} {form}", f"{api[form]:.1f}",
                " ".join(f"{r['api_ms']:.1f}" for r in runs[form]),
                f"{api[form] / api[first]:.2f}", f"{alone[form]:.2f}",
                f"{described[form]:.2f}", f"{operators[form]:.1f}", f"{rate[form]:.1f}",
            ])
        for form in forms[1:]:
            print(f"{label}: {form} against {first}: the API's CPU {api[first]:.1f} -> "
                  f"{api[form]:.1f} ms an image ({api[form] / api[first]:.2f}x)", flush=True)
    print(f"{args.images} JPEGs a size, `up --workers 1`, {args.passes} passes (median; each "
          "pass after it)")
    print_table(["photos, form", "API CPU ms/img", "passes", f"x {first}",
                 "request alone ms/img", "describe alone ms/img", "operator CPU ms/img",
                 "images/s"], rows)


if __name__ == "__main__":
    main()
