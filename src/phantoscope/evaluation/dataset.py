"""A labelled evaluation set on disk: one sub-folder per class, images inside, and for text
queries a ``queries.json`` saying which classes each query should find."""

from __future__ import annotations

import json
from collections.abc import Collection
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


QUERIES_FILE = "queries.json"  # photoset.build_text_set writes it beside the class folders


def load_text_queries(folder: Path, labels: Collection[str]) -> dict[str, frozenset[str]]:
    """``folder/queries.json``: each text query and the classes (sub-folders) relevant to it.

    The file is a JSON object ``{"<words>": ["<class>", ...], ...}``; every class must be one
    of ``labels``. Raises :class:`DatasetError` when it is missing or malformed.
    """
    path = folder / QUERIES_FILE
    body = read_manifest(
        path,
        'it says which classes each text query should find, as {"cat": ["chelsea"], ...} '
        "(bench/eval_sets.py --text writes a set with one)",
    )
    if not isinstance(body, dict) or not body:
        raise DatasetError(f"{path} must be a JSON object of query -> list of classes")
    queries: dict[str, frozenset[str]] = {}
    for text, relevant in body.items():
        if not text.strip() or not isinstance(relevant, list) or not relevant or not all(
            isinstance(label, str) for label in relevant
        ):
            raise DatasetError(
                f"{path}: query {text!r} needs words and a non-empty list of class names")
        unknown = sorted(set(relevant) - set(labels))
        if unknown:
            raise DatasetError(
                f"{path}: query {text!r} names classes with no images in {folder}: "
                f"{', '.join(unknown)}")
        queries[text] = frozenset(relevant)
    return queries


def read_manifest(path: Path, what_it_holds: str) -> object:
    """The JSON of a set's manifest file; :class:`DatasetError` saying what the file holds
    when it is missing, or why it cannot be read."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetError(f"{path} is missing: {what_it_holds}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{path} is not readable JSON: {exc}") from None
