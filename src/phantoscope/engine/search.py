"""Searching an application by image: hits grouped by the image they belong to."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sqlalchemy.orm import Session, joinedload

from phantoscope.engine.context import Stores
from phantoscope.engine.entities import image_field
from phantoscope.engine.errors import BadRequestError
from phantoscope.engine.intake import ImageInput
from phantoscope.engine.names import check_name, partition_name
from phantoscope.engine.registry import not_found, operator_names, ordered_operators
from phantoscope.operators.base import Box
from phantoscope.storage.meta import (
    ApplicationRow,
    EntityRow,
    OperatorRow,
    PipelineRow,
    catalog_version,
    operators_named,
)

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

    entity: EntityRow
    matches: list[Match] = field(default_factory=list)

    @property
    def best(self) -> Match:
        return self.matches[0]


def score_of(distance: float, metric: str) -> float:
    """A score where larger is better: similarity for IP/COSINE, 1/(1+d) for L2."""
    return 1.0 / (1.0 + distance) if metric == "L2" else distance


@dataclass(frozen=True)
class SearchPlan:
    """What a search reads from the metadata store before it runs."""

    application: ApplicationRow
    pipeline: PipelineRow
    processors: list[OperatorRow]
    encoder: OperatorRow


def plan_search(stores: Stores, app_name: str, field_name: str | None) -> SearchPlan:
    """The application, its field's pipeline and the pipeline's operators.

    One query when the catalog has not changed since this process last read that plan
    (its version row); otherwise three more in the same transaction, each row's lists
    joined in. API replicas sharing the database see each other's changes at once.
    """
    check_name("application", app_name)
    key = (app_name, field_name)
    with stores.meta.session("reading an application's pipeline") as session:
        version = catalog_version(session)  # first: a plan is never older than its version
        plan = stores.plans.get(version, key)
        if plan is None:
            plan = _read_plan(session, app_name, field_name)
            stores.plans.put(version, key, plan)
    return plan


def _read_plan(session: Session, app_name: str, field_name: str | None) -> SearchPlan:
    application = session.get(ApplicationRow, app_name,
                              options=[joinedload(ApplicationRow.fields)])
    if application is None:
        raise not_found("application", app_name)
    _, pipeline_name = image_field(application, field_name)
    pipeline = session.get(PipelineRow, pipeline_name, options=[joinedload(PipelineRow.steps)])
    if pipeline is None:
        raise not_found("pipeline", pipeline_name)
    processors, encoder = ordered_operators(
        pipeline, operators_named(session, operator_names(pipeline)))
    return SearchPlan(application, pipeline, processors, encoder)


def check_topk(topk: object) -> int:
    if not isinstance(topk, int) or isinstance(topk, bool) or not 1 <= topk <= MAX_TOPK:
        raise BadRequestError("INVALID_TOPK", f"topk must be an integer from 1 to {MAX_TOPK}")
    return topk


def search(
    stores: Stores, app_name: str, field_name: str | None, image: ImageInput, topk: int
) -> list[Hit]:
    check_topk(topk)
    return run_search(stores, plan_search(stores, app_name, field_name), image, topk)


def run_search(stores: Stores, plan: SearchPlan, image: ImageInput, topk: int) -> list[Hit]:
    """The images of ``plan``'s application nearest to ``image``, best first."""
    application, pipeline = plan.application, plan.pipeline
    queries, _ = stores.runner.run(plan.processors, plan.encoder, [image.b64])
    if not queries:
        found = " (no region was found in it)" if pipeline.processors else ""
        raise BadRequestError("NO_VECTOR", f"the query image gave no vector{found}")
    limit = topk * OVERFETCH if pipeline.processors else topk
    results = stores.vectors.search(
        pipeline.collection,
        np.stack([q.vector for q in queries]),
        limit,
        partition=partition_name(application.name),
    )
    rows = stores.meta.entities_for_vectors([hit.id for hits in results for hit in hits])
    by_entity: dict[int, Hit] = {}
    for query, hits in zip(queries, results, strict=True):
        for vector_hit in hits:
            found = rows.get(vector_hit.id)
            if found is None or found[0].application != application.name:
                continue
            entity, vector = found
            match = Match(
                box=vector.box,
                query_box=query.box,
                distance=vector_hit.distance,
                score=score_of(vector_hit.distance, pipeline.metric_type),
            )
            by_entity.setdefault(entity.id, Hit(entity)).matches.append(match)
    for hit in by_entity.values():
        hit.matches.sort(key=lambda m: m.score, reverse=True)
    ranked = sorted(by_entity.values(), key=lambda hit: hit.best.score, reverse=True)
    return ranked[:topk]
