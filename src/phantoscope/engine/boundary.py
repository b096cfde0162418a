"""The engine's public entry points answer with engine errors only: a store failure (any
:class:`~phantoscope.storage.store_error.StoreError`) leaves them as a :class:`StorageError`."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from phantoscope.engine.errors import StorageError
from phantoscope.storage.store_error import StoreError

P = ParamSpec("P")
R = TypeVar("R")


def entry_point(function: Callable[P, R]) -> Callable[P, R]:
    """``function``, with store failures raised as STORAGE_UNAVAILABLE (same message)."""

    @functools.wraps(function)
    def translated(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        except StoreError as exc:
            raise StorageError("STORAGE_UNAVAILABLE", str(exc)) from exc

    return translated
