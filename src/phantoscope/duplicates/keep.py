"""Which copy of a group to keep: the largest picture, then the least compressed, then the
one taken first, with the reason in words."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

LOSSLESS = 101  # ranks above any JPEG quality


@dataclass(frozen=True)
class Copy:
    """What the suggestion weighs of one copy."""

    id: int
    width: int
    height: int
    format: str
    quality: int | None  # estimated JPEG quality; None: not a JPEG
    lossless: bool
    size: int  # bytes
    taken_at: str | None = None  # ISO 8601, as entities carry it

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def fidelity(self) -> int:
        """Lossless above every JPEG, JPEGs by quality; 0 when neither is known."""
        if self.lossless:
            return LOSSLESS
        return self.quality or 0

    def compression(self) -> str:
        if self.lossless:
            return f"{self.format} (lossless)"
        if self.quality is not None:
            return f"{self.format} quality {self.quality}"
        return self.format or "unknown format"


def _rank(copy: Copy) -> tuple:
    # bigger first, then more faithful, then more bytes a pixel, then taken first, then
    # stored first; an unknown taken_at sorts after every known one
    return (-copy.pixels, -copy.fidelity, -copy.size / max(copy.pixels, 1),
            copy.taken_at is None, copy.taken_at or "", copy.id)


def suggest_keep(copies: Sequence[Copy]) -> tuple[int, str]:
    """The id of the copy to keep and why, in words."""
    if not copies:
        raise ValueError("a group has at least one copy")
    ranked = sorted(copies, key=_rank)
    best, others = ranked[0], ranked[1:]
    if not others:
        return best.id, "the only copy"
    runner = others[0]
    if best.pixels > runner.pixels:
        return best.id, (f"the largest: {best.width}x{best.height} "
                         f"(the next {runner.width}x{runner.height})")
    if best.fidelity > runner.fidelity:
        return best.id, (f"as large as the next and less compressed: {best.compression()} "
                         f"(the next {runner.compression()})")
    if best.size / max(best.pixels, 1) > runner.size / max(runner.pixels, 1):
        return best.id, (f"as large and as compressed as the next, and more bytes a pixel: "
                         f"{best.size:,} bytes (the next {runner.size:,})")
    if best.taken_at and best.taken_at != runner.taken_at:
        later = runner.taken_at or "unknown"
        return best.id, f"alike in size and compression, and taken first: {best.taken_at} " \
                        f"(the next {later})"
    return best.id, "alike in size, compression and date: the one stored first"
