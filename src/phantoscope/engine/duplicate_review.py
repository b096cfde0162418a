"""The duplicates of an application as a user reviews them: groups of copies or of similar
shots, each with the copy to keep and why, and the decisions that settle them (delete some,
keep the rest; or dismiss: "these are not duplicates").

A group's id names its kind and members (``copies-`` or ``similar-`` and a hash of the
sorted ids): it stays while the group does, and changes when its membership does. A pair of
entities settled by a decision (both among one decision's members) joins no group of that
kind again; a new copy of a kept entity pairs with it afresh, making a new group.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from phantoscope.duplicates.descriptor import LOSSLESS_FORMATS
from phantoscope.duplicates.finder import Pair
from phantoscope.duplicates.groups import group_copies, group_pairs
from phantoscope.duplicates.keep import Copy, suggest_keep
from phantoscope.engine.boundary import entry_point
from phantoscope.engine.catalog import ApplicationPlan, application_plan
from phantoscope.engine.context import Stores
from phantoscope.engine.duplicate_index import synced
from phantoscope.engine.duplicate_intake import copy_score
from phantoscope.engine.entities import INT64_MAX, delete_stored
from phantoscope.engine.errors import BadRequestError, ConflictError, NotFoundError
from phantoscope.engine.model import Entity
from phantoscope.engine.rows import entity_of
from phantoscope.storage.duplicate_records import (
    DuplicateRecords,
    EntitiesGoneError,
    StoredDescriptor,
)
from phantoscope.storage.duplicate_rows import DecisionRow
from phantoscope.storage.meta import EntityRow

log = logging.getLogger(__name__)
KINDS = ("copies", "similar")
MAX_NUM = 100


@dataclass(frozen=True)
class Member:
    """One entity of a group: how close it is to the copy to keep, and what the suggestion
    weighed."""

    entity: Entity
    score: float
    width: int
    height: int
    format: str
    quality: int | None


@dataclass(frozen=True)
class Group:
    id: str
    kind: str
    members: tuple[Member, ...]
    keep: int
    reason: str


@dataclass(frozen=True)
class GroupPage:
    kind: str
    groups: tuple[Group, ...]
    total: int
    page: int
    num: int


@dataclass(frozen=True)
class Resolution:
    group: str
    action: str  # resolved | dismissed
    kept: tuple[int, ...]
    deleted: tuple[Entity, ...]


def group_id(kind: str, members: Sequence[int]) -> str:
    digest = hashlib.sha256(",".join(str(each) for each in sorted(members)).encode())
    return f"{kind}-{digest.hexdigest()[:16]}"


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise BadRequestError("INVALID_KIND", f"kind must be one of {', '.join(KINDS)}, "
                                              f"not {kind!r}")


def _groups(stores: Stores, plan: ApplicationPlan, kind: str
            ) -> tuple[dict[str, list[int]], dict[tuple[int, int], Pair]]:
    """The application's unsettled groups of ``kind`` by id, by smallest member, and the
    judged pairs."""
    index = synced(stores, plan)
    with index.lock:
        pairs = dict(index.pairs or {})
    settled: dict[int, set[int]] = defaultdict(set)  # decision numbers by entity
    for number, decision in enumerate(DuplicateRecords(stores.meta).decisions(
            plan.application.name, kind)):
        for entity in decision.members:
            settled[int(entity)].add(number)
    open_pairs = [pair for pair in pairs.values()
                  if not settled[pair.first] & settled[pair.second]]
    if kind == "copies":
        found = group_copies((pair.first, pair.second, pair.copy, pair.residual)
                             for pair in open_pairs if not math.isnan(pair.residual))
    else:
        found = group_pairs((pair.first, pair.second) for pair in open_pairs if pair.similar)
    groups = {group_id(kind, members): members for members in found}
    with index.lock:
        index.listed.update(groups)
    return groups, pairs


def _member_score(entity: int, keep: int, members: Sequence[int],
                  pairs: Mapping[tuple[int, int], Pair]) -> float:
    """1.0 for the copy to keep; else its pair's score with it, or its best in the group."""
    if entity == keep:
        return 1.0
    direct = pairs.get((min(entity, keep), max(entity, keep)))
    if direct is not None:
        return copy_score(direct)
    scores = [copy_score(pair) for other in members if other != entity
              if (pair := pairs.get((min(entity, other), max(entity, other)))) is not None]
    return max(scores, default=0.0)


def _group(kind: str, members: list[int], rows: Mapping[int, EntityRow],
           described: Mapping[int, StoredDescriptor],
           pairs: Mapping[tuple[int, int], Pair]) -> Group | None:
    """The group as shown; None when fewer than two of its entities are left (deleted since
    its pairs were read)."""
    present = [entity for entity in members if entity in rows and entity in described]
    if len(present) < 2:
        return None
    copies = []
    for entity in present:
        found, taken = described[entity], rows[entity].taken_at_utc
        copies.append(Copy(entity, found.width, found.height, found.format, found.quality,
                           found.format in LOSSLESS_FORMATS, found.size,
                           taken.isoformat() if taken else None))
    keep, reason = suggest_keep(copies)
    return Group(group_id(kind, members), kind, tuple(
        Member(entity_of(rows[entity]), _member_score(entity, keep, present, pairs),
               described[entity].width, described[entity].height, described[entity].format,
               described[entity].quality)
        for entity in present), keep, reason)


