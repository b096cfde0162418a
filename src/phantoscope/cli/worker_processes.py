"""The operator processes `up --workers` and `operator serve --processes` start: their
ports, their ONNX Runtime threads, their logs."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from phantoscope.operators.process import OperatorProcess, free_port
from phantoscope.operators.process_group import (
    THREADS_VARIABLE,
    ProcessGroup,
    log_path,
    threads_per_process,
)

OPERATOR_PORT = 50001


def is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether nothing listens on ``host:port`` now."""
    try:
        with socket.socket() as probe:
            probe.bind((host, port))
    except OSError:
        return False
    return True


def operator_ports(count: int) -> list[int]:
    """``count`` free loopback ports: 50001, 50002, ... where free, else any free port."""
    ports: list[int] = []
    for port in range(OPERATOR_PORT, OPERATOR_PORT + count):
        if not is_free(port):
            port = free_port()
            while port in ports:
                port = free_port()
        ports.append(port)
    return ports


def operator_group(
    target: str, workers: int, cores: int, logs: Path | None, host: str = "127.0.0.1",
    ports: list[int] | None = None, options: tuple[str, ...] = (),
) -> ProcessGroup:
    """``workers`` processes serving ``target``, each with ONNX Runtime's threads shared out
    over ``cores`` (unless ``PHANTOSCOPE_ORT_THREADS`` says otherwise), logging into the
    folder ``logs`` (None: onto this process's output)."""
    threads = threads_per_process(workers, cores)
    env = {} if threads is None or THREADS_VARIABLE in os.environ else {
        THREADS_VARIABLE: str(threads)}
    ports = ports or operator_ports(workers)
    return ProcessGroup(
        [f"127.0.0.1:{port}" for port in ports],
        lambda endpoint, index: OperatorProcess(
            target, endpoint=endpoint, env=env, host=host, options=options,
            log_path=None if logs is None else log_path(logs, index), show_output=logs is None,
        ),
    )
