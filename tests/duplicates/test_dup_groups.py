"""Pairs into groups, and the copy to keep."""

from __future__ import annotations

import pytest

from phantoscope.duplicates.groups import UnionFind, group_copies, group_pairs
from phantoscope.duplicates.keep import Copy, suggest_keep


def test_union_find_joins_chains_and_leaves_singletons_out():
    assert group_pairs([(5, 6), (6, 7), (1, 2), (9, 9)]) == [[1, 2], [5, 6, 7]]
    sets = UnionFind()
    for entity in range(1, 20_000):  # a long chain: no recursion limit
        sets.union(entity - 1, entity)
    assert sets.find(19_999) == 0 and len(sets.groups()[0]) == 20_000


def copies_of(members: list[int]) -> list[tuple[int, int, bool, float]]:
    return [(first, second, True, 0.01) for index, first in enumerate(members)
            for second in members[index + 1:]]


def test_one_false_match_does_not_join_two_groups_of_copies():
    left, right = [1, 2, 3, 4], [10, 11, 12]
    across = [(first, second, False, 0.3) for first in left for second in right]
    across[0] = (1, 10, True, 0.39)  # one pair wrongly taken for copies
    judged = copies_of(left) + copies_of(right) + across
    assert group_copies(judged) == [left, right]
    # union-find over the copy pairs alone would have made one group
    assert group_pairs((a, b) for a, b, copy, _ in judged if copy) == [left + right]


def test_copies_judged_only_in_part_still_join():
    # 5 is a copy of 1 and 2, judged none of 3 (an alignment astray), not judged against 4
    # (no candidate): two of three say copy, so it joins
    judged = [*copies_of([1, 2, 3, 4]), (1, 5, True, 0.1), (2, 5, True, 0.1),
              (3, 5, False, 0.6)]
    assert group_copies(judged) == [[1, 2, 3, 4, 5]]


def copy(entity: int, width: int = 1000, height: int = 800, fmt: str = "JPEG",
         quality: int | None = 90, size: int = 200_000, taken_at: str | None = None) -> Copy:
    return Copy(entity, width, height, fmt, quality, fmt == "PNG", size, taken_at)


def test_the_largest_copy_is_kept_and_said_why():
    kept, reason = suggest_keep([copy(1, 800, 600), copy(2, 4000, 3000), copy(3, 2000, 1500)])
    assert kept == 2
    assert reason == "the largest: 4000x3000 (the next 2000x1500)"


def test_at_one_size_the_least_compressed_is_kept():
    kept, reason = suggest_keep([copy(1, quality=75), copy(2, fmt="PNG", quality=None),
                                 copy(3, quality=95)])
    assert kept == 2 and "PNG (lossless)" in reason and "JPEG quality 95" in reason
    kept, reason = suggest_keep([copy(1, quality=75), copy(3, quality=95)])
    assert kept == 3 and "JPEG quality 95 (the next JPEG quality 75)" in reason


def test_then_the_earliest_taken_then_the_first_stored():
    kept, reason = suggest_keep([copy(1, taken_at="2024-05-02T10:00:00"),
                                 copy(2, taken_at="2024-05-01T10:00:00"), copy(3)])
    assert kept == 2 and "taken first: 2024-05-01T10:00:00" in reason
    kept, reason = suggest_keep([copy(7), copy(4)])
    assert kept == 4 and reason == "alike in size, compression and date: the one stored first"
    with pytest.raises(ValueError):
        suggest_keep([])
