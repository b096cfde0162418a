"""`phantoscope app|pipeline|operator list|show|create|delete`: what a server has registered;
`phantoscope app entities`: the images an application holds."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from phantoscope.cli.filter_options import NamePrefix, Since, Until, Where, build_filter
from phantoscope.cli.output import (
    Url,
    attributes_text,
    connect,
    console,
    details,
    fail,
    row,
    table,
)
from phantoscope.client import (
    DEFAULT_URL,
    Application,
    Entity,
    Operator,
    PhantoscopeError,
    Pipeline,
)

APPLICATION_NOT_EMPTY = "APPLICATION_NOT_EMPTY"  # the API's code for a refused delete

app_app = typer.Typer(no_args_is_help=True, help="Applications on a Phantoscope server.")
pipeline_app = typer.Typer(no_args_is_help=True, help="Pipelines on a Phantoscope server.")

Name = Annotated[str, typer.Argument(help="Its name.")]


def _fields(application: Application) -> str:
    return ", ".join(
        f"{name} → {spec['pipeline']}" if spec["type"] == "object" else f"{name} = {spec['value']}"
        for name, spec in application.fields.items()
    )


def _show_application(application: Application, count: int) -> None:
    console.print(
        details(
            [
                ("application", application.name),
                ("fields", _fields(application)),
                ("bucket", application.bucket),
                ("entities", str(count)),
            ]
        )
    )


@app_app.command("list")
def app_list(url: Url = DEFAULT_URL) -> None:
    """List the applications."""
    with connect(url) as client:
        applications = client.applications.list()
    shown = table("name", "fields", "bucket")
    for application in applications:
        shown.add_row(*row(application.name, _fields(application), application.bucket))
    console.print(shown)


@app_app.command("show")
def app_show(name: Name, url: Url = DEFAULT_URL) -> None:
    """Show an application and how many images it holds."""
    with connect(url) as client:
        _show_application(client.applications.get(name), client.applications.count(name))


@app_app.command("create")
def app_create(
    name: Name,
    pipeline: Annotated[
        str | None, typer.Option("--pipeline", "-p", help="Pipeline of its image field.")
    ] = None,
    field: Annotated[str, typer.Option(help="Name of its image field.")] = "image",
    fields: Annotated[
        str | None,
        typer.Option(
            help='All fields as JSON instead: {"photo": {"type": "object", "pipeline": "p"}}'
        ),
    ] = None,
    bucket: Annotated[str | None, typer.Option(help="Bucket for its images.")] = None,
    url: Url = DEFAULT_URL,
) -> None:
    """Create an application: one image field bound to a pipeline, or fields from JSON."""
    if (pipeline is None) == (fields is None):
        raise fail("give either --pipeline or --fields", 2)
    definitions = None
    if fields is not None:
        try:
            definitions = json.loads(fields)
        except ValueError as exc:
            raise fail(f"--fields is not valid JSON: {exc}", 2) from None
    with connect(url) as client:
        if definitions is not None:
            application = client.applications.create(name, definitions, bucket=bucket)
        else:
            application = client.applications.create(
                name, pipeline=pipeline, field=field, bucket=bucket
            )
    console.print(f"created application [bold]{application.name}[/bold]")
    _show_application(application, 0)


@app_app.command("delete")
def app_delete(
    name: Name,
    force: Annotated[
        bool, typer.Option("--force", help="Also delete every image it holds.")
    ] = False,
    url: Url = DEFAULT_URL,
) -> None:
    """Delete an application (refused while it holds images, unless --force)."""
    with connect(url) as client:
        try:
            client.applications.delete(name, force=force)
        except PhantoscopeError as exc:
            if exc.code != APPLICATION_NOT_EMPTY:
                raise
            # The API's message tells HTTP callers to add ?force=true; say it the CLI's way.
            held = client.applications.count(name)
            images = "1 image" if held == 1 else f"{held} images"
            them = "it" if held == 1 else "them"
            raise fail(
                f"application {name!r} holds {images}: delete {them} first, or run "
                f"`phantoscope app delete {name} --force` to delete {them} too "
                f"({APPLICATION_NOT_EMPTY})"
            ) from None
    console.print(f"deleted application [bold]{name}[/bold]")


@app_app.command("switch")
def app_switch(
    name: Name,
    field: Annotated[str, typer.Argument(help="The image field.")],
    pipeline: Annotated[str, typer.Argument(
        help="The pipeline its searches use from now on: one a finished reindex job "
             "(phantoscope jobs start reindex) embedded every image with.")],
    url: Url = DEFAULT_URL,
) -> None:
    """Move an image field's searches to another pipeline, at once. The pipeline used until
    now keeps its vectors for the server's PHANTOSCOPE_SWITCH_GRACE_S: switching back
    within it needs no reindex."""
    with connect(url) as client:
        application = client.applications.switch(name, field, pipeline)
        count = client.applications.count(name)
    console.print(f"field [bold]{field}[/bold] of {name} now searches with "
                  f"[bold]{pipeline}[/bold]")
    _show_application(application, count)


def _entity_json(entity: Entity) -> dict[str, Any]:
    return {
        "id": entity.id,
        "name": entity.name,
        "attributes": dict(entity.attributes),
        "exif": dict(entity.exif),
        "field": entity.field,
        "image_url": entity.image_url,
        "content_type": entity.content_type,
        "size": entity.size,
        "sha256": entity.sha256,
        "created_at": entity.created_at.isoformat(),
    }


@app_app.command("entities")
def app_entities(
    name: Name,
    where: Where = None,
    since: Since = None,
    until: Until = None,
    name_prefix: NamePrefix = None,
    num: Annotated[
        int, typer.Option("--num", "-n", min=1, max=1000, help="Entities per page.")
    ] = 20,
    page: Annotated[int, typer.Option("--page", "-p", min=1, help="Which page, from 1.")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print them as JSON.")] = False,
    url: Url = DEFAULT_URL,
) -> None:
    """List the images an application holds, oldest first: all, or those that match
    --where, --since, --until and --name-prefix (as for `phantoscope search`)."""
    condition = build_filter(where or (), since, until, name_prefix)
    with connect(url) as client:
        entities = client.entities.list(name, num=num, page=page - 1, filter=condition)
    if as_json:
        typer.echo(json.dumps([_entity_json(entity) for entity in entities], ensure_ascii=False))
        return
    shown = table("id", "name", "taken_at", "attributes")
    for entity in entities:
        shown.add_row(
            *row(
                str(entity.id),
                entity.name or "",
                entity.exif.get("taken_at", ""),
                attributes_text(entity.attributes),
            )
        )
    console.print(shown)
    first = (page - 1) * num
    if entities:
        more = f"; more: --page {page + 1}" if len(entities) == num else ""
        console.print(f"{first + 1}-{first + len(entities)}{more}", highlight=False)
    else:
        matching = " matching" if condition else ""
        console.print(f"no{matching} entities on page {page}", highlight=False)


def _show_pipeline(pipeline: Pipeline) -> None:
    console.print(
        details(
            [
                ("pipeline", pipeline.name),
                ("processors", ", ".join(pipeline.processors) or "-"),
                ("encoder", pipeline.encoder),
                ("text encoder", pipeline.text_encoder or "-"),
                ("dimension", str(pipeline.dimension)),
                ("metric", pipeline.metric_type),
                ("description", pipeline.description or "-"),
            ]
        )
    )


@pipeline_app.command("list")
def pipeline_list(url: Url = DEFAULT_URL) -> None:
    """List the pipelines."""
    with connect(url) as client:
        pipelines = client.pipelines.list()
    shown = table("name", "processors", "encoder", "text encoder", "dimension", "metric",
                  "description")
    for pipeline in pipelines:
        shown.add_row(
            *row(
                pipeline.name,
                ", ".join(pipeline.processors),
                pipeline.encoder,
                pipeline.text_encoder or "",
                str(pipeline.dimension),
                pipeline.metric_type,
                pipeline.description,
            )
        )
    console.print(shown)


@pipeline_app.command("show")
def pipeline_show(name: Name, url: Url = DEFAULT_URL) -> None:
    """Show a pipeline."""
    with connect(url) as client:
        _show_pipeline(client.pipelines.get(name))


@pipeline_app.command("create")
def pipeline_create(
    name: Name,
    encoder: Annotated[str, typer.Option("--encoder", "-e", help="Encoder operator.")],
    processors: Annotated[
        list[str] | None,
        typer.Option("--processor", "-p", help="Processor operator; repeat for several, in order."),
    ] = None,
    description: Annotated[str, typer.Option(help="What it is for.")] = "",
    text_encoder: Annotated[str | None, typer.Option(
        "--text-encoder", "-t", help="Text encoder of the encoder's embedding space (same "
        "dimension and metric): searches by words embed them with it.")] = None,
    url: Url = DEFAULT_URL,
) -> None:
    """Create a pipeline: processors in order, then an encoder (and a text encoder to search
    by words with)."""
    with connect(url) as client:
        pipeline = client.pipelines.create(
            name, encoder, processors=processors or [], description=description,
            text_encoder=text_encoder,
        )
    console.print(f"created pipeline [bold]{pipeline.name}[/bold]")
    _show_pipeline(pipeline)


@pipeline_app.command("delete")
def pipeline_delete(name: Name, url: Url = DEFAULT_URL) -> None:
    """Delete a pipeline (refused while an application uses it)."""
    with connect(url) as client:
        client.pipelines.delete(name)
    console.print(f"deleted pipeline [bold]{name}[/bold]")


def _show_operator(operator: Operator, health: str) -> None:
    console.print(
        details(
            [
                ("operator", operator.name),
                ("identity", operator.backend),
                ("type", f"{operator.type} ({operator.input} → {operator.output})"),
                ("endpoint", operator.endpoint),
                ("dimension", str(operator.dimension)),
                ("metric", operator.metric_type),
                ("health", health),
            ]
        )
    )


def operator_list(url: Url = DEFAULT_URL) -> None:
    """List the operators registered with the server."""
    with connect(url) as client:
        operators = client.operators.list()
    shown = table("name", "identity", "type", "endpoint", "dimension", "metric")
    for operator in operators:
        shown.add_row(
            *row(
                operator.name,
                operator.backend,
                operator.type,
                operator.endpoint,
                str(operator.dimension),
                operator.metric_type,
            )
        )
    console.print(shown)


def operator_show(name: Name, url: Url = DEFAULT_URL) -> None:
    """Show a registered operator and whether it answers healthy now."""
    with connect(url) as client:
        operator = client.operators.get(name)
        try:
            health = client.operators.health(name)
        except PhantoscopeError as exc:
            health = f"unreachable: {exc.message}"
    _show_operator(operator, health)


def operator_create(
    name: Name,
    endpoint: Annotated[
        str, typer.Option("--endpoint", "-e", help="host:port where the operator serves.")
    ],
    url: Url = DEFAULT_URL,
) -> None:
    """Register the operator serving at --endpoint under NAME."""
    with connect(url) as client:
        operator = client.operators.register(name, endpoint)
        health = client.operators.health(name)
    console.print(f"registered operator [bold]{operator.name}[/bold]")
    _show_operator(operator, health)


def operator_delete(name: Name, url: Url = DEFAULT_URL) -> None:
    """Unregister an operator (refused while a pipeline uses it)."""
    with connect(url) as client:
        client.operators.delete(name)
    console.print(f"deleted operator [bold]{name}[/bold]")
