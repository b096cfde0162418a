"""Fixtures for the operator tests: a loopback HTTP server and in-process operator servers."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from phantoscope.config import OperatorSettings
from phantoscope.operators.base import Operator
from phantoscope.operators.rpc_client import OperatorClient
from phantoscope.operators.server import OperatorServer

Route = Callable[[BaseHTTPRequestHandler], None]


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.server.hits.append(self.path)
        route = self.server.routes.get(self.path)
        if route is None:
            self.send_error(404)
        else:
            route(self)

    def log_message(self, *args: object) -> None:
        pass


class LoopbackHTTP(ThreadingHTTPServer):
    """An HTTP server on 127.0.0.1 answering GETs from a table of routes (path -> function).

    ``release`` is set when the test ends, so handlers that stall can wait on it and return.
    ``hits`` lists the paths requested, in order.
    """

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.routes: dict[str, Route] = {}
        self.hits: list[str] = []
        self.release = threading.Event()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base + path

    def serve_bytes(self, path: str, body: bytes, content_type: str = "image/jpeg") -> str:
        """Answer ``path`` with ``body`` (with a Content-Length); return its URL."""

        def route(handler: BaseHTTPRequestHandler) -> None:
            handler.send_response(200)
            handler.send_header("Content-Type", content_type)
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)

        self.routes[path] = route
        return self.url(path)

    def redirect(self, path: str, location: str, status: int = 302) -> str:
        def route(handler: BaseHTTPRequestHandler) -> None:
            handler.send_response(status)
            handler.send_header("Location", location)
            handler.send_header("Content-Length", "0")
            handler.end_headers()

        self.routes[path] = route
        return self.url(path)

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients that give up (timeouts, size limits) hang up mid-response


@pytest.fixture
def http_server() -> Iterator[LoopbackHTTP]:
    """A :class:`LoopbackHTTP` running in a thread for the duration of one test."""
    server = LoopbackHTTP()
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()
        thread.join()


ServeOperator = Callable[..., tuple[OperatorServer, OperatorClient]]


@pytest.fixture
def serve_operator() -> Iterator[ServeOperator]:
    """Serve an operator over gRPC on 127.0.0.1 (any free port) for one test.

    ``serve_operator(op, wait_loaded=True, **settings)`` returns ``(server, client)``;
    ``settings`` are :class:`OperatorSettings` fields. Everything is stopped afterwards.
    """
    servers: list[OperatorServer] = []
    clients: list[OperatorClient] = []

    def serve(
        operator: Operator, *, wait_loaded: bool = True, **settings: object
    ) -> tuple[OperatorServer, OperatorClient]:
        server = OperatorServer(
            operator,
            OperatorSettings(endpoint="127.0.0.1:0", **settings),
            host="127.0.0.1",
            port=0,
        )
        port = server.start()
        servers.append(server)
        client = OperatorClient(f"127.0.0.1:{port}", timeout_s=20)
        clients.append(client)
        if wait_loaded:
            assert server.servicer.wait_loaded(10), server.servicer.health
        return server, client

    yield serve
    for client in clients:
        client.close()
    for server in servers:
        server.stop(grace=0)
