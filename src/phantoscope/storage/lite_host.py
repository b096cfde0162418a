"""Serving one Milvus Lite database to other processes (API workers) over loopback gRPC.

Milvus Lite's data folder belongs to the one process that opened it (a `flock` on its
`LOCK` file). The host opens it, serves Milvus's gRPC protocol with milvus-lite's own
servicer, as pymilvus's in-process Lite server does, and keeps the guarantees a store has
when it opens the database itself:

- one request at a time (`OneAtATime`): Milvus Lite is not safe for concurrent writes
  (concurrent insert + flush fails with "current_seq is monotonic"); the stores of all
  processes also share one lock per call (`lite_databases.ProcessesLock`);
- searches through `lite_search`'s vectorised executor, with indexed segments holding their
  vectors once;
- loaded collections kept out of the garbage collector's scans, as `milvus_vectors` does;
- a clean close on SIGTERM or SIGINT (unflushed rows flushed), and, with ``--parent PID``,
  when that process stops being its parent (it died), so a host never outlives the
  `phantoscope up` that started it.

``python -m phantoscope.storage.lite_host PATH [--port P] [--parent PID]`` prints
``serving Milvus Lite PATH at http://127.0.0.1:PORT (vectorised search: on)`` once it
serves. `LiteHostProcess` (`lite_host_process`) starts and stops one.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent import futures
from typing import Any

import grpc

from phantoscope.storage import lite_search
from phantoscope.storage.lite_databases import database_path
from phantoscope.storage.vectors import VectorStoreError

__all__ = ["LiteHost", "OneAtATime", "main", "ready_line"]

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
WORKERS = 10  # requests waiting for the lock hold a thread each
MAX_MESSAGE_BYTES = 256 * 1024 * 1024  # as milvus-lite's server (and Milvus standalone)
STOP_GRACE_S = 5.0
PARENT_POLL_S = 0.5
_LOAD = "/LoadCollection"


class OneAtATime(grpc.ServerInterceptor):
    """Runs every unary request under one lock (the Milvus service's streaming methods are
    replication, which Milvus Lite does not implement), and freezes the garbage collector's
    view after a collection is loaded."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def intercept_service(self, continuation: Callable[[Any], Any],
                          handler_call_details: grpc.HandlerCallDetails) -> Any:
        handler = continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        behavior = handler.unary_unary
        loads = handler_call_details.method.endswith(_LOAD)

        def serialised(request: Any, context: grpc.ServicerContext) -> Any:
            with self._lock:
                response = behavior(request, context)
                if loads:
                    # A loaded collection is hundreds of thousands of long-lived objects
                    # (see milvus_vectors): keep them out of the collector's scans.
                    gc.freeze()
                return response

        return handler._replace(unary_unary=serialised)


class LiteHost:
    """One Milvus Lite database served on 127.0.0.1 (``port`` 0: a free one)."""

    def __init__(self, path: str, port: int = 0) -> None:
        from milvus_lite.adapter.grpc.servicer import MilvusServicer
        from milvus_lite.db import MilvusLite
        from pymilvus.grpc_gen import milvus_pb2_grpc

        self.path = database_path(path)
        self.vectorised = lite_search.install()
        self._db = MilvusLite(self.path)  # DataDirLockedError when another process has it
        try:
            self._server = grpc.server(
                futures.ThreadPoolExecutor(max_workers=WORKERS,
                                           thread_name_prefix="lite-host"),
                interceptors=[OneAtATime()],
                options=[("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                         ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                         ("grpc.so_reuseport", 0)])
            milvus_pb2_grpc.add_MilvusServiceServicer_to_server(MilvusServicer(self._db),
                                                                self._server)
            self.port = self._server.add_insecure_port(f"{HOST}:{port}")
            self._server.start()
        except BaseException:
            self._db.close()
            raise
        self.address = f"http://{HOST}:{self.port}"

    def stop(self) -> None:
        """Finish the requests in progress (up to `STOP_GRACE_S`), then close the database
        (flushing what is unflushed) and free its folder."""
        self._server.stop(STOP_GRACE_S).wait()
        self._db.close()


def ready_line(host: LiteHost) -> str:
    """What the host prints once it serves (`LiteHostProcess` reads the address from it)."""
    return (f"serving Milvus Lite {host.path} at {host.address} "
            f"(vectorised search: {'on' if host.vectorised else 'off'})")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m phantoscope.storage.lite_host",
        description="Serve one Milvus Lite database to other processes on 127.0.0.1.")
    parser.add_argument("path", help="the Milvus Lite database (a path ending in .db)")
    parser.add_argument("--port", type=int, default=0, help="the port (default: a free one)")
    parser.add_argument("--parent", type=int, default=None, metavar="PID",
                        help="stop when process PID is no longer this one's parent")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)  # which build it tried
    if args.parent is not None and os.getppid() != args.parent:
        print(f"process {args.parent} that started this host is gone", file=sys.stderr)
        return 1
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set())
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        host = _open(args.path, args.port)
        if host is None:
            return 2
        print(ready_line(host), flush=True)
        try:
            while not stop.wait(PARENT_POLL_S):
                if args.parent is not None and os.getppid() != args.parent:
                    log.info("process %d that started this host is gone", args.parent)
                    break
        finally:
            log.info("stopping: closing Milvus Lite at %s", host.path)
            host.stop()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _open(path: str, port: int) -> LiteHost | None:
    """The host, or None after saying on stderr why it cannot serve."""
    from milvus_lite.exceptions import DataDirLockedError

    try:
        return LiteHost(path, port)
    except DataDirLockedError:
        print(f"cannot serve Milvus Lite at {database_path(path)}: another process is using "
              "its data folder; stop that process (a server or another host on this folder) "
              "first", file=sys.stderr)
    except (OSError, RuntimeError, ValueError, VectorStoreError) as exc:
        print(f"cannot serve Milvus Lite at {path}: {exc}", file=sys.stderr)
    return None


if __name__ == "__main__":
    sys.exit(main())
