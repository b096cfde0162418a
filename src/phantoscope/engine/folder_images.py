"""The image files of a folder, as `phantoscope import` and an import job both find them."""

from __future__ import annotations

import os
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
