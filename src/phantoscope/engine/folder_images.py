"""The image files of a folder, as `phantoscope import`, an import job and a watch find
them."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff"})


def find_images(folder: Path) -> list[Path]:
    """Image files under ``folder`` by extension (any case), in a stable order; hidden files
    and folders (names starting with '.') are left out, and linked folders are not entered."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(name for name in dirs if not name.startswith("."))
        found.extend(
            Path(root, name)
            for name in sorted(files)
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_EXTENSIONS
        )
    return found


@dataclass(frozen=True)
class FileState:
    """What tells a file's new version from its old: its size and modification time."""

    size: int
    mtime_ns: int


def folder_state(folder: Path) -> dict[str, FileState]:
    """The folder's images by path relative to it (with ``/``), each with its state; a file
    that cannot be read for its state (gone meanwhile, a broken link) is left out."""
    found = {}
    for path in find_images(folder):
        try:
            stat = path.stat()
        except OSError:
            continue
        found[path.relative_to(folder).as_posix()] = FileState(stat.st_size, stat.st_mtime_ns)
    return found
