"""How many operator processes `up --workers` and `operator serve --processes` start, and how
many API processes `up --api-workers` starts: the number given (checked), else one operator
process per core and API processes for about 2 in 5 of the cores beyond 3; never more than
the memory holds."""

from __future__ import annotations

from pathlib import Path

WORKERS_VARIABLE = "PHANTOSCOPE_WORKERS"
API_WORKERS_VARIABLE = "PHANTOSCOPE_API_WORKERS"
# Measured (VmHWM) on 2 cores: an efficientnet-lite0 operator process after 512 photos of
# 0.8-2.5 MP in batches of 16, 355-359 MB; the API process importing 10,000 photos, 726 MB.
OPERATOR_MB = 400
API_MB = 750
MAX_WORKERS = 64  # the replicas one operator may register (engine/replicas.MAX_REPLICAS)
MAX_API_WORKERS = 64
# Below this many cores one API process (Milvus Lite in it, no hop to a Lite host) keeps up.
SEVERAL_APIS_FROM_CORES = 4
# An import's CPU that the API spends, measured on 2 cores: 12 MP photos (bench/api_cpu.py)
# API 62.5 ms, encoder operator 72-88 ms, client 10 ms a photo; 2.5 MP (bench/cores.py, the
# candidates of a request aligned together) API 30-32, operators 34, client 3 ms. Measured
# again on 2026-12-07 (bench/cores.py, bench/README.md): 12 MP API 26-30, operators 67-73;
# 2.5 MP API 10.5-13.5, operators 20-21.5 ms a photo: the API's share of the two is 0.3 and
# 0.37, still within this share.
API_SHARE = 0.4


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
    count = _parse(given, source, "operator", MAX_WORKERS, cores)
    if fits is not None and count > fits:
        raise WorkerCountError(_memory_message(count, source, free_mb, reserved_mb, fits))
    return count


def api_worker_count(given: str | None, source: str, cores: int, free_mb: int | None) -> int:
    """The number of API processes `up` starts: ``given`` (the text of ``source``), else 1
    below ``SEVERAL_APIS_FROM_CORES`` cores and ``API_SHARE`` of the cores from there on,
    fewer if the memory holds fewer (keeping room for one operator process)."""
    fits = None if free_mb is None else (free_mb - OPERATOR_MB) // API_MB
    if given is None:
        count = 1 if cores < SEVERAL_APIS_FROM_CORES else max(2, round(cores * API_SHARE))
        return max(1, min(count, MAX_API_WORKERS, count if fits is None else fits))
    count = _parse(given, source, "API", MAX_API_WORKERS, cores)
    if fits is not None and count > fits:
        room = f"at most {fits} fit" if fits > 0 else "not even one fits: free some memory"
        raise WorkerCountError(
            f"{source} {count}: each API process takes about {API_MB} MB and an operator "
            f"process {OPERATOR_MB} MB; this machine has {free_mb:,} MB available, so {room}")
    return count


def _parse(given: str, source: str, kind: str, maximum: int, cores: int) -> int:
    """A count of ``kind`` processes from its text; WorkerCountError saying what to give."""
    try:
        count = int(given.strip())
    except ValueError:
        raise WorkerCountError(
            f"{source} {given!r} is not a whole number: give the number of {kind} processes "
            f"(1 to {maximum}; this machine has {cores} cores)"
        ) from None
    if count < 1:
        raise WorkerCountError(
            f"{source} {count}: give at least 1 {kind} process (this machine has {cores} "
            "cores; leave it out for the default)"
        )
    if count > maximum:
        raise WorkerCountError(f"{source} {count}: at most {maximum} {kind} processes")
    return count


def _memory_message(
    count: int, source: str, free_mb: int | None, reserved_mb: int, fits: int | None
) -> str:
    api = f" and the API processes about {reserved_mb:,} MB" if reserved_mb else ""
    room = (
        f"at most {fits} fit" if fits and fits > 0 else "not even one fits: free some memory"
    )
    return (
        f"{source} {count}: each operator process takes about {OPERATOR_MB} MB{api}; "
        f"this machine has {free_mb:,} MB available, so {room}"
    )
