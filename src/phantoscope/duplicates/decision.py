"""When two images are copies, and when similar shots: the thresholds, as measured with
``phantoscope eval --duplicates`` on the package-photo set (README, "Duplicates").

A pair is first a *candidate* when either cheap descriptor says it may be a copy: its
perceptual hashes (the nearest of the eight orientations) within CANDIDATE_HASH_BITS, or
its encoder vectors within CANDIDATE_COSINE. A candidate is a *copy* when thumbnail B, laid
over A by :func:`~phantoscope.duplicates.registration.align`, covers nearly the same picture
(overlap at least COPY_MIN_OVERLAP: a crop of a few percent, not a second framing) and
matches it everywhere (the worst block's residual within COPY_MAX_WORST_BLOCK: not a second
shot, whose near and far parts shift against each other). Two images are *similar* when their
encoder vectors are within the encoder's similar-shot cosine (:func:`similar_min_cosine`),
or when they are copies.
"""

from __future__ import annotations

import numpy as np

from phantoscope.duplicates.registration import Alignment

# Candidates: 99.4 % of copy pairs, and no pair of distinct photos by hash alone (at 12
# bits, 5 are). The encoder alone misses copies turned by 90 degrees (cosine 0.46-0.96).
CANDIDATE_HASH_BITS = 10
CANDIDATE_COSINE = 0.70
# Halfway between the largest overlap of a near-shot (a window of 85 % of each side: 0.72)
# and the smallest of a copy (a crop of 5 % off each side: 0.81).
COPY_MIN_OVERLAP = 0.765
# The first pair of different shots passes at 0.42 (the stereo motorcycle, contrast
# raised), hundreds at 0.5; 0.38 leaves a margin at 0.5 % of recall.
COPY_MAX_WORST_BLOCK = 0.38
# Similar shots: for each built-in encoder measured, the lowest cosine at which no pair of
# different scenes is similar (EfficientNet-Lite0 at 0.55: one pair; MobileNetV2 at 0.65:
# 92). Each encoder's cosines run on its own scale; one not measured gets the highest.
SIMILAR_MIN_COSINE_BY_ENCODER = {
    "efficientnet-lite0-encoder": 0.60,
    "mobilenet-v2-encoder": 0.70,
}
SIMILAR_MIN_COSINE = SIMILAR_MIN_COSINE_BY_ENCODER["efficientnet-lite0-encoder"]


def similar_min_cosine(encoder: str) -> float:
    """The similar-shot cosine for vectors of ``encoder`` (an operator name; its int8
    copy shares it)."""
    return SIMILAR_MIN_COSINE_BY_ENCODER.get(encoder.removesuffix("-int8"),
                                             max(SIMILAR_MIN_COSINE_BY_ENCODER.values()))


def is_candidate(hash_bits: np.ndarray, cosine: np.ndarray) -> np.ndarray:
    """Pairs worth aligning: near by hash or by encoder (NaN cosine: not known)."""
    near_by_vector = np.nan_to_num(np.asarray(cosine, dtype=np.float64), nan=-1.0)
    return (np.asarray(hash_bits) <= CANDIDATE_HASH_BITS) | (near_by_vector >= CANDIDATE_COSINE)


def are_copies(
    alignment: Alignment,
    *,
    min_overlap: float = COPY_MIN_OVERLAP,
    max_worst_block: float = COPY_MAX_WORST_BLOCK,
) -> np.ndarray:
    """Aligned candidate pairs that are copies of one picture."""
    return (
        alignment.aligned
        & (alignment.overlap >= min_overlap)
        & (alignment.worst_block <= max_worst_block)
    )


def are_similar(cosine: np.ndarray, copies: np.ndarray,
                min_cosine: float = SIMILAR_MIN_COSINE) -> np.ndarray:
    """Pairs that show the same scene: near by encoder, or copies."""
    near = np.nan_to_num(np.asarray(cosine, dtype=np.float64), nan=-1.0) >= min_cosine
    return near | np.asarray(copies, dtype=bool)
