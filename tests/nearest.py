"""The near-duplicate check shared by encoder tests."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def assert_edits_are_nearest(
    originals: np.ndarray, edits: np.ndarray, names: Sequence[str]
) -> None:
    """Each edit's nearest original is its own, and each original is nearer to its edit than
    to any other original (rows are unit vectors, in the order of ``names``)."""
    edit_to_original = edits @ originals.T
    original_to_original = originals @ originals.T
    np.fill_diagonal(original_to_original, -np.inf)
    for i, name in enumerate(names):
        own = edit_to_original[i, i]
        others = np.delete(edit_to_original[i], i)
        assert own > others.max(), f"{name}: {own:.3f} vs {names[int(np.argmax(others))]}"
        assert own > original_to_original[i].max(), name
