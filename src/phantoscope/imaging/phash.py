"""A picture's grey thumbnail and perceptual hash: 64 bits that stay nearly the same when a
picture is resized, recompressed or colour-adjusted, and differ in about half their bits
between two unrelated pictures.

:func:`thumbnail` is the picture's luma squeezed to 64 x 64 pixels (a box filter: every
source pixel counts, so noise and JPEG blocks average out). :func:`phash` is the DCT hash of
its 32 x 32 half: of the 2-D DCT-II's 8 x 8 lowest frequencies one bit each, set when the
coefficient is above their median; bit 63 is frequency (0, 0), then row by row.

A picture turned by a multiple of 90 degrees or mirrored has other bits but the same
thumbnail turned or mirrored: :func:`orientation_hashes` gives the hashes of all eight
orientations of one thumbnail, and :func:`nearest_orientation` the fewest bits in which any
of them differs from each of many stored hashes.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import numpy as np
from PIL import Image

__all__ = [
    "BITS", "THUMBNAIL", "hamming", "nearest_orientation", "orientation_hashes", "phash",
    "popcount", "thumbnail", "to_signed", "to_unsigned",
]

THUMBNAIL = 64
HASHED = 32  # the hash is taken of the thumbnail at this size
KEPT = 8  # the KEPT x KEPT lowest frequencies make the hash
BITS = KEPT * KEPT


def thumbnail(image: Image.Image) -> np.ndarray:
    """The picture's luma at THUMBNAIL x THUMBNAIL pixels: a (64, 64) uint8 array."""
    grey = image.convert("L")
    factor = min(grey.width, grey.height) // (2 * THUMBNAIL)
    if factor >= 2:  # a cheap exact 1/factor reduction first; the box resize does the rest
        grey = grey.reduce(factor)
    return np.asarray(grey.resize((THUMBNAIL, THUMBNAIL), Image.Resampling.BOX), dtype=np.uint8)


@cache
def _dct_rows() -> np.ndarray:
    """The KEPT lowest-frequency rows of the orthonormal DCT-II matrix of size HASHED."""
    frequencies = np.arange(KEPT)[:, None]
    positions = np.arange(HASHED)[None, :]
    matrix = np.cos(np.pi * (2 * positions + 1) * frequencies / (2 * HASHED))
    matrix[0] *= np.sqrt(1 / HASHED)
    matrix[1:] *= np.sqrt(2 / HASHED)
    return matrix


# (-1)^k for the KEPT lowest frequencies: a DCT-II coefficient of frequency k changes sign
# with k's parity when its axis is reversed
_ALTERNATE = (-1.0) ** np.arange(KEPT)


def _low_frequencies(pixels: np.ndarray) -> np.ndarray:
    """The KEPT x KEPT lowest frequencies of the 2-D DCT of a thumbnail's HASHED half."""
    half = pixels.reshape(HASHED, 2, HASHED, 2).mean(axis=(1, 3))
    rows = _dct_rows()
    return rows @ half @ rows.T


def _hashes(lows: np.ndarray) -> list[int]:
    """The hash of each row of (k, BITS) coefficients: a bit where one is above their median."""
    bits = lows > np.median(lows, axis=1, keepdims=True)
    return [int.from_bytes(row.tobytes(), "big") for row in np.packbits(bits, axis=1)]


def phash(thumb: np.ndarray) -> int:
    """The 64-bit DCT hash of a :func:`thumbnail` (an unsigned int)."""
    return _hashes(_low_frequencies(np.asarray(thumb, dtype=np.float64)).reshape(1, BITS))[0]


def orientation_hashes(thumb: np.ndarray) -> tuple[int, ...]:
    """The hashes of a :func:`thumbnail` turned 0/90/180/270 degrees counter-clockwise, then
    of each of those mirrored left to right: eight unsigned ints, the first :func:`phash`.

    One DCT serves all eight: turning or mirroring the picture transposes its coefficients
    or changes their signs (a quarter turn is a transpose, then the rows reversed)."""
    low = _low_frequencies(np.asarray(thumb, dtype=np.float64))
    reverse_rows, reverse_columns = _ALTERNATE[:, None], _ALTERNATE[None, :]
    turned = [low, reverse_rows * low.T, reverse_rows * reverse_columns * low,
              reverse_columns * low.T]
    views = [*turned, *(view * reverse_columns for view in turned)]
    return tuple(_hashes(np.stack(views).reshape(len(views), BITS)))


def hamming(first: int, second: int) -> int:
    """The number of bits in which two hashes differ."""
    return (first ^ second).bit_count()


_BYTE_BITS = np.array([bin(value).count("1") for value in range(256)], dtype=np.uint8)


def popcount(values: np.ndarray) -> np.ndarray:
    """The set bits of each uint64 (numpy's own bitwise_count where it has one: 2.0 on)."""
    values = np.ascontiguousarray(values, dtype=np.uint64)
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(values)
    per_byte = _BYTE_BITS[values.view(np.uint8)].reshape(*values.shape, 8)
    return per_byte.sum(axis=-1, dtype=np.uint8)


def nearest_orientation(hashes: Sequence[int], stored: np.ndarray) -> np.ndarray:
    """For each hash of ``stored`` (uint64), the fewest bits in which any of ``hashes`` (a
    picture's :func:`orientation_hashes`) differs from it."""
    stored = np.asarray(stored, dtype=np.uint64)
    best = np.full(stored.shape, BITS, dtype=np.uint8)
    for value in hashes:
        np.minimum(best, popcount(stored ^ np.uint64(value)), out=best)
    return best


def to_signed(value: int) -> int:
    """A hash as a signed 64-bit int, as SQL BIGINT columns hold it."""
    return value - (1 << 64) if value >= 1 << 63 else value


def to_unsigned(value: int) -> int:
    """The inverse of :func:`to_signed`."""
    return value + (1 << 64) if value < 0 else value
