"""`phantoscope operator new|serve|test|builtins`: commands that write, serve and check
operators, talking to them over gRPC (never to a Phantoscope server)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from phantoscope.cli.output import console, errors, fail
from phantoscope.zoo import BUILTINS, DEFAULT_ENCODER

if TYPE_CHECKING:  # gRPC and the operator server load only for the commands that use them
    from phantoscope.operators.checkup import CheckReport

operator_app = typer.Typer(
    no_args_is_help=True, help="Write, serve and check operators; register them with a server."
)


@operator_app.command("new")
def operator_new(
    target: Annotated[
        str, typer.Argument(help="Operator name, or a folder path whose last part names it.")
    ],
    kind: Annotated[
        str, typer.Option("--type", "-t", help="encoder, processor or text-encoder")
    ] = "encoder",
    force: Annotated[bool, typer.Option(help="Write into a folder that is not empty.")] = False,
) -> None:
    """Scaffold an operator folder that serves and passes `operator test` as it is."""
    from phantoscope.operators.scaffold import ScaffoldError, create_operator

    folder = Path(target)
    try:
        written = create_operator(folder, kind, force=force)
    except ScaffoldError as exc:
        raise fail(str(exc), 2) from None
    # An explicit path, so that a folder named after a built-in is never served as the built-in.
    shown = str(folder) if folder.is_absolute() or folder.parts[0] in (".", "..") \
        else f".{os.sep}{folder}"
    console.print(f"created {kind} [bold]{folder.name}[/bold] in {shown}/ ({len(written)} files)")
    console.print(
        f"next: edit {shown}/custom_operator.py, then "
        f"`phantoscope operator serve {shown}` or `cd {shown} && python server.py`",
        soft_wrap=True,
    )


@operator_app.command("serve")
def operator_serve(
    target: Annotated[
        str,
        typer.Argument(
            help="A built-in name, a folder with custom_operator.py (FOLDER:Class picks one of "
            "several classes in it), or module:Class."
        ),
    ] = DEFAULT_ENCODER,
    port: Annotated[
        int | None,
        typer.Option("--port", "-p", help="Port to listen on (default: the port of OP_ENDPOINT)."),
    ] = None,
    host: Annotated[
        str | None,
        typer.Option(
            help="Address to listen on (default: $PHANTOSCOPE_HOST, else 127.0.0.1, as the "
            "API; 0.0.0.0 or [::] for every interface)."
        ),
    ] = None,
    weights: Annotated[
        str | None, typer.Option(help="Weights file or URL, for built-ins that take them.")
    ] = None,
    processes: Annotated[
        str | None,
        typer.Option(
            help="Serve it on N processes, on the ports from --port on (PORT, PORT+1, ...): "
            "register them as one operator's replicas. Each gets ONNX Runtime threads of its "
            "own share of the cores; one that exits is started again.",
            show_default=False, metavar="N",
        ),
    ] = None,
) -> None:
    """Serve an operator over the Phantoscope gRPC protocol until Ctrl-C."""
    from phantoscope.cli.operator_loader import TargetError, load_operator
    from phantoscope.config import OperatorSettings, endpoint_port
    from phantoscope.operators.serve import serve_forever

    settings = OperatorSettings()
    if port is not None and "OP_ENDPOINT" not in os.environ:
        settings.endpoint = f"127.0.0.1:{port}"
    options = {"weights": weights} if weights else {}
    try:
        operator = load_operator(target, **options)
    except TargetError as exc:
        raise fail(str(exc), 2) from None
    if processes is None:
        serve_forever(operator, settings, host=host, port=port)
        return
    first = endpoint_port(settings.endpoint) if port is None else port
    _serve_processes(target, processes, first, host, ("--weights", weights) if weights else ())


def _serve_processes(
    target: str, processes: str, first_port: int, host: str | None, options: tuple[str, ...]
) -> None:
    """`operator serve --processes N`: N child processes on ports from ``first_port``."""
    from phantoscope.cli.worker_count import WorkerCountError, available_mb, worker_count
    from phantoscope.cli.worker_processes import is_free, operator_group
    from phantoscope.operators.process_group import usable_cores
    from phantoscope.operators.serve import listen_host, serve_group_forever

    cores = usable_cores()
    try:
        count = worker_count(processes, "--processes", cores, available_mb())
    except WorkerCountError as exc:
        raise fail(str(exc), 2) from None
    host = listen_host(host)
    ports = list(range(first_port, first_port + count))
    taken = [port for port in ports if port > 65535 or not is_free(port, host.strip("[]"))]
    if taken:
        raise fail(
            f"port {taken[0]} on {host} is taken or out of range: {count} processes need the "
            f"ports {ports[0]}-{ports[-1]} free; choose another --port", 2,
        )
    serve_group_forever(operator_group(target, count, cores, None, host, ports, options))


def _print_report(report: CheckReport) -> None:
    identity = report.identity
    if identity is not None:
        console.print(
            f"Identity: name={identity.name} type={identity.type} input={identity.input} "
            f"output={identity.output} dimension={identity.dimension} "
            f"metric={identity.metric_type} endpoint={identity.endpoint}",
        )
    if report.health is not None:
        console.print(f"Healthy: {report.health}")
    if report.result is not None:
        result = report.result
        console.print(
            f"Execute: vector size: {len(result.vectors)}; data size: {len(result.crops)} "
            f"({report.seconds * 1000:.1f} ms)",
        )
        if len(result.vectors):
            console.print(f"vector dim: {result.vectors.shape[1]}")
        for crop in result.crops:
            if crop.box is not None:
                box = crop.box
                console.print(
                    f"crop box: ({box.left}, {box.top}, {box.right}, {box.bottom}) "
                    f"score {box.score:.3f}",
                )
    for what, answer in report.refusals.items():
        console.print(f"must refuse {what}: {answer}", soft_wrap=True)


@operator_app.command("test")
def operator_test(
    endpoint: Annotated[str, typer.Option("--endpoint", "-e", help="host:port of the operator.")],
    image: Annotated[
        str | None,
        typer.Option(
            "--image", "-i",
            help="Image file or http(s) URL (default: a sample photo); a text encoder must "
            "refuse it.",
        ),
    ] = None,
    wait: Annotated[float, typer.Option(help="Seconds to wait for the model to load.")] = 60.0,
    timeout: Annotated[float, typer.Option(help="Seconds allowed for each call.")] = 60.0,
) -> None:
    """Check an operator: identity, health and one execute (a few sentences, and what it must
    refuse, for a text encoder); exit 1 on any problem."""
    from phantoscope.operators.checkup import check_operator

    if image and not image.startswith(("http://", "https://")) and not Path(image).is_file():
        raise fail(f"image file {image!r} does not exist", 2)
    report = check_operator(endpoint, image=image, wait_s=wait, timeout_s=timeout)
    _print_report(report)
    if not report.ok:
        for problem in report.problems:
            errors.print(f"[red]FAIL[/red] {problem}")
        raise typer.Exit(1)
    console.print("[green]OK[/green]")


@operator_app.command("builtins")
def operator_builtins() -> None:
    """List the built-in operators."""
    table = Table("name", "implementation")
    for name, path in BUILTINS.items():
        table.add_row(name + (" (default)" if name == DEFAULT_ENCODER else ""), path)
    console.print(table)


