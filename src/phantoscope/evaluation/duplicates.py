"""How well copies and similar shots are found, pair by pair, on a labelled folder.

``FOLDER/duplicates.json`` says which images are copies of one picture and which show one
scene (``bench/eval_sets.py --duplicates`` writes such a folder from package photos). Every
pair of images is judged the way the server judges an upload against what is stored
(:mod:`phantoscope.duplicates`), in this process: there is no duplicates API to measure yet,
and a curve needs each pair's figures, which an API answering groups would not show. The
encoder's vectors come from the caller (``encode``), the pipeline's encoder run here.

Scored pairs: for ``copies``, a pair within one copy group is positive and every other pair
negative, near-shots of the same scene included; for ``similar``, pairs within a copy group
or a scene group are positive.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from phantoscope.duplicates.decision import (
    CANDIDATE_COSINE,
    CANDIDATE_HASH_BITS,
    COPY_MAX_WORST_BLOCK,
    COPY_MIN_OVERLAP,
    SIMILAR_MIN_COSINE,
    are_copies,
    are_similar,
    is_candidate,
    similar_min_cosine,
)
from phantoscope.duplicates.descriptor import ImageDescriptor, describe
from phantoscope.duplicates.finder import HashIndex
from phantoscope.duplicates.groups import group_copies, group_pairs
from phantoscope.duplicates.registration import ALIGN_BATCH, Alignment, align
from phantoscope.evaluation.dataset import DatasetError, read_manifest

DEFAULT_ENCODER = "efficientnet-lite0-encoder"  # the thresholds were chosen on its vectors
MANIFEST = "duplicates.json"  # photoset's duplicate_set writes it beside the images

Encode = Callable[[list[bytes]], np.ndarray]
"""Image file bytes -> their encoder vectors, unit length, one row each."""
Thumbnail = Callable[[bytes], np.ndarray]
"""Image file bytes -> the picture's 64 x 64 grey thumbnail, as the server gets it."""
Progress = Callable[[str], None]

SIMILAR_CURVE = tuple(round(value, 2) for value in np.arange(0.30, 0.96, 0.05))
HASH_CURVE = tuple(range(0, 33, 2))
COSINE_CURVE = tuple(round(value, 2) for value in np.arange(0.70, 1.0, 0.02))
WORST_BLOCK_CURVE = (0.1, 0.2, 0.3, 0.35, COPY_MAX_WORST_BLOCK, 0.4, 0.42, 0.45, 0.5, 0.6, 1.0)
OVERLAP_CURVE = (0.65, 0.70, 0.72, 0.74, COPY_MIN_OVERLAP, 0.78, 0.80, 0.85)


@dataclass(frozen=True)
class DuplicateTruth:
    """A labelled folder: image paths (relative), copy groups and scene groups."""

    images: list[str]
    copies: list[list[str]]
    similar: list[list[str]]


def _groups(body: dict[str, Any], key: str, path: Path, known: set[str]) -> list[list[str]]:
    groups = body.get(key, [])
    if not isinstance(groups, list) or not all(
        isinstance(group, list) and all(isinstance(item, str) for item in group)
        for group in groups
    ):
        raise DatasetError(f"{path}: {key!r} must be a list of lists of image paths")
    unknown = sorted({item for group in groups for item in group} - known)
    if unknown:
        raise DatasetError(f"{path}: {key!r} names images that are not in 'images' or not "
                           f"in the folder: {', '.join(unknown[:5])}")
    return groups


def load_truth(folder: Path) -> DuplicateTruth:
    """Read ``folder/duplicates.json``: ``{"images": [...], "copies": [[...], ...],
    "similar": [[...], ...]}``, paths relative to ``folder``. Raises
    :class:`~phantoscope.evaluation.dataset.DatasetError` when it is missing or wrong."""
    path = folder / MANIFEST
    body = read_manifest(
        path,
        "it lists the images and which are copies or similar "
        "(bench/eval_sets.py --duplicates writes a set with one)",
    )
    images = body.get("images") if isinstance(body, dict) else None
    if not isinstance(images, list) or len(images) < 2 or not all(
        isinstance(item, str) for item in images
    ):
        raise DatasetError(f"{path}: 'images' must list two image paths or more")
    missing = [item for item in images if not (folder / item).is_file()]
    if missing:
        raise DatasetError(f"{path}: {len(missing)} listed images are not in {folder}, "
                           f"e.g. {missing[0]}")
    known = set(images)
    return DuplicateTruth(images, _groups(body, "copies", path, known),
                          _groups(body, "similar", path, known))


