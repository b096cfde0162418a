"""`phantoscope import` (a folder into an application) and `phantoscope search`."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from phantoscope.cli import folder_import
from phantoscope.cli.filter_options import (
    Attrs,
    NamePrefix,
    Since,
    Until,
    Where,
    build_filter,
    parse_attributes,
)
from phantoscope.cli.output import Url, connect, console, fail, row, table
from phantoscope.client import DEFAULT_URL, Box, Hit, PhantoscopeClient, is_url
from phantoscope.config import is_loopback
from phantoscope.engine.folder_images import find_images

App = Annotated[str, typer.Argument(help="The application.", show_default=False)]
Field = Annotated[
    str | None,
    typer.Option(help="Image field (default: the application's only image field)."),
]


class RateColumn(ProgressColumn):
    """Images per second."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("-- img/s" if speed is None else f"{speed:.1f} img/s", style="cyan")


def _image_field(client: PhantoscopeClient, app: str, field: str | None) -> tuple[str, str]:
    """The image field to import into, checked against the application, and its pipeline."""
    fields = client.applications.get(app).image_fields
    names = ", ".join(fields)
    if field is None:
        if len(fields) == 1:
            return next(iter(fields.items()))
        raise fail(f"application {app!r} has image fields {names}: choose one with --field")
    if field not in fields:
        raise fail(f"application {app!r} has no image field {field!r} (image fields: {names})")
    return field, fields[field]


def _report(
    folder: Path, plan: folder_import.Plan, imported: int, failures: list[folder_import.Failure],
    reads: folder_import.ServerReads, url: str,
) -> None:
    skipped = len(plan.existing) + len(plan.duplicates)
    if failures:
        shown = table("file", "code", "message", title=f"{len(failures)} failed")
        for failure in sorted(failures, key=lambda failure: failure.path):
            shown.add_row(
                *row(str(failure.path.relative_to(folder)), failure.code, failure.message)
            )
        console.print(shown)
    console.print(f"imported: {imported}", highlight=False)
    if reads.read:
        console.print(f"          ({reads.read} read by the server from its own disk, "
                      "not sent)", highlight=False)
    console.print(
        f"skipped:  {skipped} (already imported: {len(plan.existing)}, "
        f"duplicates: {len(plan.duplicates)})",
        highlight=False,
    )
    console.print(f"failed:   {len(failures)}", highlight=False)
    if skipped and not imported and not failures:
        console.print(f"all {skipped} images skipped: nothing new to import", highlight=False)
    if reads.roots_unset and is_loopback(urlsplit(url).hostname or ""):
        console.print(
            "tip: this server reads no folders, so every file was sent to it; started with "
            f"`phantoscope up --import-root {folder.absolute()}` (or a folder above; "
            "PHANTOSCOPE_IMPORT_ROOTS for any server), it reads them from its own disk "
            "instead, which is faster", highlight=False, soft_wrap=True)


