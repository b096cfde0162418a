"""JSON shapes of the original API (attributes under their private names), plus ours."""

from __future__ import annotations

from typing import Any

from phantoscope.engine.jobs import JobStatus
from phantoscope.engine.model import Application, Box, Entity, Label, Operator, Pipeline
from phantoscope.engine.search import Hit, Match
from phantoscope.engine.text_search import TextHits


def operator_json(row: Operator, replicas: list[dict[str, str]]) -> dict[str, Any]:
    """The original fields, plus each replica's endpoint and last known state (up, down or
    unknown). ``_endpoint`` stays a string as in the original: the one endpoint, or the
    endpoints joined with commas (``host:port,host:port``) as they were registered."""
    return {
        "_name": row.name,
        "_backend": row.backend,
        "_type": row.type,
        "_input": row.input,
        "_output": row.output,
        "_endpoint": ",".join(row.endpoints),
        "_metric_type": row.metric_type,
        "_dimension": row.dimension,
        "_endpoints": row.endpoints,
        "_replicas": replicas,
        "_labels": row.labels,
    }


def pipeline_json(row: Pipeline) -> dict[str, Any]:
    return {
        "_pipeline_name": row.name,
        "_input": row.input,
        "_output": row.output,
        "_dimension": row.dimension,
        "_index_file_size": row.index_file_size,
        "_metric_type": row.metric_type,
        "_pipeline_description": row.description,
        "_processors": list(row.processors),
        "_encoder": row.encoder,
        "_description": row.description,
        "_text_encoder": row.text_encoder,
    }


def field_definitions(application: Application) -> dict[str, dict[str, Any]]:
    """The application's fields as the original API shows them."""
    return {
        field.name: (
            {"type": "object", "pipeline": field.pipeline}
            if field.type == "object"
            else {"type": field.type, "value": field.value}
        )
        for field in application.fields
    }


def application_json(row: Application) -> dict[str, Any]:
    return {
        "_application_name": row.name,
        "_fields": field_definitions(row),
        "_buckets": row.bucket,
    }


def box_json(box: Box | None) -> dict[str, Any] | None:
    if box is None:
        return None
    return {
        "left": box.left,
        "top": box.top,
        "right": box.right,
        "bottom": box.bottom,
        "score": round(box.score, 6),
    }


def entity_json(
    entity: Entity, application: Application, image_url: str, *, id_as_text: bool = False
) -> dict[str, Any]:
    """An entity as the original showed it (``_id`` is text in search answers, as there),
    plus its ``name`` (null when it has none), ``attributes``, ``exif`` and ``labels``."""
    return {
        "_id": str(entity.id) if id_as_text else entity.id,
        "_app_name": application.name,
        "_image_url": image_url,
        "_fields": field_definitions(application),
        "field": entity.field,
        "content_type": entity.content_type,
        "size": entity.size,
        "sha256": entity.sha256,
        "created_at": entity.created_at.isoformat() + "Z",
        "vectors": [
            {"id": vector.id, "pipeline": vector.pipeline, "box": box_json(vector.box)}
            for vector in entity.vectors
        ],
        "name": entity.name,
        "attributes": dict(entity.attributes),
        "exif": dict(entity.exif),
        "labels": [label_json(label) for label in entity.labels],
    }


def label_json(label: Label) -> dict[str, Any]:
    return {"id": label.id, "name": label.name, "score": round(label.score, 6)}


def match_json(match: Match) -> dict[str, Any]:
    return {
        "box": box_json(match.box),
        "query_box": box_json(match.query_box),
        "distance": match.distance,
        "score": match.score,
    }


def hit_json(hit: Hit, application: Application, image_url: str) -> dict[str, Any]:
    body = entity_json(hit.entity, application, image_url, id_as_text=True)
    body.update(
        distance=hit.best.distance,
        score=hit.best.score,
        box=box_json(hit.best.box),
        matches=[match_json(match) for match in hit.matches],
    )
    return body


def text_answer_json(found: TextHits, hits: list[dict[str, Any]]) -> dict[str, Any]:
    """A text search's answer: its hits (as an image search's), the words and phrases that
    named classes (with how many), the words that named none, and how the words were matched
    ("labels", or "text_encoder": then no terms, none unmatched)."""
    return {
        "hits": hits,
        "terms": [{"word": term.word, "classes": len(term.classes)} for term in found.terms],
        "unmatched": list(found.unmatched),
        "matched_by": found.matched_by,
    }


def job_json(status: JobStatus) -> dict[str, Any]:
    return {
        "id": status.id,
        "kind": status.kind,
        "application": status.application,
        "field": status.field,
        "pipeline": status.pipeline,
        "state": status.state,
        "total": status.total,
        "done": status.done,
        "failed": status.failed,
        "errors": [{"item": item, "reason": reason} for item, reason in status.errors],
        "rate": status.rate,
        "eta_s": status.eta_s,
    }
