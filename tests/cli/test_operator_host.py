"""Operators listen on loopback by default, as the API does; `--host` or PHANTOSCOPE_HOST
(set in the operator Dockerfiles) open them to every interface."""

from __future__ import annotations

import socket
import sys

import pytest

from helpers import PHANTOSCOPE, OperatorProcess, free_port, run_cli

OTHER_ADDRESS = "127.0.0.2"  # loopback too, but not the address 127.0.0.1 binds


def _accepts(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    made = tmp_path_factory.mktemp("op") / "histogram-encoder"
    assert run_cli("operator", "new", str(made)).returncode == 0
    return made


@pytest.fixture(autouse=True)
def no_host_setting(monkeypatch):
    monkeypatch.delenv("PHANTOSCOPE_HOST", raising=False)


@pytest.mark.parametrize(("options", "env", "everywhere"), [
    ((), {}, False),
    (("--host", "0.0.0.0"), {}, True),
    ((), {"PHANTOSCOPE_HOST": "0.0.0.0"}, True),
])
def test_operator_serve_listens_on_loopback_unless_told(folder, options, env, everywhere):
    port = free_port()
    command = [PHANTOSCOPE, "operator", "serve", str(folder), "--port", str(port), *options]
    with OperatorProcess(command=command, endpoint=f"127.0.0.1:{port}", env=env):
        assert _accepts("127.0.0.1", port)
        assert _accepts(OTHER_ADDRESS, port) is everywhere


@pytest.mark.parametrize(("env", "everywhere"), [
    ({}, False),
    ({"PHANTOSCOPE_HOST": "0.0.0.0"}, True),  # what the scaffold's Dockerfiles set
])
def test_python_server_py_listens_on_loopback_unless_told(folder, env, everywhere):
    port = free_port()
    endpoint = f"0.0.0.0:{port}"  # as in the scaffold's Dockerfile: only its port is used
    with OperatorProcess(command=[sys.executable, "server.py"], endpoint=f"127.0.0.1:{port}",
                         env={"OP_ENDPOINT": endpoint, **env}, cwd=folder):
        assert _accepts("127.0.0.1", port)
        assert _accepts(OTHER_ADDRESS, port) is everywhere


def test_scaffold_dockerfiles_listen_on_every_interface(folder):
    for name in ("Dockerfile", "Dockerfile-gpu"):
        assert "PHANTOSCOPE_HOST=0.0.0.0" in (folder / name).read_text()
