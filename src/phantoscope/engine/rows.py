"""The engine's values (:mod:`phantoscope.engine.model`) built from the metadata store's rows
and back: rows stay inside the engine."""

from __future__ import annotations

from collections.abc import Sequence

from phantoscope.engine.label_words import label_name
from phantoscope.engine.model import (
    Application,
    Box,
    Entity,
    EntityVector,
    Field,
    Label,
    Operator,
    Pipeline,
)
from phantoscope.storage.meta import (
    ApplicationRow,
    EntityRow,
    LabelRow,
    OperatorRow,
    PipelineRow,
    VectorRow,
)


def operator_of(row: OperatorRow) -> Operator:
    return Operator(
        name=row.name,
        backend=row.backend,
        type=row.type,
        input=row.input,
        output=row.output,
        endpoints=list(row.endpoints),
        metric_type=row.metric_type,
        dimension=row.dimension,
        labels=row.labels,
    )


def pipeline_of(row: PipelineRow) -> Pipeline:
    return Pipeline(
        name=row.name,
        input=row.input,
        output=row.output,
        description=row.description,
        processors=tuple(row.processors),
        encoder=row.encoder,
        dimension=row.dimension,
        metric_type=row.metric_type,
        index_file_size=row.index_file_size,
        collection=row.collection,
        text_encoder=row.text_encoder,
    )


def application_of(row: ApplicationRow) -> Application:
    return Application(
        name=row.name,
        bucket=row.bucket,
        fields=tuple(Field(f.name, f.type, f.pipeline, f.value) for f in row.fields),
    )


def box_of(row: VectorRow) -> Box | None:
    if row.box_left is None:
        return None
    return Box(row.box_left, row.box_top, row.box_right, row.box_bottom,  # type: ignore[arg-type]
               1.0 if row.box_score is None else row.box_score)


def vector_row(vector_id: int, pipeline: str, box: Box | None) -> VectorRow:
    return VectorRow(
        id=vector_id,
        pipeline=pipeline,
        box_left=box.left if box else None,
        box_top=box.top if box else None,
        box_right=box.right if box else None,
        box_bottom=box.bottom if box else None,
        box_score=box.score if box else None,
    )


def entity_vector_of(row: VectorRow) -> EntityVector:
    return EntityVector(row.id, row.pipeline, box_of(row))


def label_rows(entity: EntityRow, labels: Sequence[tuple[str, float]]) -> list[LabelRow]:
    """The rows of an entity's image labels, as an encoder gave them (engine.pipeline
    checked them)."""
    return [LabelRow(label=label, score=score, application=entity.application,
                     field=entity.field) for label, score in labels]


def label_of(row: LabelRow) -> Label:
    return Label(row.label, label_name(row.label), row.score)


def entity_of(row: EntityRow) -> Entity:
    return Entity(
        id=row.id,
        application=row.application,
        field=row.field,
        object_key=row.object_key,
        content_type=row.content_type,
        size=row.size,
        sha256=row.sha256,
        created_at=row.created_at,
        vectors=tuple(entity_vector_of(vector) for vector in row.vectors),
        name=row.name,
        attributes=dict(row.attributes or {}),
        exif=dict(row.exif or {}),  # taken_at as read at intake, with its offset
        labels=tuple(label_of(label) for label in row.labels),
    )
