"""Retrieval metrics over ranked lists of labels: pure functions, no I/O.

A query is an image of class ``label``; ``ranked`` is the labels of what the search answered,
best first, with the query's own image already removed. An answer is *relevant* when its
label equals ``label``. ``relevant`` (R) is how many relevant images the collection holds for
that query: the images of the same class, minus the query itself.

Ties in score are broken by list order: the metrics see ranks, not scores. Positions past the
end of a list shorter than ``k`` count as not relevant. A query with ``R == 0`` has no
defined recall or average precision; every metric is ``None`` for it, and it is left out of
every mean (see :func:`mean_scores`).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np

Scores = dict[str, float | None]


def _hits(ranked: Sequence[Hashable], label: Hashable, k: int) -> list[bool]:
    if k < 1:
        raise ValueError(f"k must be at least 1, not {k}")
    return [item == label for item in ranked[:k]]


def precision_at_k(ranked: Sequence[Hashable], label: Hashable, k: int) -> float:
    """P@k = (relevant answers among the first k) / k."""
    return sum(_hits(ranked, label, k)) / k


def recall_at_k(
    ranked: Sequence[Hashable], label: Hashable, k: int, relevant: int
) -> float | None:
    """R@k = (relevant answers among the first k) / R; ``None`` when R = 0."""
    if relevant < 1:
        return None
    return sum(_hits(ranked, label, k)) / relevant


def average_precision_at_k(
    ranked: Sequence[Hashable], label: Hashable, k: int, relevant: int
) -> float | None:
    """AP@k = (1 / min(R, k)) * sum over i <= k of P@i * rel_i; ``None`` when R = 0.

    rel_i is 1 when the i-th answer is relevant, else 0. Dividing by min(R, k) rather than R
    makes a perfect top k score 1 even when the class holds more than k other images.
    """
    if relevant < 1:
        return None
    found, total = 0, 0.0
    for rank, hit in enumerate(_hits(ranked, label, k), start=1):
        if hit:
            found += 1
            total += found / rank
    return total / min(relevant, k)


def query_scores(
    ranked: Sequence[Hashable], label: Hashable, relevant: int, ks: Sequence[int]
) -> Scores:
    """``AP@k``, ``recall@k`` and ``precision@k`` of one query, for each k in ``ks``."""
    scores: Scores = {}
    defined = relevant >= 1
    for k in ks:
        scores[f"AP@{k}"] = average_precision_at_k(ranked, label, k, relevant)
        scores[f"recall@{k}"] = recall_at_k(ranked, label, k, relevant)
        scores[f"precision@{k}"] = precision_at_k(ranked, label, k) if defined else None
    return scores


def mean_scores(per_query: Sequence[Mapping[str, float | None]], ks: Sequence[int]) -> Scores:
    """``mAP@k``, ``recall@k`` and ``precision@k``: means over the queries where defined.

    mAP@k is the mean of AP@k. A metric no query defines is ``None``.
    """
    means: Scores = {}
    for k in ks:
        for name, key in ((f"mAP@{k}", f"AP@{k}"), (f"recall@{k}", f"recall@{k}"),
                          (f"precision@{k}", f"precision@{k}")):
            values = [scores[key] for scores in per_query if scores[key] is not None]
            means[name] = float(np.mean(values)) if values else None
    return means


def latency_summary(latencies_ms: Sequence[float]) -> dict[str, float | None]:
    """p50, p95 (linear interpolation between order statistics) and mean, in ms."""
    if not latencies_ms:
        return {"p50": None, "p95": None, "mean": None}
    values = np.asarray(latencies_ms, dtype=float)
    return {
        "p50": float(np.percentile(values, 50)),
        "p95": float(np.percentile(values, 95)),
        "mean": float(values.mean()),
    }
