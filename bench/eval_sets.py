"""Write the labelled evaluation set made from scikit-image's sample photos (offline):
one sub-folder per base photo, holding edited copies of it, for `phantoscope eval`.

    .venv/bin/python bench/eval_sets.py --out DIR [--photos astronaut,coffee,...]
    .venv/bin/python bench/eval_sets.py --out DIR --text   # for `phantoscope eval --text`

With --text: the 19 photos of photoset.TEXT_PHOTOS, each as the original and its six
edits, and DIR/queries.json (the judged text queries of photoset.TEXT_QUERIES).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from phantoscope.photoset import BASE_PHOTOS, VARIANTS, build_photo_set, build_text_set


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder to write the set into")
    parser.add_argument("--photos", default=",".join(BASE_PHOTOS),
                        help="comma-separated scikit-image photo names (one class each)")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help=f"comma-separated edits per photo, of: {', '.join(VARIANTS)}")
    parser.add_argument("--text", action="store_true",
                        help="write the text-query set instead (ignores --photos, --variants)")
    args = parser.parse_args()
    if args.text:
        written = build_text_set(args.out)
    else:
        written = build_photo_set(args.out, args.photos.split(","), args.variants.split(","))
    images = sum(len(paths) for paths in written.values())
    queries = " and queries.json" if args.text else ""
    print(f"wrote {images} images in {len(written)} classes{queries} to {args.out}")


if __name__ == "__main__":
    main()
