"""Evaluate pipelines over the REST API: index a labelled set in a throw-away application,
query with every image, score the answers.

Only the typed HTTP client (:mod:`phantoscope.client`) is used, so it measures a running
server as clients see it.
"""

from __future__ import annotations

import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from phantoscope.client import PhantoscopeClient, PhantoscopeError
from phantoscope.evaluation.dataset import LabelledImage
from phantoscope.evaluation.scoring import Scores, latency_summary, mean_scores, query_scores

FIELD = "image"
BATCH_BYTES = 16 * 1024 * 1024  # well under the server's request limit (2 x max upload)

Progress = Callable[[str], None]


class EvalError(RuntimeError):
    """The server refused or failed a step of the evaluation."""


class ScoredQuery(Protocol):
    """What a run's summary reads of each of its queries."""

    @property
    def relevant(self) -> int: ...

    @property
    def latency_ms(self) -> float: ...

    def scores(self, ks: Sequence[int]) -> Scores: ...


@dataclass(frozen=True)
class QueryRecord:
    """One query: its image, what came back (own entity removed) and how long it took."""

    image: str
    label: str
    entity_id: int
    relevant: int  # R: indexed images of the same class, minus the query
    ranked_ids: list[int]
    ranked_labels: list[str | None]  # None: an entity this evaluation did not upload
    self_rank: int | None  # 1-based rank of the query's own entity in the raw answer
    latency_ms: float

    def scores(self, ks: Sequence[int]) -> Scores:
        return query_scores(self.ranked_labels, self.label, self.relevant, ks)


@dataclass
class IndexedRun:
    """One pipeline's throw-away application and what was indexed in it."""

    pipeline: str
    application: str
    ks: list[int]
    indexed: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)
    upload_s: float = 0.0
    queries: Sequence[ScoredQuery] = field(default_factory=list)

    def metrics(self) -> Scores:
        return mean_scores([query.scores(self.ks) for query in self.queries], self.ks)

    def latency_ms(self) -> dict[str, float | None]:
        return latency_summary([query.latency_ms for query in self.queries])

    def summary_json(self) -> dict[str, Any]:
        """What every kind of run reports, before its own per-query detail."""
        return {
            "pipeline": self.pipeline,
            "application": self.application,
            "indexed": self.indexed,
            "skipped": self.skipped,
            "upload_seconds": round(self.upload_s, 3),
            "queries_scored": sum(query.relevant > 0 for query in self.queries),
            "metrics": self.metrics(),
            "latency_ms": self.latency_ms(),
        }


@dataclass
class PipelineRun(IndexedRun):
    """Everything measured for one pipeline, querying by image."""

    queries: list[QueryRecord] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            **self.summary_json(),
            "queries": [
                {
                    "image": query.image,
                    "label": query.label,
                    "entity_id": query.entity_id,
                    "relevant": query.relevant,
                    "self_rank": query.self_rank,
                    "latency_ms": round(query.latency_ms, 3),
                    "ranked": [
                        {"id": entity, "label": label}
                        for entity, label in zip(query.ranked_ids, query.ranked_labels, strict=True)
                    ],
                    "scores": query.scores(self.ks),
                }
                for query in self.queries
            ],
        }


def _batches(images: Sequence[LabelledImage], size: int) -> Iterator[list[LabelledImage]]:
    """Images in batches of at most ``size`` and about BATCH_BYTES each."""
    batch: list[LabelledImage] = []
    held = 0
    for image in images:
        size_on_disk = image.path.stat().st_size
        if batch and (len(batch) >= size or held + size_on_disk > BATCH_BYTES):
            yield batch
            batch, held = [], 0
        batch.append(image)
        held += size_on_disk
    if batch:
        yield batch


def _said(error: PhantoscopeError) -> str:
    return f"HTTP {error.status} {error.code}: {error.message}"


