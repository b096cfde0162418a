"""`phantoscope eval FOLDER --duplicates [--encoder NAME]`: pair precision and recall of
copies and similar shots on a labelled folder, measured in this process.

There is no duplicates API to measure through yet, and the similar-shot curve needs every
pair's cosine, which an answer of groups would not give; so the encoder runs here (the
built-in operator class, or an operator folder, as `operator serve` loads it) and the pairs
are judged by :mod:`phantoscope.duplicates`, as the server will judge an upload.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import typer
from rich.console import Console
from rich.markup import escape

from phantoscope.cli.operator_loader import TargetError, load_operator
from phantoscope.operators.base import Encoder

MAX_PIXELS = 64_000_000


def _encoder(name: str, notes: Console) -> Encoder:
    try:
        operator = load_operator(name)
    except TargetError as exc:
        notes.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from None
    if not isinstance(operator, Encoder) or getattr(operator, "input", "image") != "image":
        notes.print(f"[red]error:[/red] {escape(name)} is not an image encoder; give one "
                    "with --encoder (efficientnet-lite0-encoder, the default, say)")
        raise typer.Exit(2)
    operator.load()
    return operator


def eval_duplicates(folder: Path, encoder_name: str, out: Path | None, console: Console,
                    notes: Console, *, api_thumbnails: bool = False) -> None:
    """Judge every pair of FOLDER's images, print the tables, write results.json. Each
    thumbnail is made as the server makes it: by the encoder, from the image it decodes for
    its model (when it gives thumbnails), or with ``api_thumbnails`` as the API does for an
    encoder that gives none."""
    from phantoscope.evaluation.dataset import DatasetError
    from phantoscope.evaluation.duplicate_report import (
        DEFINITIONS,
        copy_alternatives_table,
        edit_table,
        similar_curve_table,
        summary_table,
    )
    from phantoscope.evaluation.duplicates import evaluate_duplicates, load_truth

    started = datetime.now().astimezone()
    try:
        truth = load_truth(folder)
    except DatasetError as exc:
        notes.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from None
    notes.out(f"{len(truth.images)} images, {len(truth.copies)} copy groups, "
              f"{len(truth.similar)} scene groups; encoder {encoder_name} in this process")
    encoder = _encoder(encoder_name, notes)

    def encode(items: list[bytes]) -> np.ndarray:
        return np.asarray(encoder.run([encoder.prepare(data, max_pixels=MAX_PIXELS)
                                       for data in items]), dtype=np.float32)

    def thumbnail(data: bytes) -> np.ndarray:
        return encoder.prepare_with_thumbnail(data, max_pixels=MAX_PIXELS)[1]

    by_encoder = encoder.gives_thumbnails() and not api_thumbnails
    notes.out(f"thumbnails made by {'the encoder' if by_encoder else 'the API'}")
    clock = time.perf_counter()
    run = evaluate_duplicates(folder, truth, encode, encoder=encoder_name,
                              thumbnail=thumbnail if by_encoder else None, progress=notes.out)
    body = {
        "folder": str(folder.resolve()),
        "encoder": encoder_name,
        "thumbnails": "encoder" if by_encoder else "api",
        "started_at": started.isoformat(),
        "total_seconds": round(time.perf_counter() - clock, 3),
        "definitions": DEFINITIONS,
        **run.to_json(),
    }
    out = out or Path(f"eval-{started:%Y%m%d-%H%M%S}")
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.json"
    path.write_text(json.dumps(body, indent=2) + "\n")
    for table in (summary_table(body), copy_alternatives_table(body), edit_table(body),
                  similar_curve_table(body)):
        console.print(table)
    console.print(f"wrote {path}", highlight=False)
