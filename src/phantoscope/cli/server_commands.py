"""`phantoscope up` and `phantoscope api`: commands that start a server in this process."""

from __future__ import annotations

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


def up(host: HostOption = None, port: PortOption = None) -> None:
    """Start the engine on its embedded defaults: API server, default operator, stores."""
    from phantoscope.api.listen import PortUnavailable
    from phantoscope.cli.launcher import up as start

    try:
        start(_server_settings(host, port))
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


