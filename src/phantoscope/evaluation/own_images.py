"""Evaluate pipelines on an application's own images: the gallery is what the application
holds, the labels come from the user's labelled folder.

An image of the folder that the application holds (the same SHA-256) labels that entity with
its class; the application's other images are relevant to no query. Every image of the
folder is a query (its own entity, if held, dropped from the answer); it is searched with
each pipeline the field can be searched with (its own, or one a finished reindex embedded
every image with), so two models are compared on the same stored images before a switch.
Nothing is uploaded or deleted.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from phantoscope.client import PhantoscopeClient, PhantoscopeError
from phantoscope.evaluation.dataset import LabelledImage
from phantoscope.evaluation.runner import EvalError, PipelineRun, Progress, QueryRecord


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def held_labels(client: PhantoscopeClient, app: str, field: str | None,
                images: Sequence[LabelledImage]) -> tuple[dict[int, str], dict[str, int], int]:
    """The labels of the application's entities that the folder holds (by entity id), the
    entity of each folder image the application holds (by path), and how many entities the
    field holds."""
    by_hash = {_sha256(image.path): image for image in images}
    labels: dict[int, str] = {}
    entity_of: dict[str, int] = {}
    held = 0
    try:
        for entity in client.entities.iterate(app):
            if field is not None and entity.field != field:
                continue
            held += 1
            image = by_hash.get(entity.sha256)
            if image is not None:
                labels[entity.id] = image.label
                entity_of[str(image.path)] = entity.id
    except PhantoscopeError as exc:
        raise EvalError(f"listing application {app}: HTTP {exc.status} {exc.code}: "
                        f"{exc.message}") from None
    if not labels:
        raise EvalError(f"application {app} holds none of the folder's images (compared by "
                        "SHA-256): put copies of some of its images in one sub-folder per "
                        "class")
    return labels, entity_of, held


def evaluate_on_application(
    client: PhantoscopeClient, app: str, field: str | None, pipeline: str, folder: Path,
    images: Sequence[LabelledImage], ks: Sequence[int], *, progress: Progress = lambda _: None,
) -> PipelineRun:
    """Query ``app`` with every image of the folder through ``pipeline``; scores against the
    labels the folder gives the application's images."""
    run = PipelineRun(pipeline, app, sorted(set(ks)))
    labels, entity_of, run.indexed = held_labels(client, app, field, images)
    sizes = Counter(labels.values())
    depth = max(run.ks)
    for count, image in enumerate(images, start=1):
        own = entity_of.get(str(image.path))
        started = time.perf_counter()
        try:
            hits = client.search(app, image.path, depth + 1, field=field, pipeline=pipeline)
        except PhantoscopeError as exc:
            raise EvalError(f"searching {app} with {pipeline} and {image.path.name}: HTTP "
                            f"{exc.status} {exc.code}: {exc.message}") from None
        elapsed_ms = (time.perf_counter() - started) * 1000
        raw = [hit.id for hit in hits]
        ranked = [hit for hit in raw if hit != own][:depth]
        run.queries.append(QueryRecord(
            image=image.relative_to(folder), label=image.label,
            entity_id=own if own is not None else 0,
            relevant=sizes[image.label] - (own is not None), ranked_ids=ranked,
            ranked_labels=[labels.get(hit) for hit in ranked],
            self_rank=raw.index(own) + 1 if own in raw else None, latency_ms=elapsed_ms))
        if count % 10 == 0 or count == len(images):
            progress(f"{pipeline}: queried {count}/{len(images)}")
    return run
