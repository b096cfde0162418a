"""EXIF read at intake, in the form entities keep it.

:func:`phantoscope.imaging.exif.read_exif` says what the file's headers say; here its
``taken_at`` becomes a moment: text without an offset (the camera's local time, zone
unknown) is read as UTC, as search filters read such text, and gets ``+00:00``, so that the
text answered and the moment filtered on always agree. A time before 1800 (a camera clock
never set) is dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from phantoscope.engine.filters import parse_time
from phantoscope.imaging.exif import read_exif

__all__ = ["PhotoExif", "exif_at_intake"]

EARLIEST_YEAR = 1800
_HAS_OFFSET = re.compile(r"[+-]\d{2}:\d{2}$")


@dataclass(frozen=True)
class PhotoExif:
    exif: dict[str, Any]  # taken_at (ISO 8601 with offset), camera, width, height, gps
    taken_at: datetime | None  # the same moment, aware, in UTC


def exif_at_intake(data: bytes) -> PhotoExif:
    """What ``data``'s EXIF says, as an entity keeps it. Never raises."""
    found = read_exif(data)
    text = found.pop("taken_at", None)
    if not isinstance(text, str):
        return PhotoExif(found, None)
    if not _HAS_OFFSET.search(text):
        text += "+00:00"
    try:
        moment = datetime.fromtimestamp(parse_time(text), UTC)
    except (ValueError, OverflowError, OSError):
        return PhotoExif(found, None)
    if moment.year < EARLIEST_YEAR:
        return PhotoExif(found, None)
    return PhotoExif({"taken_at": text, **found}, moment)
