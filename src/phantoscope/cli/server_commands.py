"""`phantoscope up` and `phantoscope api`: commands that start a server in this process."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated

import typer

from phantoscope.cli.output import fail

if TYPE_CHECKING:  # the server's modules load only when a server starts
    from phantoscope.config import ServerSettings

HostOption = Annotated[str | None, typer.Option(help="Address to listen on (default 127.0.0.1).")]
PortOption = Annotated[int | None, typer.Option("--port", "-p", help="Port (default 5000).")]


def _server_settings(host: str | None, port: int | None) -> ServerSettings:
    """PHANTOSCOPE_* settings, with the command line's host and port over them; logging
    configured by them. Bad API keys or log level: exit 2 with what is wrong."""
    from phantoscope.api.auth import ApiKeys
    from phantoscope.config import ServerSettings
    from phantoscope.logging_setup import configure_logging

    settings = ServerSettings()
    if host is not None:
        settings.host = host
    if port is not None:
        settings.port = port
    try:
        ApiKeys.parse(settings.api_keys)
        configure_logging(settings.log_format, settings.log_level)
    except ValueError as exc:
        raise fail(str(exc), 2) from None
    return settings


WorkersOption = Annotated[
    str | None,
    typer.Option(
        help="Operator processes to run the default encoder on (default: $PHANTOSCOPE_WORKERS, "
        "else one per core, as many as the memory holds).", show_default=False, metavar="N",
    ),
]


def up(host: HostOption = None, port: PortOption = None, workers: WorkersOption = None) -> None:
    """Start the engine on its embedded defaults: API server, default operator, stores."""
    from phantoscope.api.listen import PortUnavailable
    from phantoscope.cli.launcher import up as start
    from phantoscope.cli.worker_count import (
        API_MB,
        WORKERS_VARIABLE,
        WorkerCountError,
        available_mb,
        worker_count,
    )
    from phantoscope.operators.process_group import usable_cores

    source = "--workers" if workers is not None else WORKERS_VARIABLE
    given = workers if workers is not None else os.environ.get(WORKERS_VARIABLE) or None
    cores = usable_cores()
    try:
        count = worker_count(given, source, cores, available_mb(), reserved_mb=API_MB)
    except WorkerCountError as exc:
        raise fail(str(exc), 2) from None
    try:
        start(_server_settings(host, port), count, cores)
    except PortUnavailable as exc:
        raise fail(str(exc), 2) from None


def api(host: HostOption = None, port: PortOption = None) -> None:
    """Run only the API server, with stores from PHANTOSCOPE_* settings (no operator)."""
    from phantoscope.api.app import create_app
    from phantoscope.api.listen import PortUnavailable, serve

    settings = _server_settings(host, port)
    try:
        serve(create_app(settings), settings.host, settings.port)
    except PortUnavailable as exc:
        raise fail(str(exc), 2) from None


