"""The storage backends API tests run on."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Backends:
    vectors: str  # lite | server
    meta: str  # sqlite | mariadb | postgres
    objects: str  # folder | s3

    @property
    def id(self) -> str:
        return f"{self.vectors}-{self.meta}-{self.objects}"


ALL_BACKENDS = [
    Backends(vectors, meta, objects)
    for vectors in ("lite", "server")
    for meta in ("sqlite", "mariadb", "postgres")
    for objects in ("folder", "s3")
]
DEFAULT_BACKENDS = Backends("lite", "sqlite", "folder")