@dataclass(frozen=True)
class Scores:
    """Pair counts and what they give."""

    true_positives: int
    false_positives: int
    false_negatives: int

    @property
    def precision(self) -> float | None:
        found = self.true_positives + self.false_positives
        return self.true_positives / found if found else None

    @property
    def recall(self) -> float | None:
        wanted = self.true_positives + self.false_negatives
        return self.true_positives / wanted if wanted else None

    def to_json(self) -> dict[str, Any]:
        return {
            "precision": _rounded(self.precision), "recall": _rounded(self.recall),
            "true_positives": self.true_positives, "false_positives": self.false_positives,
            "false_negatives": self.false_negatives,
        }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def score(predicted: np.ndarray, truth: np.ndarray) -> Scores:
    predicted, truth = np.asarray(predicted, dtype=bool), np.asarray(truth, dtype=bool)
    return Scores(int((predicted & truth).sum()), int((predicted & ~truth).sum()),
                  int((~predicted & truth).sum()))


@dataclass
class DuplicateRun:
    """Everything measured on one folder."""

    images: list[str]
    first: np.ndarray  # (pairs,) index of each pair's first image, pairs i < j
    second: np.ndarray
    copy_truth: np.ndarray
    similar_truth: np.ndarray
    hash_bits: np.ndarray
    cosine: np.ndarray
    same_bytes: np.ndarray
    candidate: np.ndarray
    alignment: Alignment  # of the candidate pairs, in their order
    similar_min_cosine: float = SIMILAR_MIN_COSINE  # the encoder's chosen point
    seconds: dict[str, float] = field(default_factory=dict)

    def copies(self, **bounds: float) -> np.ndarray:
        """The copy verdict of every pair (False where not a candidate)."""
        out = np.zeros(len(self.first), dtype=bool)
        out[self.candidate] = are_copies(self.alignment, **bounds)
        return out

    def similar(self, min_cosine: float | None = None) -> np.ndarray:
        chosen = self.similar_min_cosine if min_cosine is None else min_cosine
        return are_similar(self.cosine, self.copies(), chosen)

    def _same_group(self, groups: list[list[int]]) -> np.ndarray:
        label = np.arange(len(self.images))
        for number, members in enumerate(groups):
            label[members] = len(self.images) + number
        return label[self.first] == label[self.second]

    def grouped_copies(self) -> np.ndarray:
        """Which pairs share a copy group once the judged pairs are linked
        (:func:`~phantoscope.duplicates.groups.group_copies`)."""
        judged = zip(self.first[self.candidate].tolist(), self.second[self.candidate].tolist(),
                     are_copies(self.alignment).tolist(), self.alignment.residual.tolist(),
                     strict=True)
        return self._same_group(group_copies(judged))

    def grouped_similar(self) -> np.ndarray:
        """Which pairs share a group of similar shots (union-find over similar pairs)."""
        similar = self.similar()
        return self._same_group(group_pairs(zip(self.first[similar].tolist(),
                                                self.second[similar].tolist(), strict=True)))

    def by_edit(self, verdicts: np.ndarray) -> dict[str, dict[str, Any]]:
        """Recall of copy pairs by the file name (less its suffix) of either image: the edit
        that made it, in sets bench/eval_sets.py writes."""
        found: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for first, second, hit in zip(self.first[self.copy_truth], self.second[self.copy_truth],
                                      verdicts[self.copy_truth], strict=True):
            for image in {self.images[first], self.images[second]}:
                counts = found[Path(image).stem]
                counts[0] += int(hit)
                counts[1] += 1
        return {edit: {"recall": round(hits / total, 4), "pairs": total}
                for edit, (hits, total) in sorted(found.items())}

    def to_json(self) -> dict[str, Any]:
        copies, similar = self.copies(), self.similar()
        return {
            "images": len(self.images),
            "pairs": len(self.first),
            "copy_pairs": int(self.copy_truth.sum()),
            "similar_pairs": int(self.similar_truth.sum()),
            "candidates": int(self.candidate.sum()),
            "seconds": {stage: round(value, 3) for stage, value in self.seconds.items()},
            "thresholds": {
                "candidate_hash_bits": CANDIDATE_HASH_BITS,
                "candidate_cosine": CANDIDATE_COSINE,
                "copy_min_overlap": COPY_MIN_OVERLAP,
                "copy_max_worst_block": COPY_MAX_WORST_BLOCK,
                "similar_min_cosine": self.similar_min_cosine,
            },
            "copies": {
                "pairs": score(copies, self.copy_truth).to_json(),
                "grouped": score(self.grouped_copies(), self.copy_truth).to_json(),
                "same_bytes_only": score(self.same_bytes, self.copy_truth).to_json(),
                "by_edit": self.by_edit(copies),
                "curve_worst_block": [
                    {"max_worst_block": bound, **score(self.copies(max_worst_block=bound),
                                                       self.copy_truth).to_json()}
                    for bound in WORST_BLOCK_CURVE],
                "curve_overlap": [
                    {"min_overlap": overlap, **score(self.copies(min_overlap=overlap),
                                                     self.copy_truth).to_json()}
                    for overlap in OVERLAP_CURVE],
                "hash_alone": [{"max_bits": bits, **score(self.hash_bits <= bits,
                                                          self.copy_truth).to_json()}
                               for bits in HASH_CURVE],
                "encoder_alone": [{"min_cosine": value, **score(self.cosine >= value,
                                                                self.copy_truth).to_json()}
                                  for value in COSINE_CURVE],
            },
            "similar": {
                "pairs": score(similar, self.similar_truth).to_json(),
                "grouped": score(self.grouped_similar(), self.similar_truth).to_json(),
                "curve": [{"min_cosine": value, **score(self.similar(value),
                                                        self.similar_truth).to_json()}
                          for value in SIMILAR_CURVE],
            },
        }


