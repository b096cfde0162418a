"""`phantoscope up` / `make run`: the engine on its embedded defaults, in one command.

Binds the API's port, starts the default encoder as ``workers`` operator processes (each on a
port of its own: replicas the engine balances; one that dies is started again), then the API
server; registers the operator and makes a ready pipeline and application on first start. With
``PHANTOSCOPE_VECTORS=milvus-server`` it also starts a local Milvus server (from the PyPI
package `milvus`) with its data under ``$PHANTOSCOPE_HOME/milvus-server``, and stops it on
exit. With ``api_workers`` above 1 the API runs as that many worker processes on the bound
port (`api_workers.py`), and an embedded Milvus Lite database is served to them by a Lite host
process. Ctrl-C or SIGTERM stops everything it started; every child stops by itself when `up`
is killed outright.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console

from phantoscope.api.app import create_app
from phantoscope.api.listen import listening_sockets, serve, stop_on_sigterm
from phantoscope.cli.api_workers import api_group
from phantoscope.cli.worker_processes import operator_group
from phantoscope.config import LOCAL_MILVUS_SERVER, ServerSettings
from phantoscope.engine import registry
from phantoscope.engine.context import Stores
from phantoscope.operators.process_group import (
    THREADS_VARIABLE,
    threads_per_process,
    wait_for_interrupt,
)
from phantoscope.zoo import DEFAULT_ENCODER

DEFAULT_OPERATOR = "efficientnet-lite0"
DEFAULT_PIPELINE = "default"
DEFAULT_APPLICATION = "default"
DEFAULT_FIELD = "image"

log = logging.getLogger("phantoscope")


def ensure_defaults(stores: Stores, operator_endpoint: str) -> None:
    """The default operator at its current endpoint, and a pipeline and application on it."""
    if stores.meta.get_operator(DEFAULT_OPERATOR) is None:
        registry.register_operator(stores, DEFAULT_OPERATOR, operator_endpoint)
    else:  # its endpoint, and its labels (a data folder from before labels gets them)
        registry.move_operator(stores, DEFAULT_OPERATOR, operator_endpoint)
    if stores.meta.get_pipeline(DEFAULT_PIPELINE) is None:
        registry.create_pipeline(
            stores,
            DEFAULT_PIPELINE,
            input="image",
            description=f"{DEFAULT_ENCODER}, 1280-d",
            processors=[],
            encoder=DEFAULT_OPERATOR,
            index_file_size=1024,
        )
    if stores.meta.get_application(DEFAULT_APPLICATION) is None:
        registry.create_application(
            stores,
            DEFAULT_APPLICATION,
            {DEFAULT_FIELD: {"type": "object", "pipeline": DEFAULT_PIPELINE}},
            None,
        )


@contextmanager
def _vector_server(settings: ServerSettings, console: Console) -> Iterator[ServerSettings]:
    """The settings to serve with: as given, or, for a local Milvus server, pointing at one
    started here (and stopped when the block ends)."""
    if settings.vectors != LOCAL_MILVUS_SERVER:
        yield settings
        return
    from phantoscope.storage.milvus_server import LocalMilvusServer

    server = LocalMilvusServer(settings.home / "milvus-server")
    console.print(f"starting a Milvus server (data and logs: {server.base_dir})")
    uri = server.start()
    try:
        yield settings.model_copy(update={"vectors": uri})
    finally:
        server.stop()


@contextmanager
def _lite_host(settings: ServerSettings, logs: Path, console: Console) -> Iterator[dict[str, str]]:
    """What API worker processes need in their environment to share the vector store: for
    an embedded Milvus Lite database, the address of a Lite host process started here (and
    stopped when the block ends); for a server, its URI."""
    env = {"PHANTOSCOPE_VECTORS": settings.vectors_uri}
    if settings.vectors_uri.lower().startswith(("http://", "https://", "tcp://")):
        yield env
        return
    from phantoscope.storage.lite_host_process import LiteHostProcess

    host = LiteHostProcess(settings.vectors_uri, log_path=logs / "lite-host.log")
    console.print(f"starting a Milvus Lite host for the API processes "
                  f"(logs: {host.log_path})")
    address = host.start()
    try:
        yield {**env, "PHANTOSCOPE_LITE_HOST": address}
    finally:
        host.stop()


def up(settings: ServerSettings, workers: int, cores: int, api_workers: int = 1) -> None:
    """Run until Ctrl-C or SIGTERM with ``workers`` operator processes (``cores``: how many
    the machine gives us) and ``api_workers`` API processes; logging is configured by the
    caller (`configure_logging`)."""
    stop_on_sigterm()  # from here on: a SIGTERM during start-up stops the operators too
    # The API's port first, before the operators or a Milvus server can take it.
    api_sockets = listening_sockets(settings.host, settings.port, api_workers)
    try:
        console = Console(soft_wrap=True)
        settings.home.mkdir(parents=True, exist_ok=True)
        logs = settings.home / "logs"
        logs.mkdir(exist_ok=True)
        operators = operator_group(DEFAULT_ENCODER, workers, cores, logs)
        threads = os.environ.get(THREADS_VARIABLE) or threads_per_process(workers, cores)
        console.print(
            f"starting operator {DEFAULT_ENCODER} as {workers} process"
            f"{'es' if workers > 1 else ''} on {operators.endpoint_list}"
            + (f", ONNX Runtime threads: {threads} each"
               if threads else "")
            + f" (logs: {logs / 'operator*.log'}; the first start exports the model)"
        )
        try:
            operators.start()
            with _vector_server(settings, console) as serving:
                if api_workers == 1:
                    _serve(serving, operators.endpoint_list, console, api_sockets[0])
                else:
                    _serve_workers(serving, operators.endpoint_list, console, api_sockets,
                                   logs)
        finally:
            operators.stop()
    finally:
        for sock in api_sockets:
            sock.close()


def _announce(settings: ServerSettings, console: Console, processes: str = "") -> None:
    url = f"http://{settings.host}:{settings.port}"
    console.print(
        f"vectors: {settings.vectors_uri}\nmetadata: {settings.meta_url}\n"
        f"images: {settings.objects_url}\n"
        f"API: {url}/v1{processes} (docs at {url}/docs); application "
        f"{DEFAULT_APPLICATION!r}, field {DEFAULT_FIELD!r}, pipeline {DEFAULT_PIPELINE!r}\n"
        "Ctrl-C stops everything."
    )


def _serve(
    settings: ServerSettings, endpoints: str, console: Console, api_socket: socket.socket,
) -> None:
    app = create_app(settings, on_start=lambda stores: ensure_defaults(stores, endpoints))
    _announce(settings, console)
    serve(app, settings.host, settings.port, api_socket)


def _serve_workers(
    settings: ServerSettings, endpoints: str, console: Console,
    api_sockets: list[socket.socket], logs: Path,
) -> None:
    """The API as one worker process on each of ``api_sockets`` until Ctrl-C or SIGTERM: the
    stores made ready here first (schema migrations, the defaults), once."""
    with _lite_host(settings, logs, console) as env:
        shared = settings.model_copy(update={"lite_host": env.get("PHANTOSCOPE_LITE_HOST")})
        stores = Stores.open(shared)
        try:
            ensure_defaults(stores, endpoints)
        finally:
            stores.close()
        workers = api_group(api_sockets, logs, env)
        try:
            workers.start()
            _announce(settings, console,
                      f" as {len(api_sockets)} processes (logs: {logs / 'api*.log'})")
            wait_for_interrupt()
        except KeyboardInterrupt:
            pass
        finally:
            workers.stop()
