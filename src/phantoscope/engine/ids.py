"""Ids for entities and vectors: 63-bit, roughly time-ordered, unique across processes."""

from __future__ import annotations

import secrets
import time

_EPOCH_MS = 1_600_000_000_000
_RANDOM_BITS = 20


def new_id() -> int:
    """Milliseconds since 2020-09 in the high bits, 20 random bits below (fits int64)."""
    return ((int(time.time() * 1000) - _EPOCH_MS) << _RANDOM_BITS) | secrets.randbits(_RANDOM_BITS)


def new_ids(count: int) -> list[int]:
    """``count`` different ids from :func:`new_id`, in the order made."""
    ids: dict[int, None] = {}
    while len(ids) < count:
        ids[new_id()] = None
    return list(ids)


def id_time(value: int) -> float:
    """When an id from :func:`new_id` was made, in seconds since the Unix epoch."""
    return ((value >> _RANDOM_BITS) + _EPOCH_MS) / 1000