def _truth_pairs(images: Sequence[str], groups: Sequence[Sequence[str]],
                 first: np.ndarray, second: np.ndarray) -> np.ndarray:
    label = np.arange(len(images))
    where = {image: index for index, image in enumerate(images)}
    for number, group in enumerate(groups):
        label[[where[image] for image in group]] = len(images) + number
    return label[first] == label[second]


def evaluate_duplicates(folder: Path, truth: DuplicateTruth, encode: Encode, *,
                        encoder: str = DEFAULT_ENCODER, batch: int = 16,
                        thumbnail: Thumbnail | None = None,
                        progress: Progress = lambda _: None) -> DuplicateRun:
    """Describe and encode every image of ``truth``, judge every pair, keep the figures.
    ``encoder`` names the operator behind ``encode``: its similar-shot cosine is the chosen
    point. ``thumbnail``: each picture's thumbnail made the way the server gets it from the
    encoder (:meth:`~phantoscope.operators.base.Operator.prepare_with_thumbnail`); None:
    made by :func:`describe`, as the API does for an encoder that gives none."""
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    descriptors: list[ImageDescriptor] = []
    vectors: list[np.ndarray] = []
    for start in range(0, len(truth.images), batch):
        chunk = [(folder / image).read_bytes() for image in truth.images[start:start + batch]]
        descriptors += [describe(data, thumb=None if thumbnail is None else thumbnail(data))
                        for data in chunk]
        vectors.append(np.asarray(encode(chunk), dtype=np.float32))
        progress(f"described and encoded {len(descriptors)}/{len(truth.images)}")
    seconds["describe_and_encode"] = time.perf_counter() - started

    clock = time.perf_counter()
    matrix = np.concatenate(vectors)
    first, second = np.triu_indices(len(descriptors), 1)
    cosine = np.sum(matrix[first] * matrix[second], axis=1).astype(np.float64)
    index = HashIndex()
    index.add(range(len(descriptors)), np.array([item.orientation_hashes
                                                 for item in descriptors], dtype=np.uint64))
    hash_bits = np.concatenate([
        index.distances(item.orientation_hashes, range(number + 1, len(descriptors)))
        for number, item in enumerate(descriptors)
    ]).astype(np.int64)
    digests = np.array([item.sha256 for item in descriptors])
    candidate = is_candidate(hash_bits, cosine)
    seconds["compare"] = time.perf_counter() - clock

    clock = time.perf_counter()
    thumbs = np.stack([item.pixels for item in descriptors])
    pairs = np.nonzero(candidate)[0]
    parts = []
    for start in range(0, len(pairs), ALIGN_BATCH):
        chunk = pairs[start:start + ALIGN_BATCH]
        parts.append(align(thumbs[first[chunk]], thumbs[second[chunk]]))
        progress(f"aligned {min(start + ALIGN_BATCH, len(pairs))}/{len(pairs)} candidate pairs")
    alignment = Alignment.joined(parts)
    seconds["align"] = time.perf_counter() - clock
    return DuplicateRun(
        images=list(truth.images), first=first, second=second,
        copy_truth=_truth_pairs(truth.images, truth.copies, first, second),
        similar_truth=(_truth_pairs(truth.images, truth.copies, first, second)
                       | _truth_pairs(truth.images, truth.similar, first, second)),
        hash_bits=hash_bits, cosine=cosine, same_bytes=digests[first] == digests[second],
        candidate=candidate, alignment=alignment,
        similar_min_cosine=similar_min_cosine(encoder),
        seconds=seconds,
    )
