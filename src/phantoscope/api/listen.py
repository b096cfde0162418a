"""Serving the API on a socket bound before start-up.

Uvicorn binds its port only after the app's start-up; Milvus Lite starts a local server of
its own on a free port during that start-up, and could take the very port the API was about
to bind. Binding first keeps the port ours from the beginning (`phantoscope up` binds it
before it starts the operator and a local Milvus server, whose many connections take ports
of their own).

The socket is made with protocol IPPROTO_TCP, as asyncio makes its own: asyncio turns Nagle's
algorithm off (TCP_NODELAY) only on connections of such sockets. With it on, a response
written in two parts (head, then body) waited for the client's delayed ACK: 40 ms a request.

Several API processes on one port (`phantoscope up --api-workers`) each get a socket of their
own in one ``SO_REUSEPORT`` group, rather than one socket shared: the kernel then spreads new
connections over the sockets by a hash of their addresses. On one shared socket, whichever
process woke first accepted all that was waiting (asyncio accepts in a loop), and a CI run saw
all 24 uploads of a test in one of two processes.

SIGTERM (``kill``, systemd, ``docker stop``) stops the server like Ctrl-C: uvicorn shuts down
gracefully, then raises the signal it caught again; with the default handler that killed the
process at once, before whatever started the server could stop what it started beside it.
"""

from __future__ import annotations

import signal
import socket
import sys

import uvicorn
from fastapi import FastAPI

from phantoscope.api.process_tuning import tune_server_process

BACKLOG = 2048  # uvicorn's default
STARTUP_FAILED = 3  # the exit status uvicorn.run gives


class PortUnavailable(OSError):
    """The API's port cannot be bound (message says which and what to do)."""


def listening_socket(host: str, port: int, *, shared: bool = False) -> socket.socket:
    """A TCP socket bound to ``host:port`` (IPv6 hosts with or without brackets); raises
    :class:`PortUnavailable` if it cannot be. ``shared``: with ``SO_REUSEPORT``, for
    `listening_sockets`."""
    address = host.strip("[]")
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if shared:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((address, port))
        sock.listen(BACKLOG)  # listening: no other socket may bind it, SO_REUSEADDR or not
    except OSError as exc:
        sock.close()
        raise PortUnavailable(
            f"cannot listen on {host}:{port}: {exc.strerror}; stop what uses it or choose "
            "another port (--port, or PHANTOSCOPE_PORT)") from None
    return sock


def listening_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """``count`` TCP sockets listening on ``host:port``, one for each API process: one plain
    socket for one, else an ``SO_REUSEPORT`` group. Raises :class:`PortUnavailable` if the
    port is taken, by a plain listener or by another such group: it is first bound without
    ``SO_REUSEPORT``, which no listener on it allows, and let go just before the group binds
    it (``port`` 0: the port the kernel chose then)."""
    first = listening_socket(host, port)
    if count == 1:
        return [first]
    port = first.getsockname()[1]
    first.close()
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sockets.append(listening_socket(host, port, shared=True))
    except PortUnavailable:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def stop_on_sigterm() -> None:
    """Make SIGTERM raise KeyboardInterrupt in the main thread, as Ctrl-C does."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)


def serve(app: FastAPI, host: str, port: int, sock: socket.socket | None = None) -> None:
    """Run ``app`` on ``host:port`` until interrupted (Ctrl-C or SIGTERM), the port bound
    before start-up (here, or by the caller: ``sock``, from `listening_socket`)."""
    stop_on_sigterm()
    tune_server_process()
    if sock is None:
        sock = listening_socket(host, port)
    config = uvicorn.Config(
        app, host=host, port=port, backlog=BACKLOG, log_config=None,
        access_log=False,  # the API logs each request itself, with its id
    )
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # once shut down, uvicorn raises the signal it caught again
        pass
    finally:
        sock.close()
    if not server.started:  # start-up failed (uvicorn logged why)
        sys.exit(STARTUP_FAILED)
