"""A labelled evaluation set on disk: one sub-folder per class, images inside."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})


class DatasetError(ValueError):
    """The folder is not a usable evaluation set."""


@dataclass(frozen=True)
class LabelledImage:
    path: Path
    label: str  # the name of the sub-folder holding it

    def relative_to(self, folder: Path) -> str:
        return self.path.relative_to(folder).as_posix()


def load_folder(folder: Path) -> list[LabelledImage]:
    """Every image in ``folder``'s sub-folders (not deeper), labelled by sub-folder, sorted.

    Hidden files and folders and files without an image suffix are skipped. Raises
    :class:`DatasetError` unless there are images in at least two classes.
    """
    if not folder.is_dir():
        raise DatasetError(f"{folder} is not a folder")
    images = [
        LabelledImage(path, sub.name)
        for sub in sorted(folder.iterdir())
        if sub.is_dir() and not sub.name.startswith(".")
        for path in sorted(sub.iterdir())
        if path.is_file() and not path.name.startswith(".")
        and path.suffix.lower() in IMAGE_SUFFIXES
    ]
    classes = {image.label for image in images}
    if len(classes) < 2:
        raise DatasetError(
            f"{folder} needs one sub-folder of images per class, two classes at least; "
            f"found {len(images)} images in {len(classes)} classes"
        )
    return images
