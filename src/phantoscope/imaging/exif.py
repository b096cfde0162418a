"""What an image file's EXIF says: when, with what camera, where, and its displayed size.

``read_exif(data)`` opens the bytes with Pillow and reads headers only (``Image.open`` is
lazy; nothing here decodes pixels: a PNG's EXIF is taken only from chunks before the image
data, since Pillow would decode the whole image to look for a later one). It never raises:
bytes Pillow cannot open give ``{}``, and an unreadable tag is left out, not fatal.

Keys, each only when known:

- ``width``, ``height``: the image as displayed, i.e. swapped for EXIF orientations 5-8
  (rotated by 90 or 270 degrees). Present for every image Pillow can open, with or without
  EXIF;
- ``taken_at``: DateTimeOriginal, else DateTime, as ISO 8601 text (``2024-05-01T12:30:00``),
  with the offset from OffsetTimeOriginal (or OffsetTime for DateTime) when given
  (``2024-05-01T12:30:00+02:00``); without one it is the camera's local time;
- ``camera``: make and model, trimmed, as one string (``"Canon EOS 5D"``; the make is not
  repeated when the model starts with it);
- ``gps``: ``{"lat": float, "lon": float}``, signed decimal degrees (south and west
  negative) from the GPS IFD's degree/minute/second rationals and refs.
"""

from __future__ import annotations

import io
import math
import re
import warnings
from datetime import datetime
from typing import Any

from PIL import Image

__all__ = ["read_exif"]

EXIF_IFD = 0x8769
GPS_IFD = 0x8825
MAKE, MODEL, ORIENTATION, DATETIME = 0x010F, 0x0110, 0x0112, 0x0132
DATETIME_ORIGINAL, OFFSET_TIME, OFFSET_TIME_ORIGINAL = 0x9003, 0x9010, 0x9011
GPS_LAT_REF, GPS_LAT, GPS_LON_REF, GPS_LON = 1, 2, 3, 4
SWAPPED_ORIENTATIONS = (5, 6, 7, 8)

_OFFSET = re.compile(r"[+-]\d{2}:\d{2}")


def _text(value: object) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    value = value.replace("\x00", " ").strip()
    return value or None


def _time(value: object, offset: object) -> str | None:
    text = _text(value)
    if text is None:
        return None
    try:
        moment = datetime.strptime(text[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None  # blank ("    :  :     :  :  ") or zeroed ("0000:00:00 00:00:00")
    iso = moment.isoformat()
    zone = _text(offset)
    if zone and _OFFSET.fullmatch(zone) and int(zone[1:3]) <= 14 and int(zone[4:]) < 60:
        iso += zone
    return iso


def _camera(make: object, model: object) -> str | None:
    make_text, model_text = _text(make), _text(model)
    if make_text and model_text:
        if model_text.lower().startswith(make_text.lower()):
            return model_text
        return f"{make_text} {model_text}"
    return make_text or model_text


def _degrees(value: object) -> float | None:
    try:
        parts = [float(part) for part in value]  # type: ignore[union-attr]
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    if not 1 <= len(parts) <= 3 or not all(math.isfinite(p) and p >= 0 for p in parts):
        return None
    parts += [0.0] * (3 - len(parts))
    return parts[0] + parts[1] / 60 + parts[2] / 3600


def _gps(gps: dict[int, Any]) -> dict[str, float] | None:
    lat, lon = _degrees(gps.get(GPS_LAT)), _degrees(gps.get(GPS_LON))
    lat_ref, lon_ref = _text(gps.get(GPS_LAT_REF)), _text(gps.get(GPS_LON_REF))
    if lat is None or lon is None or lat > 90 or lon > 180:
        return None
    if lat_ref and lat_ref.upper().startswith("S"):
        lat = -lat
    if lon_ref and lon_ref.upper().startswith("W"):
        lon = -lon
    return {"lat": round(lat, 7), "lon": round(lon, 7)}


def _ifd(exif: Image.Exif, tag: int) -> dict[int, Any]:
    try:
        return dict(exif.get_ifd(tag))
    except Exception:  # a corrupt sub-IFD: the rest of the tags still count
        return {}


def _read(image: Image.Image) -> dict[str, Any]:
    if image.format == "PNG" and "exif" not in image.info:
        return {}  # Pillow's PNG getexif() would decode the image to look past IDAT
    try:
        exif = image.getexif()
        top = dict(exif)
    except Exception:
        return {}
    details = _ifd(exif, EXIF_IFD) if EXIF_IFD in top else {}
    out: dict[str, Any] = {}

    taken = _time(details.get(DATETIME_ORIGINAL, top.get(DATETIME_ORIGINAL)),
                  details.get(OFFSET_TIME_ORIGINAL, top.get(OFFSET_TIME_ORIGINAL)))
    if taken is None:
        taken = _time(top.get(DATETIME), details.get(OFFSET_TIME, top.get(OFFSET_TIME)))
    if taken is not None:
        out["taken_at"] = taken
    camera = _camera(top.get(MAKE), top.get(MODEL))
    if camera:
        out["camera"] = camera
    if GPS_IFD in top:
        gps = _gps(_ifd(exif, GPS_IFD))
        if gps is not None:
            out["gps"] = gps
    orientation = top.get(ORIENTATION)
    out["_orientation"] = orientation if isinstance(orientation, int) else 1
    return out


def read_exif(data: bytes) -> dict[str, Any]:
    """What ``data``'s EXIF says (see the module's docstring); ``{}`` for bytes Pillow
    cannot open. Never raises."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns on odd EXIF; we skip what is odd
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                found = _read(image)
    except Exception:
        return {}
    orientation = found.pop("_orientation", 1)
    if orientation in SWAPPED_ORIENTATIONS:
        width, height = height, width
    return {**found, "width": width, "height": height}