@entry_point
def list_groups(stores: Stores, app_name: str, kind: str, page: int, num: int) -> GroupPage:
    """A page of the application's unsettled groups of ``kind``, by their smallest id."""
    _check_kind(kind)
    if not 1 <= num <= MAX_NUM or not 0 <= page <= INT64_MAX // num:
        raise BadRequestError("INVALID_PAGE", f"num must be between 1 and {MAX_NUM} and page "
                                              "at least 0")
    plan = application_plan(stores, app_name)
    groups, pairs = _groups(stores, plan, kind)
    shown = list(groups.values())[page * num:(page + 1) * num]
    ids = sorted({entity for members in shown for entity in members})
    rows = stores.meta.entities_by_id(app_name, ids)
    described = {each.entity_id: each
                 for each in DuplicateRecords(stores.meta).descriptors(app_name, ids)}
    shown_groups = (_group(kind, members, rows, described, pairs) for members in shown)
    return GroupPage(kind, tuple(group for group in shown_groups if group is not None),
                     len(groups), page, num)


@dataclass(frozen=True)
class _Asked:
    dismiss: bool
    keep: tuple[int, ...]
    delete: tuple[int, ...]


def _ids(body: Mapping[str, Any], key: str) -> tuple[int, ...]:
    value = body.get(key, [])
    if not isinstance(value, list) or not all(
            isinstance(each, int) and not isinstance(each, bool) for each in value):
        raise BadRequestError("INVALID_RESOLUTION", f"`{key}` must be a list of entity ids")
    if len(set(value)) != len(value):
        raise BadRequestError("INVALID_RESOLUTION", f"`{key}` names an entity twice")
    return tuple(value)


def _asked(body: object) -> _Asked:
    usage = 'give {"keep": [ids], "delete": [ids]} or {"dismiss": true}'
    if not isinstance(body, dict):
        raise BadRequestError("INVALID_RESOLUTION", f"the body must be a JSON object: {usage}")
    unknown = set(body) - {"keep", "delete", "dismiss"}
    if unknown:
        raise BadRequestError("INVALID_RESOLUTION",
                              f"unknown keys {', '.join(sorted(unknown))}: {usage}")
    if "dismiss" in body:
        if body["dismiss"] is not True or "keep" in body or "delete" in body:
            raise BadRequestError("INVALID_RESOLUTION",
                                  f"`dismiss` must be true and come alone: {usage}")
        return _Asked(True, (), ())
    if "keep" not in body and "delete" not in body:
        raise BadRequestError("INVALID_RESOLUTION", usage)
    keep, delete = _ids(body, "keep"), _ids(body, "delete")
    both = set(keep) & set(delete)
    if both:
        raise BadRequestError("INVALID_RESOLUTION", f"entities {sorted(both)} are both kept "
                                                    "and deleted: name each once")
    return _Asked(False, keep, delete)


def _missing_group(stores: Stores, app_name: str, group: str, asked: _Asked,
                   current: Mapping[str, list[int]]) -> Exception:
    """Why ``group`` is not among the current ones: it changed since it was listed (409),
    or it never was (404)."""
    listed = stores.duplicates.of(app_name).listed.get(group, [])
    named = set(listed) | set(asked.keep) | set(asked.delete)
    for now, members in current.items():
        if named & set(members):
            return ConflictError("GROUP_CHANGED", f"group {group} changed since it was listed "
                                                  f"(it is now {now}, of {len(members)} "
                                                  "entities): list the duplicates again")
    if listed:
        return ConflictError("GROUP_CHANGED", f"group {group} changed since it was listed "
                                              "(its entities were deleted or settled): list "
                                              "the duplicates again")
    return NotFoundError("GROUP_NOT_FOUND", f"application {app_name!r} has no group "
                                            f"{group!r}: list the duplicates for the ids")


@entry_point
def resolve_group(stores: Stores, app_name: str, group: str, body: object) -> Resolution:
    """Settle a group: delete the entities named in ``delete`` (all or none, through the
    entities' delete path), keep the others, and record it; or dismiss it. Nothing changes
    when the request is refused."""
    plan = application_plan(stores, app_name)
    asked = _asked(body)
    kind = group.split("-", 1)[0]
    if kind not in KINDS:
        raise NotFoundError("GROUP_NOT_FOUND", f"application {app_name!r} has no group "
                                               f"{group!r}: list the duplicates for the ids")
    current, _ = _groups(stores, plan, kind)
    if group not in current:
        raise _missing_group(stores, app_name, group, asked, current)
    members = current[group]
    strangers = sorted((set(asked.keep) | set(asked.delete)) - set(members))
    if strangers:
        raise BadRequestError("NOT_IN_GROUP", f"entities {strangers} are not in group {group} "
                                              f"(its entities: {members})")
    if set(asked.delete) >= set(members):
        raise BadRequestError("DELETE_ALL", f"that deletes every entity of group {group}: "
                                            "keep at least one (or dismiss the group)")
    deleted = sorted(asked.delete)
    rows = stores.meta.entities_by_id(app_name, deleted)
    gone = [entity for entity in deleted if entity not in rows]
    if gone:
        raise ConflictError("GROUP_CHANGED", f"entities {gone} of group {group} were deleted "
                                             "since it was listed: list the duplicates again")
    kept = [entity for entity in members if entity not in set(deleted)]
    action = "dismissed" if asked.dismiss else "resolved"
    decision = DecisionRow(application=app_name, kind=kind, action=action, members=members,
                           kept=kept, deleted=deleted)
    try:
        DuplicateRecords(stores.meta).decide(decision, deleted)
    except EntitiesGoneError:
        raise ConflictError("GROUP_CHANGED", f"entities of group {group} were deleted "
                                             "meanwhile: list the duplicates again") from None
    entities = [entity_of(rows[entity]) for entity in deleted]
    delete_stored(stores, plan.application, entities)
    stores.duplicates.forget(app_name, deleted)
    return Resolution(group, action, tuple(kept), tuple(entities))
