"""`phantoscope up` / `make run`: the engine on its embedded defaults, in one command.

Binds the API's port, starts the default encoder as an operator process, then the API
server; registers the operator and makes a ready pipeline and application on first start. With
``PHANTOSCOPE_VECTORS=milvus-server`` it also starts a local Milvus server (from the PyPI
package `milvus`) with its data under ``$PHANTOSCOPE_HOME/milvus-server``, and stops it on
exit. Ctrl-C or SIGTERM stops everything it started.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console

from phantoscope.api.app import create_app
from phantoscope.api.listen import listening_socket, serve, stop_on_sigterm
from phantoscope.config import LOCAL_MILVUS_SERVER, ServerSettings
from phantoscope.engine import registry
from phantoscope.engine.context import Stores
from phantoscope.operators.process import OperatorProcess, free_port
from phantoscope.zoo import DEFAULT_ENCODER

DEFAULT_OPERATOR = "efficientnet-lite0"
DEFAULT_PIPELINE = "default"
DEFAULT_APPLICATION = "default"
DEFAULT_FIELD = "image"
OPERATOR_PORT = 50001

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


def _operator_port() -> int:
    try:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", OPERATOR_PORT))
        return OPERATOR_PORT
    except OSError:
        return free_port()


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


def up(settings: ServerSettings) -> None:
    """Run until Ctrl-C or SIGTERM; logging is configured by the caller
    (`configure_logging`)."""
    stop_on_sigterm()  # from here on: a SIGTERM during start-up stops the operator too
    # The API's port first, before the operator or a Milvus server can take it.
    with listening_socket(settings.host, settings.port) as api_socket:
        console = Console(soft_wrap=True)
        settings.home.mkdir(parents=True, exist_ok=True)
        logs = settings.home / "logs"
        logs.mkdir(exist_ok=True)
        endpoint = f"127.0.0.1:{_operator_port()}"
        operator = OperatorProcess(DEFAULT_ENCODER, endpoint=endpoint,
                                   log_path=logs / "operator.log")
        console.print(
            f"starting operator {DEFAULT_ENCODER} on {endpoint} "
            f"(log: {logs / 'operator.log'}; the first start exports the model)"
        )
        operator.start()
        try:
            with _vector_server(settings, console) as serving:
                _serve(serving, operator, endpoint, console, api_socket)
        finally:
            operator.stop()


def _serve(
    settings: ServerSettings, operator: OperatorProcess, endpoint: str, console: Console,
    api_socket: socket.socket,
) -> None:
    operator.wait_healthy(timeout_s=900)
    app = create_app(settings, on_start=lambda stores: ensure_defaults(stores, endpoint))
    url = f"http://{settings.host}:{settings.port}"
    console.print(
        f"vectors: {settings.vectors_uri}\nmetadata: {settings.meta_url}\n"
        f"images: {settings.objects_url}\n"
        f"API: {url}/v1 (docs at {url}/docs); application {DEFAULT_APPLICATION!r}, "
        f"field {DEFAULT_FIELD!r}, pipeline {DEFAULT_PIPELINE!r}\nCtrl-C stops everything."
    )
    serve(app, settings.host, settings.port, api_socket)
