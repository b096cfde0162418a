"""Labels an encoder gives with its vectors: class ids with probabilities, best first.

An encoder whose model also classifies (a CNN with its ImageNet-1k head) names its label
vocabulary in its ``labels`` attribute (:data:`IMAGENET_1K`, which ``Identity`` answers) and
returns, from :meth:`~phantoscope.operators.base.Encoder.encode`, each image's top labels
from the same model call as its vector. :func:`top_labels` turns a batch of class
probabilities into those lists.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from importlib import resources

import numpy as np

Label = tuple[str, float]
"""One label: a class id of the encoder's vocabulary and its probability in [0, 1]."""

IMAGENET_1K = "imagenet-1k"
"""The ImageNet-1k classes; their ids are WordNet 3.0 noun synsets such as ``n02123045``."""

TOP_LABELS = 5
"""How many labels the built-in encoders give an image."""


@cache
def imagenet_class_ids() -> tuple[str, ...]:
    """The 1,000 ImageNet-1k class ids (``n01440764``...), in the order of the classifier's
    outputs (index 281 is ``n02123045``, tabby cat)."""
    text = resources.files("phantoscope.assets").joinpath("imagenet_wnids.txt").read_text()
    return tuple(text.split())


def top_labels(
    probabilities: np.ndarray, class_ids: Sequence[str], k: int = TOP_LABELS
) -> list[list[Label]]:
    """For each row of an (N, classes) array of probabilities, its ``k`` most probable
    classes as ``(class id, probability)``, best first."""
    probabilities = np.asarray(probabilities, dtype=np.float32)
    if probabilities.ndim != 2 or probabilities.shape[1] != len(class_ids) or not class_ids:
        raise ValueError(
            f"probabilities of shape {probabilities.shape} do not fit {len(class_ids)} classes"
        )
    if k < 1:
        raise ValueError(f"k must be at least 1, not {k}")
    k = min(k, len(class_ids))
    best = np.argpartition(-probabilities, k - 1, axis=1)[:, :k]
    scores = np.take_along_axis(probabilities, best, axis=1)
    order = np.argsort(-scores, axis=1, kind="stable")
    best = np.take_along_axis(best, order, axis=1)
    scores = np.take_along_axis(scores, order, axis=1)
    return [
        [(class_ids[index], float(score)) for index, score in zip(row, row_scores, strict=True)]
        for row, row_scores in zip(best.tolist(), scores.tolist(), strict=True)
    ]


def checked_labels(
    labels: Sequence[Sequence[tuple[str, float]]] | None, count: int, vocabulary: str
) -> list[list[Label]] | None:
    """An encoder's labels for ``count`` images as plain lists, or a ValueError saying how
    they break the contract: present exactly when the encoder names a ``vocabulary``, one
    list per image, scores in [0, 1], best first."""
    if not vocabulary:
        if labels is not None:
            raise ValueError("encode() returned labels but the encoder names no label "
                             "vocabulary: set its `labels` attribute")
        return None
    if labels is None:
        raise ValueError(f"the encoder answers {vocabulary!r} labels but encode() returned none")
    if len(labels) != count:
        raise ValueError(f"encode() returned labels for {len(labels)} images; expected {count}")
    checked = [[(str(class_id), float(score)) for class_id, score in image] for image in labels]
    for image in checked:
        scores = [score for _, score in image]
        if not all(0.0 <= score <= 1.0 for score in scores):
            raise ValueError(f"label scores must lie in [0, 1]: {image}")
        if scores != sorted(scores, reverse=True):
            raise ValueError(f"labels must come best first: {image}")
    return checked
