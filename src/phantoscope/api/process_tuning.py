"""How an API server process sets up the C libraries and the interpreter beneath it.

Measured with ``perf record`` on the API process of ``phantoscope up --workers 1`` importing
256 photos of 0.6 MB on 2 cores (issue 20):

- glibc gave every buffer over its mmap threshold (an upload's bytes, a request's body, the
  request to an operator) fresh pages from the kernel and handed them back when freed, so the
  kernel zeroed 0.6 MB to 20 MB of pages for each copy: page faults took 24 % of the process's
  CPU. Buffers up to 32 MB now come from the heap, and up to 64 MB freed at its top stays
  there for the next request (the heap is not trimmed below that). Two malloc arenas, not
  eight a core, so that few heaps keep such memory: over an import of 10,000 photos the
  process peaked at 941 MB against 1,295 MB before (bench/README.md).
- OpenBLAS kept a thread a core spinning after each matrix product (the duplicate check's and
  Milvus Lite's, all small): 7 % of the CPU. An API process serves many requests at once, so
  a product gains nothing from more threads; one.
- The interpreter's full garbage collections walked every object the imports made, again and
  again: 3 %. Those are frozen once started.

Measured again importing 12 MP photos (2.6 MB each, 32 MB a request): asyncio reads a socket
256 KiB at a time, and after each read uvicorn pauses the socket until the request has taken
the chunk, then resumes it, a round of the event loop and two epoll calls for every 256 KiB
of an upload. Reads of up to 2 MiB took the API's CPU from 39.3 to 34.1 ms a photo
(4 interleaved passes each, every pass lower), and 1, 2 and 4 MiB did alike; with 1 MiB,
34.3-38.8 against 38.6-44.1 ms (bench/README.md).
"""

from __future__ import annotations

import asyncio.selector_events
import ctypes
import gc
import logging
import platform

import numpy  # noqa: F401  (loads its OpenBLAS, whose threads threadpoolctl limits)
from threadpoolctl import threadpool_limits

log = logging.getLogger(__name__)

# glibc's mallopt(3) parameters
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
MMAP_THRESHOLD = 32 << 20  # the most glibc takes on 64-bit platforms
TRIM_THRESHOLD = 64 << 20
ARENAS = 2
SOCKET_READ_BYTES = 1 << 20


def _tune_allocator() -> None:
    """Keep large buffers in glibc's heap (see the module's docstring); nothing where the C
    library is not glibc."""
    if platform.libc_ver()[0] != "glibc":
        return
    mallopt = ctypes.CDLL(None).mallopt
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    settings = ((_M_MMAP_THRESHOLD, MMAP_THRESHOLD), (_M_TRIM_THRESHOLD, TRIM_THRESHOLD),
                (_M_ARENA_MAX, ARENAS))
    if not all(mallopt(parameter, value) == 1 for parameter, value in settings):
        log.warning("glibc refused a malloc setting; large buffers keep their default path")


def _widen_socket_reads() -> None:
    """Let asyncio's socket transports read up to SOCKET_READ_BYTES at once (see the
    module's docstring). The size is a class attribute of CPython's selector transport; where
    it is missing, reads keep their size."""
    transport = asyncio.selector_events._SelectorSocketTransport
    if getattr(transport, "max_size", SOCKET_READ_BYTES) < SOCKET_READ_BYTES:
        transport.max_size = SOCKET_READ_BYTES


def tune_server_process() -> None:
    """Set up this process to serve the API: allocator, BLAS threads, garbage collector,
    socket reads. Call once, after the imports, before the server starts."""
    _tune_allocator()
    _widen_socket_reads()
    threadpool_limits(limits=1, user_api="blas")
    gc.freeze()