class Evaluation:
    """One pipeline's run against one throw-away application."""

    def __init__(self, client: PhantoscopeClient, folder: Path, run: IndexedRun) -> None:
        self.client = client
        self.folder = folder
        self.run = run
        self.uploaded: dict[int, LabelledImage] = {}

    def create(self) -> None:
        try:
            self.client.applications.create(
                self.run.application, pipeline=self.run.pipeline, field=FIELD
            )
        except PhantoscopeError as exc:
            raise EvalError(f"creating application {self.run.application}: {_said(exc)}") from None

    def delete(self) -> None:
        try:
            self.client.applications.delete(self.run.application, force=True)
        except PhantoscopeError as exc:
            if exc.status != 404:
                raise EvalError(
                    f"deleting application {self.run.application}: {_said(exc)}"
                ) from None

    def upload(self, images: Sequence[LabelledImage], batch_size: int, progress: Progress) -> None:
        started = time.perf_counter()
        for batch in _batches(images, batch_size):
            try:
                answer = self.client.upload_batch(
                    self.run.application, [image.path for image in batch], field=FIELD
                )
            except PhantoscopeError as exc:
                raise EvalError(f"uploading to {self.run.application}: {_said(exc)}") from None
            for result in answer.results:
                image = batch[result.index]
                if result.entity is not None:
                    self.uploaded[result.entity.id] = image
                elif result.error is not None:
                    self.run.skipped.append({
                        "image": image.relative_to(self.folder),
                        "error": f"{result.error.code}: {result.error.message}",
                    })
            progress(f"{self.run.pipeline}: uploaded {len(self.uploaded)}/{len(images)}")
        self.run.upload_s = time.perf_counter() - started
        self.run.indexed = len(self.uploaded)
        if not self.uploaded:
            first = self.run.skipped[0]["error"] if self.run.skipped else "no answer"
            raise EvalError(f"none of the {len(images)} images could be indexed: {first}")

    def search(self, image: LabelledImage, topk: int) -> tuple[list[int], float]:
        """Entity ids answered for ``image``, best first, and the request's milliseconds."""
        started = time.perf_counter()
        try:
            hits = self.client.search(self.run.application, image.path, topk, field=FIELD)
        except PhantoscopeError as exc:
            raise EvalError(
                f"searching {self.run.application} with {image.path.name}: {_said(exc)}"
            ) from None
        elapsed_ms = (time.perf_counter() - started) * 1000
        return [hit.id for hit in hits], elapsed_ms

    def query_all(self, run: PipelineRun, progress: Progress) -> None:
        """Query with every uploaded image, after one unmeasured warm-up query."""
        depth = max(run.ks)
        sizes = Counter(image.label for image in self.uploaded.values())
        labels = {entity: image.label for entity, image in self.uploaded.items()}
        self.search(next(iter(self.uploaded.values())), depth + 1)
        for count, (entity, image) in enumerate(self.uploaded.items(), start=1):
            raw, elapsed_ms = self.search(image, depth + 1)
            ranked = [hit for hit in raw if hit != entity][:depth]
            run.queries.append(QueryRecord(
                image=image.relative_to(self.folder),
                label=image.label,
                entity_id=entity,
                relevant=sizes[image.label] - 1,
                ranked_ids=ranked,
                ranked_labels=[labels.get(hit) for hit in ranked],
                self_rank=raw.index(entity) + 1 if entity in raw else None,
                latency_ms=elapsed_ms,
            ))
            if count % 10 == 0 or count == len(self.uploaded):
                progress(f"{run.pipeline}: queried {count}/{len(self.uploaded)}")


def index_and_query(
    client: PhantoscopeClient,
    run: IndexedRun,
    folder: Path,
    images: Sequence[LabelledImage],
    query: Callable[[Evaluation], None],
    *,
    batch_size: int,
    progress: Progress,
) -> None:
    """Create ``run``'s application, index ``images`` in it, call ``query``, and delete the
    application again (with everything in it) whatever happens."""
    evaluation = Evaluation(client, folder, run)
    evaluation.create()
    try:
        evaluation.upload(images, batch_size, progress)
        query(evaluation)
    except BaseException:
        try:
            evaluation.delete()
        except EvalError as exc:
            progress(f"could not delete application {run.application}: {exc}")
        raise
    evaluation.delete()


def evaluate_pipeline(
    client: PhantoscopeClient,
    pipeline: str,
    folder: Path,
    images: Sequence[LabelledImage],
    ks: Sequence[int],
    *,
    batch_size: int = 16,
    progress: Progress = lambda _: None,
) -> PipelineRun:
    """Index ``images`` in a new application on ``pipeline``, query with each, and delete the
    application again (with everything in it) whatever happens.

    Images the server refuses are listed in ``skipped`` and neither indexed nor queried.
    Each query asks for max(ks) + 1 answers and drops its own entity.
    """
    run = PipelineRun(pipeline, f"eval-{secrets.token_hex(6)}", sorted(set(ks)))
    index_and_query(client, run, folder, images,
                    lambda evaluation: evaluation.query_all(run, progress),
                    batch_size=batch_size, progress=progress)
    return run
