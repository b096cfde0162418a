"""Evaluate search by words over the REST API: index a labelled set in a throw-away
application, search it with each text query, score the answers against human judgements.

A query's relevant images are every image of the classes (sub-folders) ``queries.json``
lists for it; R is how many of those were indexed. The metrics are those of
:mod:`phantoscope.evaluation.scoring` on the list "is the i-th answer relevant".
"""

from __future__ import annotations

import secrets
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from phantoscope.client import Hits, PhantoscopeClient, PhantoscopeError
from phantoscope.evaluation.dataset import LabelledImage
from phantoscope.evaluation.runner import (
    FIELD,
    EvalError,
    Evaluation,
    IndexedRun,
    Progress,
    index_and_query,
)
from phantoscope.evaluation.scoring import Scores, query_scores


@dataclass(frozen=True)
class TextQueryRecord:
    """One text query: what it should find, what came back, and how the server read it."""

    text: str
    relevant_classes: frozenset[str]
    relevant: int  # R: indexed images of the relevant classes
    ranked_ids: list[int]
    ranked_labels: list[str | None]  # None: an entity this evaluation did not upload
    terms: list[tuple[str, int]]  # (word or phrase, how many image classes it names)
    unmatched: list[str]
    latency_ms: float

    def scores(self, ks: Sequence[int]) -> Scores:
        found = [label in self.relevant_classes for label in self.ranked_labels]
        return query_scores(found, True, self.relevant, ks)


@dataclass
class TextRun(IndexedRun):
    """Everything measured for one pipeline, searching by words."""

    queries: list[TextQueryRecord] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            **self.summary_json(),
            "queries": [
                {
                    "text": query.text,
                    "relevant_classes": sorted(query.relevant_classes),
                    "relevant": query.relevant,
                    "terms": [{"word": word, "classes": count} for word, count in query.terms],
                    "unmatched": query.unmatched,
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


def _search(evaluation: Evaluation, text: str, topk: int) -> tuple[Hits, float]:
    started = time.perf_counter()
    try:
        hits = evaluation.client.search(evaluation.run.application, text=text, topk=topk,
                                        field=FIELD)
    except PhantoscopeError as exc:
        raise EvalError(
            f"searching {evaluation.run.application} for {text!r}: HTTP {exc.status} "
            f"{exc.code}: {exc.message}"
        ) from None
    return hits, (time.perf_counter() - started) * 1000


def _query_all(evaluation: Evaluation, run: TextRun, queries: Mapping[str, frozenset[str]],
               progress: Progress) -> None:
    """Each query once, after one unmeasured warm-up search."""
    depth = max(run.ks)
    sizes = Counter(image.label for image in evaluation.uploaded.values())
    labels = {entity: image.label for entity, image in evaluation.uploaded.items()}
    _search(evaluation, next(iter(queries)), depth)
    for text, relevant_classes in queries.items():
        hits, elapsed_ms = _search(evaluation, text, depth)
        ranked = [hit.id for hit in hits][:depth]
        run.queries.append(TextQueryRecord(
            text=text,
            relevant_classes=relevant_classes,
            relevant=sum(sizes[label] for label in relevant_classes),
            ranked_ids=ranked,
            ranked_labels=[labels.get(entity) for entity in ranked],
            terms=list(hits.terms),
            unmatched=list(hits.unmatched),
            latency_ms=elapsed_ms,
        ))
    progress(f"{run.pipeline}: searched {len(queries)} text queries")


def evaluate_text(
    client: PhantoscopeClient,
    pipeline: str,
    folder: Path,
    images: Sequence[LabelledImage],
    queries: Mapping[str, frozenset[str]],
    ks: Sequence[int],
    *,
    batch_size: int = 16,
    progress: Progress = lambda _: None,
) -> TextRun:
    """Index ``images`` in a new application on ``pipeline`` (whose encoder must give
    labels), search it with each text query for max(ks) answers, and delete the application
    again (with everything in it) whatever happens."""
    if not queries:
        raise ValueError("no text queries to evaluate")
    run = TextRun(pipeline, f"eval-{secrets.token_hex(6)}", sorted(set(ks)))
    index_and_query(client, run, folder, images,
                    lambda evaluation: _query_all(evaluation, run, queries, progress),
                    batch_size=batch_size, progress=progress)
    return run
