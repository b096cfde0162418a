"""`phantoscope eval FOLDER --pipeline P ... [--text]`: retrieval quality and latency per
pipeline, querying by image or (``--text``) by the words of ``FOLDER/queries.json``;
`phantoscope eval FOLDER --duplicates [--encoder E]`: copies and similar shots found, by
the pairs of ``FOLDER/duplicates.json``."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from phantoscope.cli.output import api_key
from phantoscope.client import DEFAULT_URL, PhantoscopeClient
from phantoscope.zoo import DEFAULT_ENCODER

DEFAULT_KS = [1, 5, 10]


def eval_command(
    folder: Annotated[
        Path,
        typer.Argument(help="One sub-folder of images per class.", exists=True, file_okay=False),
    ],
    pipeline: Annotated[
        list[str] | None,
        typer.Option("--pipeline", "-p", help="Pipeline to evaluate (repeatable).")
    ] = None,
    k: Annotated[
        list[int] | None,
        typer.Option(
            "--k", "-k", min=1, help="Cut-off for the metrics (repeatable; default 1, 5, 10)."
        ),
    ] = None,
    url: Annotated[
        str, typer.Option(envvar="PHANTOSCOPE_URL", help="The API server.")
    ] = DEFAULT_URL,
    out: Annotated[
        Path | None,
        typer.Option(help="Folder for results.json and results.png (default ./eval-<time>/)."),
    ] = None,
    batch_size: Annotated[
        int, typer.Option(min=1, max=256, help="Images per upload request.")
    ] = 16,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each request.")] = 300.0,
    text: Annotated[
        bool,
        typer.Option(
            "--text",
            help="Search by words: each query of FOLDER/queries.json "
            '({"words": ["class", ...]}), the images of its classes relevant.',
        ),
    ] = False,
    duplicates: Annotated[
        bool,
        typer.Option(
            "--duplicates",
            help="Measure duplicate detection instead, in this process (no server): every "
            "pair of FOLDER/duplicates.json's images judged copy, similar or neither; pair "
            "precision and recall, the similar-shot curve.",
        ),
    ] = False,
    encoder: Annotated[
        str,
        typer.Option(help="With --duplicates: the image encoder whose vectors are judged "
                     "(a built-in name or an operator folder)."),
    ] = DEFAULT_ENCODER,
    api_thumbnails: Annotated[
        bool,
        typer.Option(
            "--api-thumbnails",
            help="With --duplicates: make each image's thumbnail as the API does for an "
            "encoder that gives none (decoded at a reduced scale) instead of as the encoder "
            "gives it with the vector (the server's way with our operators).",
        ),
    ] = False,
    app: Annotated[
        str | None,
        typer.Option(
            "--app",
            help="Evaluate on this application's own images instead of a throw-away one: "
            "FOLDER's images label the copies the application holds (same SHA-256) and are "
            "the queries; each --pipeline is the field's own or one a finished reindex job "
            "embedded every image with. Nothing is uploaded.",
        ),
    ] = None,
    field: Annotated[
        str | None,
        typer.Option(help="With --app: the image field (default: the only one)."),
    ] = None,
) -> None:
    """Index FOLDER in a throw-away application per pipeline, query with every image, and
    report mAP@k, recall@k, precision@k (same class = relevant, self excluded) and latency.
    With --text, search with each text query of FOLDER/queries.json instead and report
    AP@k and precision@k per query, and their means.

    The applications are deleted afterwards, also on errors.

    With --app, the application's own images are searched instead (see --app): compare the
    field's pipeline with the one a reindex job prepared, before `phantoscope app switch`.

    With --duplicates, no server is used: FOLDER/duplicates.json lists the images, the
    groups of copies and the groups of one scene (bench/eval_sets.py --duplicates writes
    such a folder), and every pair is judged here as the server judges uploads.
    """
    from phantoscope.evaluation.dataset import DatasetError, load_folder, load_text_queries
    from phantoscope.evaluation.own_images import evaluate_on_application
    from phantoscope.evaluation.report import (
        results_table,
        text_table,
        write_chart,
        write_json,
    )
    from phantoscope.evaluation.runner import EvalError, PipelineRun, evaluate_pipeline
    from phantoscope.evaluation.text import TextRun, evaluate_text

    console = Console()
    if not console.is_terminal:  # a file or pipe: do not squeeze the table into 80 columns
        console.width = max(console.width, 160)
    notes = Console(stderr=True, soft_wrap=True, highlight=False)
    if duplicates:
        from phantoscope.cli.duplicate_eval import eval_duplicates

        eval_duplicates(folder, encoder, out, console, notes, api_thumbnails=api_thumbnails)
        return
    if not pipeline:
        notes.print("[red]error:[/red] give --pipeline (one or more), or --duplicates")
        raise typer.Exit(2)
    if app is not None and text:
        notes.print("[red]error:[/red] --app evaluates searches by image: leave out --text")
        raise typer.Exit(2)
    ks = sorted(set(k or DEFAULT_KS))
    started = datetime.now(timezone.utc)
    out = out or Path(f"eval-{started.astimezone():%Y%m%d-%H%M%S}")
    try:
        images = load_folder(folder)
        labels = {image.label for image in images}
        queries = load_text_queries(folder, labels) if text else {}
    except DatasetError as exc:
        notes.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from None
    classes = len(labels)
    asked = f", {len(queries)} text queries" if text else ""
    notes.out(f"{len(images)} images in {classes} classes{asked}; server {url}")
    runs: list[PipelineRun | TextRun] = []
    clock = time.perf_counter()
    with PhantoscopeClient(url, timeout=timeout, api_key=api_key.get()) as client:
        for name in pipeline:
            try:
                run = (
                    evaluate_on_application(client, app, field, name, folder, images, ks,
                                            progress=notes.out)
                    if app is not None else
                    evaluate_text(client, name, folder, images, queries, ks,
                                  batch_size=batch_size, progress=notes.out)
                    if text else
                    evaluate_pipeline(client, name, folder, images, ks,
                                      batch_size=batch_size, progress=notes.out)
                )
            except EvalError as exc:
                notes.print(f"[red]error:[/red] {escape(f'pipeline {name}: {exc}')}")
                raise typer.Exit(1) from None
            for skipped in run.skipped:
                notes.print(
                    f"[yellow]skipped[/yellow] {escape(skipped['image'])}: "
                    f"{escape(skipped['error'])}"
                )
            runs.append(run)
    out.mkdir(parents=True, exist_ok=True)
    context = {
        "folder": str(folder.resolve()),
        **({"application": app} if app is not None else {}),
        "url": url,
        "ks": ks,
        "started_at": started.isoformat(),
        "seconds": round(time.perf_counter() - clock, 3),
        "classes": classes,
        "images": len(images),
        **({"queries": len(queries)} if text else {}),
    }
    json_path = write_json(runs, context, out / "results.json")
    chart_path = write_chart(runs, ks, out / "results.png")
    for run in runs:
        if isinstance(run, TextRun):
            console.print(text_table(run))
    console.print(results_table(runs, ks))
    console.print(f"wrote {json_path} and {chart_path}", highlight=False)
