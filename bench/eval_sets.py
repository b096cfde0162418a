"""Write the labelled evaluation set made from scikit-image's sample photos (offline):
one sub-folder per base photo, holding edited copies of it, for `phantoscope eval`.

    .venv/bin/python bench/eval_sets.py --out DIR [--photos astronaut,coffee,...]
    .venv/bin/python bench/eval_sets.py --out DIR --text   # for `phantoscope eval --text`
    .venv/bin/python bench/eval_sets.py --out DIR --duplicates   # `eval --duplicates`

With --text: the 19 photos of photoset.TEXT_PHOTOS, each as the original and its six
edits, and DIR/queries.json (the judged text queries of photoset.TEXT_QUERIES).
With --duplicates: duplicate_set's photos, each with its copies (and, for its scenes,
near-shots), and DIR/duplicates.json (which are copies, which show one scene).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from phantoscope.duplicate_set import build_duplicate_set
from phantoscope.photoset import BASE_PHOTOS, VARIANTS, build_photo_set, build_text_set


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder to write the set into")
    parser.add_argument("--photos",
                        help="comma-separated scikit-image photo names (one class each; "
                        f"default {','.join(BASE_PHOTOS)}); with --duplicates, the photos "
                        "to copy (default all of duplicate_set.COPIED_PHOTOS, and its "
                        "distinct photos)")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help=f"comma-separated edits per photo, of: {', '.join(VARIANTS)}")
    parser.add_argument("--text", action="store_true",
                        help="write the text-query set instead (ignores --photos, --variants)")
    parser.add_argument("--duplicates", action="store_true",
                        help="write the duplicate set instead (ignores --variants)")
    args = parser.parse_args()
    if args.duplicates:
        truth = (build_duplicate_set(args.out, photos=args.photos.split(","), distinct=())
                 if args.photos else build_duplicate_set(args.out))
        print(f"wrote {len(truth.images)} images, {len(truth.copies)} copy groups and "
              f"{len(truth.similar)} scene groups, and duplicates.json, to {args.out}")
        return
    if args.text:
        written = build_text_set(args.out)
    else:
        photos = args.photos.split(",") if args.photos else BASE_PHOTOS
        written = build_photo_set(args.out, photos, args.variants.split(","))
    images = sum(len(paths) for paths in written.values())
    queries = " and queries.json" if args.text else ""
    print(f"wrote {images} images in {len(written)} classes{queries} to {args.out}")


if __name__ == "__main__":
    main()
