"""How well a ``labels`` filter selects the photos a word names, by the probability from which
a label counts (issue 17: labels as a filter key).

    .venv/bin/python bench/label_filter.py [--thresholds 0 0.05 0.1 0.2 0.3 0.5]

The judged text-query set of `phantoscope eval --text` (photoset.TEXT_QUERIES: 19 package
photos, each as the original and six edits, 133 images) is labelled by the default encoder
(EfficientNet-Lite0, real ImageNet weights, in this process: its top-5 labels). For each
query that names labels (`{"labels": QUERY}` is a valid filter), the filter selects the
images that hold, for every term, a label of a class it names at or above the threshold;
an image is relevant when it is a copy of a photo judged to show the query. Printed per
threshold: precision and recall summed over those queries (pairs of query and image), and
how many queries select nothing. The engine's threshold is filters.LABEL_MIN_SCORE.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from phantoscope.engine.filters import LABEL_MIN_SCORE
from phantoscope.engine.label_words import label_terms
from phantoscope.imaging.codec import decode_image
from phantoscope.photoset import TEXT_QUERIES, build_text_set
from phantoscope.zoo.efficientnet import EfficientNetLite0Encoder

BATCH = 16


def labelled_images(folder: Path) -> list[tuple[str, dict[str, float]]]:
    """(photo name, its labels: class id -> probability) of every image of the text set."""
    written = build_text_set(folder)
    encoder = EfficientNetLite0Encoder()
    encoder.load()
    images = [(photo, path) for photo, paths in written.items() for path in paths]
    found: list[tuple[str, dict[str, float]]] = []
    for start in range(0, len(images), BATCH):
        chunk = images[start:start + BATCH]
        pictures = [decode_image(path.read_bytes(), min_side=encoder.min_image_side)
                    for _, path in chunk]
        for (photo, _), labels in zip(chunk, encoder.encode(pictures).labels, strict=True):
            found.append((photo, dict(labels)))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--thresholds", type=float, nargs="+",
                        default=[0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        images = labelled_images(Path(folder))
    queries = {}
    for query, photos in TEXT_QUERIES.items():
        try:
            queries[query] = (label_terms(query), set(photos))
        except ValueError:
            continue  # names no label: refused as a filter
    print(f"{len(images)} images, {len(queries)} of {len(TEXT_QUERIES)} queries name labels: "
          f"{', '.join(queries)}")
    print(f"{'min probability':>16} {'precision':>10} {'recall':>8} {'selected':>9} "
          f"{'relevant':>9} {'empty queries':>14}")
    for threshold in args.thresholds:
        selected = hits = relevant = empty = 0
        for terms, photos in queries.values():
            chosen = [photo for photo, labels in images
                      if all(any(labels.get(label, -1.0) >= threshold for label in classes)
                             for classes in terms)]
            selected += len(chosen)
            hits += sum(photo in photos for photo in chosen)
            relevant += sum(photo in photos for photo, _ in images)
            empty += not chosen
        precision = hits / selected if selected else float("nan")
        mark = "  <- LABEL_MIN_SCORE" if threshold == LABEL_MIN_SCORE else ""
        print(f"{threshold:>16.2f} {precision:>10.3f} {hits / relevant:>8.3f} {selected:>9} "
              f"{relevant:>9} {empty:>14}{mark}")


if __name__ == "__main__":
    main()
