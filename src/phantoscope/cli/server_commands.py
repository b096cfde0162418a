"""`phantoscope up` and `phantoscope api`: commands that start a server in this process."""

from __future__ import annotations

import os
from pathlib import Path
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


ApiWorkersOption = Annotated[
    str | None,
    typer.Option(
        "--api-workers",
        help="API processes sharing the port (default: $PHANTOSCOPE_API_WORKERS, else 1 on "
        "up to 3 cores and about 2 in 5 of the cores beyond).", show_default=False,
        metavar="N",
    ),
]


ImportRootOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--import-root",
        help="A folder the server may read images from, with its subfolders (repeatable; "
        "added to $PHANTOSCOPE_IMPORT_ROOTS): `phantoscope import` of a folder under it then "
        "has the server read each file from its own disk, and import jobs may import from it.",
        show_default=False, metavar="DIR",
    ),
]


def _add_import_roots(folders: list[Path]) -> None:
    """Put ``folders`` (checked: existing folders, no comma in their real paths) into the
    import roots setting of this process and of the API processes it starts; exit 2 with
    what is wrong before anything starts."""
    from phantoscope.engine.import_sources import ROOTS_SETTING, import_roots

    roots = [str(root) for root in import_roots(os.environ.get(ROOTS_SETTING, ""))]
    for folder in folders:
        if not folder.is_dir():
            what = "is not a folder" if folder.exists() else "does not exist"
            raise fail(f"--import-root {folder}: {what}; give a folder the server may read "
                       "images from", 2)
        real = os.path.realpath(folder)
        if "," in real:
            raise fail(f"--import-root {folder}: its path {real!r} holds a comma, which "
                       f"{ROOTS_SETTING} uses between folders; give a folder above it or a "
                       "link to it without one", 2)
        roots.append(real)
    os.environ[ROOTS_SETTING] = ",".join(roots)


def _given(option: str | None, flag: str, variable: str) -> tuple[str | None, str]:
    """A count's text and where it came from: the option, else the environment variable."""
    if option is not None:
        return option, flag
    return os.environ.get(variable) or None, variable


def up(
    host: HostOption = None, port: PortOption = None, workers: WorkersOption = None,
    api_workers: ApiWorkersOption = None, import_root: ImportRootOption = None,
) -> None:
    """Start the engine on its embedded defaults: API server, default operator, stores."""
    from phantoscope.api.listen import PortUnavailable
    from phantoscope.cli.launcher import up as start
    from phantoscope.cli.worker_count import (
        API_MB,
        API_WORKERS_VARIABLE,
        WORKERS_VARIABLE,
        WorkerCountError,
        api_worker_count,
        available_mb,
        worker_count,
    )
    from phantoscope.operators.process_group import usable_cores

    cores = usable_cores()
    free_mb = available_mb()
    try:
        apis = api_worker_count(
            *_given(api_workers, "--api-workers", API_WORKERS_VARIABLE), cores, free_mb)
        count = worker_count(*_given(workers, "--workers", WORKERS_VARIABLE), cores, free_mb,
                             reserved_mb=API_MB * apis)
    except WorkerCountError as exc:
        raise fail(str(exc), 2) from None
    if import_root:
        _add_import_roots(import_root)
    try:
        start(_server_settings(host, port), count, cores, apis)
    except PortUnavailable as exc:
        raise fail(str(exc), 2) from None


SocketFdOption = Annotated[
    int | None,
    typer.Option("--socket-fd", hidden=True,
                 help="Serve on this inherited listening socket (an `up` API worker)."),
]
ReadyFileOption = Annotated[
    Path | None,
    typer.Option("--ready-file", hidden=True,
                 help="Create this file once serving (an `up` API worker)."),
]


def api(
    host: HostOption = None, port: PortOption = None, socket_fd: SocketFdOption = None,
    ready_file: ReadyFileOption = None,
) -> None:
    """Run only the API server, with stores from PHANTOSCOPE_* settings (no operator)."""
    import socket

    from phantoscope.api.app import create_app
    from phantoscope.api.listen import PortUnavailable, serve
    from phantoscope.cli.api_workers import stop_with_parent

    settings = _server_settings(host, port)
    sock = None
    if socket_fd is not None:  # a worker of `up`, on the socket it bound
        sock = socket.socket(fileno=socket_fd)
        settings.host, settings.port = sock.getsockname()[:2]
        stop_with_parent()
    on_start = None if ready_file is None else lambda _stores: ready_file.touch()
    try:
        serve(create_app(settings, on_start=on_start), settings.host, settings.port, sock)
    except PortUnavailable as exc:
        raise fail(str(exc), 2) from None


