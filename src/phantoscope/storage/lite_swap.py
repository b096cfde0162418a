"""A method of a milvus-lite class (or a function of one of its modules) replaced by one of
ours, and put back (`lite_one_copy`, `lite_compaction`, `lite_pool`, `lite_file_read`)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

__all__ = ["MethodSwap"]


class MethodSwap:
    """``owner().name`` replaced by ``replacement(original)`` on `install`, at most once at a
    time, and the original put back on `uninstall`. ``owner`` is called only then, so that
    milvus-lite is imported only where it is used. A module that swaps one method exports
    the three bound methods as its own ``install``, ``uninstall`` and ``installed``."""

    def __init__(self, owner: Callable[[], Any], name: str,
                 replacement: Callable[[Callable[..., Any]], Callable[..., Any]]) -> None:
        self._owner, self._name, self._replacement = owner, name, replacement
        self._original: Callable[..., Any] | None = None
        self._lock = threading.Lock()

    def install(self) -> None:
        with self._lock:
            if self._original is not None:
                return
            owner = self._owner()
            original = getattr(owner, self._name)
            setattr(owner, self._name, self._replacement(original))
            self._original = original

    def uninstall(self) -> None:
        with self._lock:
            if self._original is None:
                return
            setattr(self._owner(), self._name, self._original)
            self._original = None

    def installed(self) -> bool:
        return self._original is not None
