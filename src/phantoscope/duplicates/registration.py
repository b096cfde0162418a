"""Whether one picture is the other moved: the affine map and tone change that best lay
thumbnail B over thumbnail A, and how well B then matches.

A copy (resized, recompressed, cropped by a few percent, tilted, colour-adjusted) lines up
with its original everywhere once moved; a second shot of the same scene does not: what is
near the camera shifts against what is far (parallax), people move. Hashes and encoder
vectors cannot tell the two apart (the stereo pair of scikit-image's motorcycle is 6 hash
bits apart, closer than most crops of 5 %), a residual after alignment can.

The alignment is Gauss-Newton on the affine map ``B(M x + t)`` and the tone ``g B + h``
(Lucas-Kanade, forwards additive), coarse to fine over 8, 16, 32 and 64-pixel thumbnails
(2 x 2 means of the stored 64 x 64 one), many pairs at once in numpy: each pixel cell's
bilinear patch is worked out once a level, so that a sample gathers its four coefficients,
and a pair whose map has stopped moving takes no more steps at that level.
The eight turns and mirrorings are tried at 8 pixels, the best two again at 16; at 16 and
32 pixels a fit afresh competes with the one carried up from below. Coordinates run from -1
to 1 across each thumbnail, so the map is independent of either picture's size and shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

SIZE = 64  # the stored thumbnail's side
LEVELS = (8, 16, 32, 64)
ITERATIONS = {8: 12, 16: 8, 32: 6, 64: 4}
BLOCKS = 4  # the residual is also taken in BLOCKS x BLOCKS parts of A, but for the
# four corner ones: a tilted copy's fill lies there
_INNER_BLOCKS = np.ones((BLOCKS, BLOCKS), dtype=bool)
_INNER_BLOCKS[[0, 0, -1, -1], [0, -1, 0, -1]] = False
MIN_BLOCK_COVER = 0.5  # a part counts when B covers this much of it
# A map outside these bounds is no copy (and the iteration has gone astray).
MAX_SCALE_CHANGE = 1.6
MAX_TRANSLATION = 0.6
DAMPING = 1e-3
CONVERGED_PIXELS = 0.01  # a pair whose map moves less in a step (summed over the affine
# terms, in the level's pixels) has converged: it takes no more steps at that level
FINAL_MIN_OVERLAP = 0.7  # below it at 32 pixels, a pair is not refined at 64
ALIGN_BATCH = 64  # pairs a caller aligns in one call: about 15 MB of working arrays. Per
# pair, 64 took 0.78x the CPU of 256 (whose 60 MB leave the caches) and 32 or 16 no less
# (bench/align.py); a call's figures do not depend on the pairs beside it


@dataclass(frozen=True)
class Alignment:
    """For each pair: how B lies over A, and how well it matches there.

    ``residual``: mean squared difference after the tone fit over the overlap, as a share of
    A's variance there (0: identical; 1: no better than A's mean). ``worst_block``: the same
    over the worst of the BLOCKS x BLOCKS parts of A that B covers, corners left out (still
    over A's whole variance, so a flat part does not inflate it). ``overlap``: the area both
    share, as a share of the area either covers (intersection over union, 1 for a resize).
    ``scale``: B's linear size against A's (above 1: B shows less, as a crop).
    ``orientation``: which of :func:`oriented`'s views of B was used. ``aligned``: False
    where the iteration went astray (then the other figures mean nothing).
    """

    residual: np.ndarray
    worst_block: np.ndarray
    overlap: np.ndarray
    scale: np.ndarray
    orientation: np.ndarray
    aligned: np.ndarray

    @classmethod
    def joined(cls, parts: Sequence[Alignment]) -> Alignment:
        """The pairs of ``parts`` (alignments of consecutive calls) one after another; with
        no parts, an alignment of no pair."""
        return cls(**{
            name: np.concatenate([getattr(part, name) for part in parts]) if parts
            else np.zeros(0, dtype=bool if name == "aligned" else np.float64)
            for name in cls.__dataclass_fields__
        })


def oriented(thumbnails: np.ndarray, which: int) -> np.ndarray:
    """View ``which`` of (..., n, n) thumbnails: turned ``which % 4`` quarters
    counter-clockwise, then mirrored left to right when ``which >= 4``."""
    view = np.rot90(thumbnails, which % 4, axes=(-2, -1))
    return np.flip(view, axis=-1) if which >= 4 else view


def _shrink(thumbnails: np.ndarray, size: int) -> np.ndarray:
    factor = thumbnails.shape[-1] // size
    shape = (*thumbnails.shape[:-2], size, factor, size, factor)
    return thumbnails.reshape(shape).mean(axis=(-3, -1))


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    centres = (np.arange(size) + 0.5) / size * 2 - 1
    x, y = np.meshgrid(centres, centres)
    return x.ravel(), y.ravel()


def _cells(thumbnails: np.ndarray) -> np.ndarray:
    """Each pixel cell's bilinear patch of (P, n, n) thumbnails, as the (P * (n-1)², 4)
    coefficients a, b, c, d of a + b fx + c fy + d fx fy over the cell from pixel (x0, y0)
    (fx, fy: 0 to 1 across it), cells row by row."""
    top_left, top_right = thumbnails[:, :-1, :-1], thumbnails[:, :-1, 1:]
    bottom_left, bottom_right = thumbnails[:, 1:, :-1], thumbnails[:, 1:, 1:]
    cells = np.stack([top_left, top_right - top_left, bottom_left - top_left,
                      bottom_right - bottom_left - top_right + top_left], axis=-1)
    return cells.reshape(-1, 4)


def _sample(cells: np.ndarray, px: np.ndarray, py: np.ndarray, size: int,
            rows: np.ndarray | None = None):
    """Bilinear samples of the thumbnails whose `_cells` are ``cells`` at pixel coordinates
    (P, N) ``px``, ``py`` (0 at the first pixel's centre), row p of them in thumbnail
    ``rows[p]`` (all in order when None): the (P, N) values, their derivatives along x and y
    per pixel, and a (P, N) mask of the points inside."""
    inside = (px >= -0.5) & (px <= size - 0.5) & (py >= -0.5) & (py <= size - 0.5)
    np.clip(px, 0, size - 1.0001, out=px)
    np.clip(py, 0, size - 1.0001, out=py)
    x0 = px.astype(np.int32)
    y0 = py.astype(np.int32)
    fx = px - x0
    fy = py - y0
    per_thumbnail = (size - 1) * (size - 1)
    rows = np.arange(len(px), dtype=np.int32) if rows is None else rows.astype(np.int32)
    cell = y0 * (size - 1) + x0 + (rows * per_thumbnail)[:, None]
    a, b, c, d = np.moveaxis(cells.take(cell, axis=0), -1, 0)
    along_x = b + d * fy
    along_y = c + d * fx
    return a + along_x * fx + c * fy, along_x, along_y, inside


def _pixels(params: np.ndarray, x: np.ndarray, y: np.ndarray, size: int):
    """Where the affine map of ``params`` takes the grid points ``x``, ``y`` (-1..1
    coordinates), in pixels of a ``size`` thumbnail: (P, N) px, py in float32, reckoned in
    the grid's precision."""
    half = size / 2
    coefficients = params[:, :6].astype(x.dtype)
    m11, m12, m21, m22, tx, ty = (coefficients[:, [i]] * half for i in range(6))
    shift = x.dtype.type(half - 0.5)
    px = m11 * x + m12 * y + (tx + shift)
    py = m21 * x + m22 * y + (ty + shift)
    return px.astype(np.float32, copy=False), py.astype(np.float32, copy=False)


def _step(a: np.ndarray, cells: np.ndarray, params: np.ndarray, size: int,
          iterations: int) -> np.ndarray:
    """Gauss-Newton on params (P, 8) laying B (its `_cells`) over A: the affine map (m11 m12
    m21 m22 tx ty) and tone (g h); returns the params after ``iterations`` steps, or fewer
    for a pair whose map moved less than CONVERGED_PIXELS in a step (it stays where it is
    from then on)."""
    x, y = (axis.astype(np.float32) for axis in _grid(size))
    target = a.reshape(len(a), -1)
    params = params.copy()
    going = np.arange(len(a))
    # the Jacobian's 8 columns and the residual, (P, 9, N): their products in one call
    buffer = np.empty((len(a), 9, size * size), dtype=np.float32)
    for _ in range(iterations):
        if not len(going):
            break
        now, system = params[going], buffer[:len(going)]
        gain, bias = (now[:, [i]].astype(np.float32) for i in (6, 7))
        value, grad_x, grad_y, inside = _sample(cells, *_pixels(now, x, y, size), size, going)
        scale = gain * (size / 2) * inside
        gx, gy = grad_x * scale, grad_y * scale
        np.multiply(gx, x, out=system[:, 0])
        np.multiply(gx, y, out=system[:, 1])
        np.multiply(gy, x, out=system[:, 2])
        np.multiply(gy, y, out=system[:, 3])
        system[:, 4], system[:, 5] = gx, gy
        np.multiply(value, inside, out=system[:, 6])
        system[:, 7] = inside
        system[:, 8] = (gain * value + bias - target[going]) * inside
        products = (system @ system.transpose(0, 2, 1)).astype(np.float64)
        hessian, gradient = products[:, :8, :8], products[:, :8, 8]
        # Levenberg-Marquardt damping; the small constant keeps a pair with no overlap left
        # (its Jacobian all zero) solvable, and still
        hessian += DAMPING * hessian * np.eye(8) + 1e-9 * np.eye(8)
        update = np.linalg.solve(hessian, gradient[..., None])[..., 0]
        params[going] = now - update
        moved = np.abs(update[:, :6]).sum(axis=1) * (size / 2)
        going = going[~(moved < CONVERGED_PIXELS)]  # NaN keeps going, as before
    return params


def _overlap(params: np.ndarray) -> np.ndarray:
    """Intersection over union of A's square mapped into B's coordinates and B's square."""
    corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=np.float64)
    out = np.empty(len(params))
    for index, (m11, m12, m21, m22, tx, ty, *_) in enumerate(params):
        polygon = corners @ np.array([[m11, m21], [m12, m22]]) + (tx, ty)
        mapped = abs(m11 * m22 - m12 * m21) * 4
        shared = _area(_clip_to_square(polygon))
        union = mapped + 4 - shared
        out[index] = shared / union if union > 0 else 0.0
    return out


def _clip_to_square(polygon: np.ndarray) -> np.ndarray:
    """Sutherland-Hodgman: the part of a convex polygon inside [-1, 1]²."""
    for axis, sign in ((0, 1), (0, -1), (1, 1), (1, -1)):
        if len(polygon) == 0:
            break
        kept = []
        for index in range(len(polygon)):
            here, after = polygon[index], polygon[(index + 1) % len(polygon)]
            here_in = sign * here[axis] <= 1
            after_in = sign * after[axis] <= 1
            if here_in:
                kept.append(here)
            if here_in != after_in:
                share = (1 - sign * here[axis]) / (sign * (after[axis] - here[axis]))
                kept.append(here + share * (after - here))
        polygon = np.array(kept)
    return polygon


def _area(polygon: np.ndarray) -> float:
    if len(polygon) < 3:
        return 0.0
    x, y = polygon[:, 0], polygon[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2)


def _sane(params: np.ndarray) -> np.ndarray:
    determinant = params[:, 0] * params[:, 3] - params[:, 1] * params[:, 2]
    scale = np.sqrt(np.abs(determinant))
    return (
        np.isfinite(params).all(axis=1)
        & (determinant > 0)
        & (scale < MAX_SCALE_CHANGE) & (scale > 1 / MAX_SCALE_CHANGE)
        & (np.abs(params[:, 4:6]) < MAX_TRANSLATION).all(axis=1)
        & (params[:, 6] > 0)
    )


def _fit(a: np.ndarray, b: np.ndarray, params: np.ndarray, size: int) -> np.ndarray:
    return _step(a, _cells(b), params, size, ITERATIONS[size])


def _fit_scored(a: np.ndarray, b: np.ndarray, params: np.ndarray, size: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """`_fit`, and the `_residual` the fitted params leave, B's cells worked out once."""
    cells = _cells(b)
    fitted = _step(a, cells, params, size, ITERATIONS[size])
    return fitted, _residual(a, cells, fitted)


def _scores(a: np.ndarray, cells: np.ndarray, params: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray]:
    """The residual of B (its `_cells`) laid over A by ``params``, over the overlap and over
    its worst block, both as shares of A's variance there."""
    size = a.shape[-1]
    x, y = _grid(size)
    gain, bias = params[:, [6]], params[:, [7]]
    values, _, _, inside = _sample(cells, *_pixels(params, x, y, size), size)
    target = a.reshape(len(a), -1)
    squared = ((gain * values + bias - target) ** 2) * inside
    covered = np.maximum(inside.sum(axis=1), 1)
    mean = (target * inside).sum(axis=1) / covered
    variance = ((target - mean[:, None]) ** 2 * inside).sum(axis=1) / covered + 1.0
    residual = squared.sum(axis=1) / covered / variance
    side = size // BLOCKS
    shape = (len(a), BLOCKS, side, BLOCKS, side)
    block_sum = squared.reshape(shape).sum(axis=(2, 4))
    block_cover = inside.reshape(shape).sum(axis=(2, 4))
    counted = (block_cover >= MIN_BLOCK_COVER * side * side) & _INNER_BLOCKS
    block = np.where(counted, block_sum / np.maximum(block_cover, 1), 0) / variance[:, None, None]
    return residual, block.reshape(len(a), -1).max(axis=1)


def _residual(a: np.ndarray, cells: np.ndarray, params: np.ndarray) -> np.ndarray:
    """The overall residual, infinite where the map is out of bounds."""
    return np.where(_sane(params), _scores(a, cells, params)[0], np.inf)


def _fit_each(a: np.ndarray, b: np.ndarray, starts: list[np.ndarray], size: int):
    """Fit each pair from each of ``starts`` in one batch (one Python loop, not one a
    start); the (S, P, 8) params and (S, P) residuals."""
    count = len(starts)
    params, residual = _fit_scored(np.concatenate([a] * count), np.concatenate([b] * count),
                                   np.concatenate(starts), size)
    return params.reshape(count, len(a), 8), residual.reshape(count, len(a))


def _better(a: np.ndarray, b: np.ndarray, params: np.ndarray, size: int,
            start: np.ndarray) -> np.ndarray:
    """Fit from ``params`` and afresh from ``start``; keep whichever matches better. A
    periodic texture (bricks, coins in rows) gives the coarser level nothing to hold on to,
    and its answer can lead the finer one astray."""
    fitted, residual = _fit_each(a, b, [params, start], size)
    return fitted[residual.argmin(axis=0), np.arange(len(a))]


def _orientation(a: np.ndarray, b: np.ndarray, start: np.ndarray):
    """Which view of B to align, and the map to start from: all eight are fitted at the
    coarsest level, the best two again at the next (a round picture, the moon, can fit
    its mirror image best at 8 pixels)."""
    coarse, next_size = LEVELS[0], LEVELS[1]
    pairs = np.arange(len(a))
    small_a, small_b = _shrink(a, coarse), _shrink(b, coarse)
    views = np.concatenate([oriented(small_b, which) for which in range(8)])
    tried, residuals = _fit_scored(np.concatenate([small_a] * 8), views,
                                   np.concatenate([start] * 8), coarse)
    tried, residuals = tried.reshape(8, len(a), 8), residuals.reshape(8, len(a))
    best_two = np.argsort(residuals, axis=0)[:2]
    finer_a, finer_b = _shrink(a, next_size), _shrink(b, next_size)
    turned = np.concatenate([
        np.stack([oriented(finer_b[index], view) for index, view in enumerate(which)])
        for which in best_two])
    _, residual = _fit_scored(np.concatenate([finer_a] * 2), turned,
                              np.concatenate([tried[which, pairs] for which in best_two]),
                              next_size)
    rank = residual.reshape(2, len(a)).argmin(axis=0)
    orientation = best_two[rank, pairs]
    return orientation, tried[orientation, pairs]


def align(a: np.ndarray, b: np.ndarray) -> Alignment:
    """Lay each thumbnail of ``b`` over the one of ``a`` at the same index: (P, 64, 64)
    arrays of grey levels (0-255)."""
    a = np.asarray(a, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32)
    start = np.tile(np.array([1, 0, 0, 1, 0, 0, 1, 0], dtype=np.float64), (len(a), 1))
    orientation, params = _orientation(a, b, start)
    turned = np.stack([oriented(b[index], which) for index, which in enumerate(orientation)])
    for size in LEVELS[1:-1]:
        params = _better(_shrink(a, size), _shrink(turned, size), params, size, start)
    # the last level only for pairs that may still be copies: most candidates that are not
    # (second shots, other framings) already share too little of the picture
    going = _sane(params) & (_overlap(params) >= FINAL_MIN_OVERLAP)
    if going.any():
        params[going] = _fit(a[going], turned[going], params[going], LEVELS[-1])
    aligned = _sane(params)
    residual, worst = _scores(a, _cells(turned), params)
    determinant = np.abs(params[:, 0] * params[:, 3] - params[:, 1] * params[:, 2])
    return Alignment(
        residual=np.where(aligned, residual, np.inf),
        worst_block=np.where(aligned, worst, np.inf),
        overlap=np.where(aligned, _overlap(params), 0.0),
        scale=np.sqrt(determinant),
        orientation=orientation,
        aligned=aligned,
    )
