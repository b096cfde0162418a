"""Pairs into groups: images joined by copy pairs are one copy group, by similar pairs one
group of similar shots (union-find, so a chain of pairs makes one group)."""

from __future__ import annotations

from collections.abc import Iterable


class UnionFind:
    """Disjoint sets of ids, joined pair by pair."""

    def __init__(self) -> None:
        self._parent: dict[int, int] = {}

    def find(self, entity: int) -> int:
        root = self._parent.setdefault(entity, entity)
        while self._parent[root] != root:
            root = self._parent[root]
        while entity != root:  # path compression: point the chain at its root
            self._parent[entity], entity = root, self._parent[entity]
        return root

    def union(self, first: int, second: int) -> None:
        one, other = self.find(first), self.find(second)
        if one != other:
            self._parent[max(one, other)] = min(one, other)

    def groups(self) -> list[list[int]]:
        """Sets of two or more, each sorted, ordered by their smallest id."""
        members: dict[int, list[int]] = {}
        for entity in self._parent:
            members.setdefault(self.find(entity), []).append(entity)
        return sorted((sorted(group) for group in members.values() if len(group) > 1),
                      key=lambda group: group[0])


def group_pairs(pairs: Iterable[tuple[int, int]]) -> list[list[int]]:
    """The groups the pairs make."""
    sets = UnionFind()
    for first, second in pairs:
        sets.union(first, second)
    return sets.groups()


def group_copies(judged: Iterable[tuple[int, int, bool, float]]) -> list[list[int]]:
    """Copy groups from judged pairs ``(first, second, copy, residual)``. Copy pairs join
    their groups best match (lowest residual) first, and only when at least as many of the
    judged pairs between the two groups are copies as are not: one false match between
    two groups of copies (two shots of a scene, each copied ten times) does not make them
    one group, as union-find alone would."""
    verdicts: dict[int, dict[int, bool]] = {}
    copies: list[tuple[float, int, int]] = []
    for first, second, copy, residual in judged:
        verdicts.setdefault(first, {})[second] = copy
        verdicts.setdefault(second, {})[first] = copy
        if copy:
            copies.append((residual, first, second))
    sets = UnionFind()
    members: dict[int, list[int]] = {}
    for _, first, second in sorted(copies):
        one, other = sets.find(first), sets.find(second)
        if one == other:
            continue
        group, across = members.get(one, [one]), members.get(other, [other])
        if len(group) > len(across):
            group, across, one, other = across, group, other, one
        agree = disagree = 0
        for entity in group:
            for neighbour, copy in verdicts[entity].items():
                if sets.find(neighbour) == other:
                    agree += copy
                    disagree += not copy
        if agree >= disagree:
            members.pop(one, None)
            members.pop(other, None)
            sets.union(one, other)
            members[sets.find(one)] = group + across
    return sets.groups()
