"""`phantoscope api` holds its port from before its start-up, so that nothing started during
start-up (Milvus Lite starts a server of its own on a free port) can take it."""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import subprocess
import time

import httpx
import pytest

from api_server import ApiServer
from helpers import PHANTOSCOPE
from phantoscope.api.listen import PortUnavailable, listening_socket, listening_sockets


def test_the_port_is_held_while_the_stores_are_still_opening(tmp_path):
    # A "Milvus server" that accepts connections and never answers: start-up waits on it.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        server = ApiServer(tmp_path, {
            "PHANTOSCOPE_VECTORS": f"http://127.0.0.1:{silent.getsockname()[1]}"})
        process = subprocess.Popen(
            server.command(), env=server.env, stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while True:
                assert process.poll() is None, "the server exited while starting"
                with socket.socket() as rival:  # as a gRPC server binds: SO_REUSEADDR set
                    rival.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    try:
                        rival.bind(("127.0.0.1", server.port))
                    except OSError as exc:
                        assert exc.errno == errno.EADDRINUSE
                        break
                assert time.monotonic() < deadline, "the port was never held"
                time.sleep(0.1)
            with pytest.raises(httpx.TransportError):  # no answer yet: still starting
                server.client.get("/healthz", timeout=0.5)
        finally:
            process.kill()
            process.wait()


def test_connections_are_served_without_nagle_delay() -> None:
    """Connections accepted on the socket get TCP_NODELAY from asyncio, as uvicorn's own do:
    otherwise a response's body waits for the client's delayed ACK of its head (40 ms)."""
    nodelay: list[int] = []

    class Probe(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            sock = transport.get_extra_info("socket")
            nodelay.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    async def accept_one() -> None:
        sock = listening_socket("127.0.0.1", 0)
        server = await asyncio.get_running_loop().create_server(Probe, sock=sock)
        async with server:
            _, writer = await asyncio.open_connection(*sock.getsockname())
            while not nodelay:
                await asyncio.sleep(0.01)
            writer.close()

    asyncio.run(asyncio.wait_for(accept_one(), 10))
    assert nodelay and nodelay[0] != 0


@pytest.mark.parametrize("command", ["up", "api"])
def test_a_taken_port_is_refused_at_once_with_what_to_do(tmp_path, command: str) -> None:
    """`phantoscope up` binds its port before it starts the operator or a Milvus server, so a
    taken port stops it at once, with nothing started."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = subprocess.run(
            [PHANTOSCOPE, command, "--host", "127.0.0.1", "--port", str(port)],
            capture_output=True, text=True, timeout=120,
            env={**os.environ, "PHANTOSCOPE_HOME": str(tmp_path)})
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "choose another port (--port, or PHANTOSCOPE_PORT)" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert "starting operator" not in result.stdout
    assert not (tmp_path / "logs" / "operator.log").exists()


def test_a_group_of_sockets_shares_the_port_out_and_keeps_it_from_others() -> None:
    """`up --api-workers 2`: each worker's socket gets about half of the new connections, and
    the port is refused to a plain listener and to a second group alike."""
    group = listening_sockets("127.0.0.1", 0, 2)
    try:
        port = group[0].getsockname()[1]
        assert [sock.getsockname()[1] for sock in group] == [port, port]
        for rival in (lambda: listening_socket("127.0.0.1", port),
                      lambda: listening_sockets("127.0.0.1", port, 2)):
            with pytest.raises(PortUnavailable, match=f"cannot listen on 127.0.0.1:{port}"):
                rival()
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(64)]
        accepted = []
        for sock in group:
            sock.setblocking(False)
            count = 0
            while True:
                try:
                    sock.accept()[0].close()
                except BlockingIOError:
                    break
                count += 1
            accepted.append(count)
        for client in clients:
            client.close()
        # a fair coin gives fewer than 12 of 64 to one side once in 10**6 runs
        assert sum(accepted) == 64 and min(accepted) >= 12, accepted
    finally:
        for sock in group:
            sock.close()