def import_folder(
    app: App,
    folder: Annotated[
        Path,
        typer.Argument(
            help="Folder to import, with its subfolders.",
            exists=True,
            file_okay=False,
            show_default=False,
        ),
    ],
    field: Field = None,
    concurrency: Annotated[
        int | None,
        typer.Option(
            "--concurrency", "-c", min=1, max=folder_import.MAX_CONCURRENCY,
            help=f"Requests in flight (default: {folder_import.REQUESTS_PER_REPLICA} for each "
            f"replica of the field's encoder, at least {folder_import.CONCURRENCY}).",
            show_default=False),
    ] = None,
    batch_size: Annotated[
        int, typer.Option("--batch-size", "-b", min=1, max=256, help="Images per request.")
    ] = folder_import.BATCH_SIZE,
    attrs: Attrs = None,
    url: Url = DEFAULT_URL,
) -> None:
    """Import every image under FOLDER (.jpg .jpeg .png .gif .webp .bmp .tif .tiff, any case).

    Each image is named by its path under FOLDER (2019/summer/beach.jpg); --attr gives every
    image of this run the same attributes.

    Resumable: skips images the application holds already (same SHA-256) and repeated files;
    those keep the name and attributes they have.

    A server that may read FOLDER itself (under its PHANTOSCOPE_IMPORT_ROOTS) reads each file
    from its own disk when the bytes there are the same, instead of receiving them.

    Copies of other pictures are stored too, not looked for while importing:
    `phantoscope duplicates` lists them afterwards.

    Exits 1 when some image failed. Hidden files and folders are left out.
    """
    attributes = parse_attributes(attrs or ()) or None
    paths = find_images(folder)
    if not paths:
        console.print(f"no images found in {folder}", highlight=False)
        return
    columns = (
        TextColumn("{task.description:<9}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    )
    with connect(url) as client:
        image_field, pipeline = _image_field(client, app, field)
        concurrency = concurrency or folder_import.default_concurrency(client, pipeline)
        with console.status(f"reading what {app} holds"):
            existing = folder_import.existing_hashes(client, app, image_field)
        with Progress(*columns, console=console) as progress:
            hashing = progress.add_task("hashing", total=len(paths))
            uploading = progress.add_task("uploading", total=0)
            plan = folder_import.Plan()

            def sorted_one() -> None:  # the upload bar's total grows as files are hashed
                progress.advance(hashing)
                progress.update(uploading, total=len(plan.upload))

            workers = min(8, os.cpu_count() or 1)
            to_upload = folder_import.plan_import(paths, existing, workers, plan, sorted_one)
            reads = folder_import.ServerReads()
            try:
                imported, failures = folder_import.upload_all(
                    client,
                    folder_import.Target(app, image_field, folder, attributes),
                    folder_import.batches(to_upload, batch_size),
                    concurrency,
                    lambda done: progress.advance(uploading, done),
                    reads,
                )
            except KeyboardInterrupt:
                raise fail("interrupted: run the same command again to resume", 130) from None
    _report(folder, plan, imported, plan.unreadable + failures, reads, url)
    if plan.unreadable or failures:
        raise typer.Exit(1)


def _box(box: Box | None) -> str:
    return "" if box is None else f"{box.left},{box.top},{box.right},{box.bottom}"


def _hit_json(rank: int, hit: Hit) -> dict[str, Any]:
    box = hit.box
    return {
        "rank": rank,
        "id": hit.id,
        "name": hit.name,
        "score": hit.score,
        "distance": hit.distance,
        "image_url": hit.entity.image_url,
        "box": None if box is None else [box.left, box.top, box.right, box.bottom],
        "field": hit.entity.field,
        "sha256": hit.entity.sha256,
        "attributes": dict(hit.attributes),
        "exif": dict(hit.exif),
        "labels": [{"id": label.id, "name": label.name, "score": label.score}
                   for label in hit.labels],
    }


def _labels(hit: Hit, shown: int = 3) -> str:
    """The hit's best labels, as `name 61%`."""
    return ", ".join(f"{label.name} {label.score:.0%}" for label in hit.labels[:shown])


def _weights(text: str) -> tuple[float, float]:
    """``--weights W_TEXT,W_IMAGE`` as two numbers (the server checks their range)."""
    try:
        w_text, w_image = (float(part) for part in text.split(","))
    except ValueError:
        raise fail(f"--weights {text!r}: give two numbers, W_TEXT,W_IMAGE such as 0.3,0.7",
                   2) from None
    return w_text, w_image


def search(
    app: App,
    image: Annotated[str | None, typer.Argument(
        help="Query image: a file or an http(s) URL (or give --text, or both).",
        show_default=False)
    ] = None,
    text: Annotated[str | None, typer.Option(
        "--text", "-t", help='Search by words: "dog on a beach". With IMAGE too: both, on a '
        "field whose pipeline has a text encoder.")] = None,
    weights: Annotated[str | None, typer.Option(
        "--weights", "-w", help="With --text and IMAGE: W_TEXT,W_IMAGE, how much each counts "
        "(default 1,1).", show_default=False)] = None,
    topk: Annotated[int, typer.Option("--topk", "-k", min=1, help="How many hits.")] = 10,
    field: Field = None,
    where: Where = None,
    since: Since = None,
    until: Until = None,
    name_prefix: NamePrefix = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the hits as JSON.")] = False,
    url: Url = DEFAULT_URL,
) -> None:
    """Search an application by image (the nearest stored images), by words with --text
    (through the pipeline's text encoder, or the images' labels), or by both (--weights
    weighs them), best first.

    --where, --since, --until and --name-prefix keep to the images that match them all (the
    best of those: --topk of them when there are that many).
    """
    if image is None and text is None:
        raise fail("give a query image, --text, or both", 2)
    if weights is not None and (image is None or text is None):
        raise fail("--weights weighs --text against a query image: give both", 2)
    mix = None if weights is None else _weights(weights)
    if image is not None and not is_url(image) and not Path(image).is_file():
        raise fail(f"image file {image!r} does not exist", 2)
    condition = build_filter(where or (), since, until, name_prefix)
    with connect(url) as client:
        query = None if image is None else image if is_url(image) else Path(image)
        hits = client.search(app, query, topk, field, filter=condition, text=text, weights=mix)
    if as_json:
        typer.echo(json.dumps([_hit_json(rank, hit) for rank, hit in enumerate(hits, 1)]))
        return
    if hits.unmatched:
        console.print(Text(f"no image class is called: {', '.join(hits.unmatched)}"))
    shown = table("rank", "id", "name", "score", "distance", "image URL", "box", "labels")
    for rank, hit in enumerate(hits, 1):
        shown.add_row(
            *row(
                str(rank),
                str(hit.id),
                hit.name or "",
                f"{hit.score:.4f}",
                f"{hit.distance:.4f}",
                hit.entity.image_url,
                _box(hit.box),
                _labels(hit),
            )
        )
    console.print(shown)
