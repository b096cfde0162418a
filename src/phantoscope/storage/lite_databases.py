"""Milvus Lite databases in this process: which path a database may have (`database_path`),
and one lock and a use count per open database (`LITE`), since Milvus Lite is not safe for
concurrent writes (see `milvus_vectors`). The vectorised search executor put in place of
Milvus Lite's own, and direct access to the collections of a database this process serves,
are in `lite_search`.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from phantoscope.storage.vectors import VectorStoreError

__all__ = ["LITE", "LiteRegistry", "database_path"]


def database_path(uri: str) -> str:
    """The absolute path of the Milvus Lite database ``uri`` names (a path ending in ``.db``,
    a folder in Milvus Lite 3.x), its parent folder created."""
    path = Path(uri).expanduser()
    if path.suffix != ".db":
        raise ValueError(
            f"vector store URI {uri!r} is neither a Milvus Lite path ending in .db "
            "nor a server URI (http://, https://, tcp://)")
    path = path.resolve()
    if path.is_file():
        raise VectorStoreError(
            f"cannot open Milvus Lite at {path}: it is a file, probably from Milvus Lite "
            "2.x; Milvus Lite 3.x keeps a database in a folder of that name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise VectorStoreError(
            f"cannot create the folder for Milvus Lite at {path}: {exc}") from exc
    return str(path)


class LiteRegistry:
    """Milvus Lite databases open in this process: one lock and a use count per path.

    pymilvus starts one in-process Milvus Lite server per path and shares it between clients;
    we stop it (releasing the data folder's lock) when the last store on that path closes.
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._entries: dict[str, list[Any]] = {}  # path -> [RLock, use count]

    def acquire(self, path: str) -> threading.RLock:
        with self._guard:
            entry = self._entries.setdefault(path, [threading.RLock(), 0])
            entry[1] += 1
            return entry[0]

    def release(self, path: str) -> None:
        with self._guard:
            entry = self._entries.get(path)
            if entry is None:
                return
            entry[1] -= 1
            if entry[1] > 0:
                return
            del self._entries[path]
        from milvus_lite.server_manager import server_manager_instance

        server_manager_instance.release_server(path)


LITE = LiteRegistry()
