"""Searching an application by image: hits grouped by the image they belong to, optionally
among the entities a filter selects.

A filter is applied inside the vector search (:mod:`phantoscope.engine.vector_filters`), so
the nearest ``topk`` are taken among the selected vectors, and every hit is checked again
against its SQL row (SQL is the truth; a payload the store holds could lag behind it)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from phantoscope.engine.boundary import entry_point
from phantoscope.engine.catalog import FieldPlan, application_plan
from phantoscope.engine.context import Stores
from phantoscope.engine.entity_records import record_of
from phantoscope.engine.errors import BadRequestError
from phantoscope.engine.filters import Filter, matches
from phantoscope.engine.intake import ImageInput
from phantoscope.engine.model import Box, Entity
from phantoscope.engine.names import partition_name
from phantoscope.engine.pipeline import PipelineVector
from phantoscope.engine.rows import box_of, entity_of
from phantoscope.engine.vector_filters import NOTHING, vector_filter

MAX_TOPK = 1000
# Processor pipelines give several vectors per image: fetch more hits to fill topk images.
OVERFETCH = 4


@dataclass(frozen=True)
class Match:
    """One stored vector that matched one query vector."""

    box: Box | None  # the matched region of the stored image
    query_box: Box | None  # the region of the query image it matched
    distance: float
    score: float


@dataclass
class Hit:
    """One stored image, with every region of it that matched, best first."""

    entity: Entity
    matches: list[Match] = field(default_factory=list)

    @property
    def best(self) -> Match:
        return self.matches[0]


def score_of(distance: float, metric: str) -> float:
    """A score where larger is better: similarity for IP/COSINE, 1/(1+d) for L2."""
    return 1.0 / (1.0 + distance) if metric == "L2" else distance


@entry_point
def plan_search(stores: Stores, app_name: str, field_name: str | None) -> FieldPlan:
    """The application, its field's pipeline and the pipeline's operators (read through the
    catalog cache: one query while the catalog is unchanged)."""
    return application_plan(stores, app_name).field(field_name)


def topk_error() -> BadRequestError:
    return BadRequestError("INVALID_TOPK", f"topk must be an integer from 1 to {MAX_TOPK}")


def check_topk(topk: object) -> int:
    if not isinstance(topk, int) or isinstance(topk, bool) or not 1 <= topk <= MAX_TOPK:
        raise topk_error()
    return topk


@entry_point
def search(
    stores: Stores, app_name: str, field_name: str | None, image: ImageInput, topk: int,
    filter: Filter | None = None,
) -> list[Hit]:
    check_topk(topk)
    return run_search(stores, plan_search(stores, app_name, field_name), image, topk, filter)


@entry_point
def run_search(stores: Stores, plan: FieldPlan, image: ImageInput, topk: int,
               filter: Filter | None = None) -> list[Hit]:
    """The images of ``plan``'s application nearest to ``image`` (among those ``filter``
    selects), best first."""
    return nearest(stores, plan, image_queries(stores, plan, image), topk, filter)


def image_queries(stores: Stores, plan: FieldPlan, image: ImageInput) -> list[PipelineVector]:
    """The query vectors of ``image`` through ``plan``'s pipeline (one per region found, for
    a pipeline with processors); NO_VECTOR when there are none."""
    queries, _ = stores.runner.run(plan.processors, plan.encoder, [image.picture])
    if not queries:
        found = " (no region was found in it)" if plan.pipeline.processors else ""
        raise BadRequestError("NO_VECTOR", f"the query image gave no vector{found}")
    return queries


@entry_point
def nearest(stores: Stores, plan: FieldPlan, queries: list[PipelineVector], topk: int,
            filter: Filter | None = None) -> list[Hit]:
    """The images of ``plan``'s application nearest to the query vectors (among those
    ``filter`` selects), best first."""
    application, pipeline = plan.application, plan.pipeline
    expression = vector_filter(stores, application, pipeline, filter)
    if expression == NOTHING:
        return []
    limit = topk * OVERFETCH if pipeline.processors else topk
    results = stores.vectors.search(
        pipeline.collection,
        np.stack([q.vector for q in queries]),
        limit,
        partition=partition_name(application.name),
        filter=expression,
    )
    rows = stores.meta.entities_for_vectors([hit.id for hits in results for hit in hits])
    if filter is not None:
        rows = {vector_id: found for vector_id, found in rows.items()
                if matches(filter, record_of(found[0]))}
    by_entity: dict[int, Hit] = {}
    for query, hits in zip(queries, results, strict=True):
        for vector_hit in hits:
            found = rows.get(vector_hit.id)
            if found is None or found[0].application != application.name:
                continue
            entity, vector = found
            match = Match(
                box=box_of(vector),
                query_box=query.box,
                distance=vector_hit.distance,
                score=score_of(vector_hit.distance, pipeline.metric_type),
            )
            if entity.id not in by_entity:
                by_entity[entity.id] = Hit(entity_of(entity))
            by_entity[entity.id].matches.append(match)
    for hit in by_entity.values():
        hit.matches.sort(key=lambda m: m.score, reverse=True)
    ranked = sorted(by_entity.values(), key=lambda hit: hit.best.score, reverse=True)
    return ranked[:topk]
