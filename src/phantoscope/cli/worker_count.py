"""How many operator processes `up --workers` and `operator serve --processes` start: the
number given (checked), else one per core; never more than the memory holds."""

from __future__ import annotations

from pathlib import Path

WORKERS_VARIABLE = "PHANTOSCOPE_WORKERS"
# Measured (VmHWM) on 2 cores: an efficientnet-lite0 operator process after 512 photos of
# 0.8-2.5 MP in batches of 16, 355-359 MB; the API process importing 10,000 photos, 726 MB.
OPERATOR_MB = 400
API_MB = 750
MAX_WORKERS = 64  # the replicas one operator may register (engine/replicas.MAX_REPLICAS)


class WorkerCountError(ValueError):
    """The count asked for cannot run here; the message says why and what fits."""


def available_mb(meminfo: Path = Path("/proc/meminfo")) -> int | None:
    """Memory available to new processes (MemAvailable), None where it cannot be read."""
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def worker_count(
    given: str | None, source: str, cores: int, free_mb: int | None, reserved_mb: int = 0
) -> int:
    """The number of operator processes to start.

    ``given`` is the text of ``source`` (``--workers`` or ``PHANTOSCOPE_WORKERS``), None for
    the default: one per core, fewer if the memory holds fewer. ``reserved_mb`` is memory
    taken besides the operators (the API's). ``free_mb`` None: memory unknown, not checked.
    """
    fits = None if free_mb is None else (free_mb - reserved_mb) // OPERATOR_MB
    if given is None:
        count = min(cores, MAX_WORKERS)
        if fits is not None:
            count = min(count, fits)
        if count < 1:
            raise WorkerCountError(_memory_message(1, source, free_mb, reserved_mb, fits))
        return count
    text = given.strip()
    try:
        count = int(text)
    except ValueError:
        raise WorkerCountError(
            f"{source} {given!r} is not a whole number: give the number of operator processes "
            f"(1 to {MAX_WORKERS}; this machine has {cores} cores)"
        ) from None
    if count < 1:
        raise WorkerCountError(
            f"{source} {count}: give at least 1 operator process (this machine has {cores} "
            "cores; leave it out for one per core)"
        )
    if count > MAX_WORKERS:
        raise WorkerCountError(f"{source} {count}: at most {MAX_WORKERS} operator processes")
    if fits is not None and count > fits:
        raise WorkerCountError(_memory_message(count, source, free_mb, reserved_mb, fits))
    return count


def _memory_message(
    count: int, source: str, free_mb: int | None, reserved_mb: int, fits: int | None
) -> str:
    api = f" and the API about {reserved_mb:,} MB" if reserved_mb else ""
    room = (
        f"at most {fits} fit" if fits and fits > 0 else "not even one fits: free some memory"
    )
    return (
        f"{source} {count}: each operator process takes about {OPERATOR_MB} MB{api}; "
        f"this machine has {free_mb:,} MB available, so {room}"
    )
