"""Entities: uploading images (all or nothing), listing and deleting them."""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from phantoscope.engine import journal
from phantoscope.engine.context import Stores
from phantoscope.engine.errors import BadRequestError, ConflictError, EngineError, NotFoundError
from phantoscope.engine.ids import new_id
from phantoscope.engine.intake import ImageInput
from phantoscope.engine.names import partition_name
from phantoscope.engine.pipeline import PipelineVector
from phantoscope.engine.registry import get_application, get_pipeline, pipeline_operators
from phantoscope.operators.base import Box
from phantoscope.storage.meta import ApplicationRow, EntityRow, PipelineRow, VectorRow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UploadItem:
    field: str | None  # None: the application's only image field
    image: ImageInput


@dataclass
class UploadOutcome:
    """One item of an upload: its entity, or the error that stopped it."""

    entity: EntityRow | None = None
    error: EngineError | None = None


def image_field(application: ApplicationRow, field: str | None) -> tuple[str, str]:
    """The image field an upload or search means, and its pipeline."""
    image_fields = {f.name: f.pipeline for f in application.fields if f.type == "object"}
    if field is None:
        if len(image_fields) != 1:
            raise BadRequestError(
                "FIELD_REQUIRED",
                f"application {application.name!r} has image fields "
                f"{', '.join(image_fields)}: say which one",
            )
        field = next(iter(image_fields))
    if field not in image_fields:
        known = {f.name for f in application.fields}
        reason = "is not an image field" if field in known else "does not exist"
        raise BadRequestError(
            "UNKNOWN_FIELD",
            f"field {field!r} {reason} in application {application.name!r}; image fields: "
            f"{', '.join(image_fields)}",
        )
    return field, image_fields[field]  # type: ignore[return-value]


def embed(
    stores: Stores, pipeline: PipelineRow, images: Sequence[ImageInput]
) -> list[PipelineVector]:
    processors, encoder = pipeline_operators(stores, pipeline)
    vectors, _ = stores.runner.run(processors, encoder, [image.b64 for image in images])
    return vectors


def _no_vector(pipeline: PipelineRow) -> BadRequestError:
    found = " (no region was found in it)" if pipeline.processors else ""
    return BadRequestError(
        "NO_VECTOR", f"pipeline {pipeline.name!r} produced no vector for the image{found}"
    )


def _embed_each(
    stores: Stores, pipeline: PipelineRow, images: Sequence[ImageInput]
) -> list[list[PipelineVector] | EngineError]:
    """Vectors per image; when the batch fails on bad input, find out which image it was."""
    try:
        vectors = embed(stores, pipeline, images)
    except BadRequestError:
        if len(images) == 1:
            raise
        return [_embed_one(stores, pipeline, image) for image in images]
    per_image: list[list[PipelineVector] | EngineError] = [[] for _ in images]
    for vector in vectors:
        per_image[vector.source].append(vector)  # type: ignore[union-attr]
    return [found if found else _no_vector(pipeline) for found in per_image]


def _embed_one(
    stores: Stores, pipeline: PipelineRow, image: ImageInput
) -> list[PipelineVector] | EngineError:
    try:
        return embed(stores, pipeline, [image]) or _no_vector(pipeline)
    except BadRequestError as exc:
        return exc


def _undoing(steps: list[Callable[[], None]]) -> bool:
    """Run the undo steps, last first; whether all of them succeeded."""
    undone = True
    for undo in reversed(steps):
        try:
            undo()
        except Exception:
            log.exception("could not undo part of a failed upload")
            undone = False
    return undone


def upload(
    stores: Stores, app_name: str, items: Sequence[UploadItem], *, atomic: bool = True
) -> list[UploadOutcome]:
    """Store each image with its vectors; an item is either wholly stored or not at all.

    ``atomic``: the first item error fails the whole request and nothing is stored.
    Otherwise items failing on their own input get their error and the rest are stored.
    A store failure fails (and undoes) every item either way.
    """
    application = get_application(stores, app_name)
    outcomes = [UploadOutcome() for _ in items]
    by_pipeline: dict[str, list[int]] = defaultdict(list)
    fields: list[str] = []
    for index, item in enumerate(items):
        try:
            field, pipeline = image_field(application, item.field)
        except EngineError as exc:
            outcomes[index].error = exc
            fields.append("")
            continue
        fields.append(field)
        by_pipeline[pipeline].append(index)

    stored: list[tuple[EntityRow, ImageInput]] = []
    collection_writes: dict[str, tuple[list[int], list[np.ndarray]]] = defaultdict(lambda: ([], []))
    for pipeline_name, indexes in by_pipeline.items():
        pipeline = get_pipeline(stores, pipeline_name)
        results = _embed_each(stores, pipeline, [items[i].image for i in indexes])
        for index, result in zip(indexes, results, strict=True):
            if isinstance(result, EngineError):
                outcomes[index].error = result
                continue
            entity = _entity_row(application, fields[index], items[index].image)
            ids, vectors = collection_writes[pipeline.collection]
            for vector in result:
                entity.vectors.append(_vector_row(pipeline.name, vector.box))
                ids.append(entity.vectors[-1].id)
                vectors.append(vector.vector)
            outcomes[index].entity = entity
            stored.append((entity, items[index].image))
    if atomic:
        for outcome in outcomes:
            if outcome.error is not None:
                raise outcome.error
    if stored:
        _write(stores, application, stored, collection_writes)
    return outcomes


def _entity_row(application: ApplicationRow, field: str, image: ImageInput) -> EntityRow:
    return EntityRow(
        id=new_id(),
        application=application.name,
        field=field,
        object_key=f"{application.name}-{uuid.uuid4().hex}",
        content_type=image.content_type,
        sha256=image.sha256,
        size=len(image.data),
    )


def _vector_row(pipeline: str, box: Box | None) -> VectorRow:
    return VectorRow(
        id=new_id(),
        pipeline=pipeline,
        box_left=box.left if box else None,
        box_top=box.top if box else None,
        box_right=box.right if box else None,
        box_bottom=box.bottom if box else None,
        box_score=box.score if box else None,
    )


def _write(
    stores: Stores,
    application: ApplicationRow,
    stored: list[tuple[EntityRow, ImageInput]],
    collection_writes: dict[str, tuple[list[int], list[np.ndarray]]],
) -> None:
    """Journal the upload, write objects, then vectors, then rows (closing the journal row in
    the same transaction); on any failure undo what was written. What the undo could not
    remove stays named by the journal row, for a later repair (see engine/journal.py)."""
    upload = journal.open_upload(
        stores, application.name, application.bucket,
        [entity.object_key for entity, _ in stored],
        {collection: ids for collection, (ids, _) in collection_writes.items()},
    )
    undo: list[Callable[[], None]] = []
    try:
        _put_objects(stores, application.bucket, stored, undo)
        for collection, (ids, vectors) in collection_writes.items():
            undo.append(lambda c=collection, i=ids: stores.vectors.delete(c, i))
            stores.vectors.insert(
                collection, ids, np.stack(vectors), partition=partition_name(application.name)
            )
        stores.meta.add_entities([entity for entity, _ in stored], pending_upload=upload)
    except BaseException:
        if _undoing(undo):
            _undoing([lambda: journal.close_failed(stores, upload)])
        raise


def _put_objects(stores: Stores, bucket: str, stored: list[tuple[EntityRow, ImageInput]],
                 undo: list[Callable[[], None]]) -> None:
    """Write the images side by side; once all have finished, each one written has its undo
    step, and the first failure is raised."""

    def put(entity: EntityRow, image: ImageInput) -> None:
        stores.objects.put(bucket, entity.object_key, image.data, image.content_type)

    writes = [(entity.object_key, stores.object_writers.submit(put, entity, image))
              for entity, image in stored]
    failure: BaseException | None = None
    for key, write in writes:
        try:
            write.result()
        except BaseException as exc:
            failure = failure or exc
            continue
        undo.append(lambda key=key: stores.objects.delete(bucket, key))
    if failure is not None:
        raise failure


def get_entity(stores: Stores, app_name: str, entity_id: int) -> EntityRow:
    get_application(stores, app_name)
    row = stores.meta.get_entity(app_name, entity_id)
    if row is None:
        raise NotFoundError(
            "ENTITY_NOT_FOUND", f"application {app_name!r} has no entity {entity_id}"
        )
    return row


def delete_entity(stores: Stores, app_name: str, entity_id: int) -> EntityRow:
    """Remove an entity's vectors, stored image and rows."""
    application = get_application(stores, app_name)
    entity = get_entity(stores, app_name, entity_id)
    _delete_vectors(stores, [(vector.pipeline, vector.id) for vector in entity.vectors])
    stores.objects.delete(application.bucket, entity.object_key)
    stores.meta.delete_entity(entity.id)
    return entity


def _delete_vectors(stores: Stores, vectors: Sequence[tuple[str, int]]) -> None:
    by_pipeline: dict[str, list[int]] = defaultdict(list)
    for pipeline, vector_id in vectors:
        by_pipeline[pipeline].append(vector_id)
    for pipeline, ids in by_pipeline.items():
        row = stores.meta.get_pipeline(pipeline)
        if row is not None:
            stores.vectors.delete(row.collection, ids)


def list_entities(stores: Stores, app_name: str, num: int, page: int) -> list[EntityRow]:
    get_application(stores, app_name)
    if not 1 <= num <= 1000 or page < 0:
        raise BadRequestError("INVALID_PAGE", "num must be between 1 and 1000 and page at least 0")
    return stores.meta.list_entities(app_name, offset=num * page, limit=num)


def count_entities(stores: Stores, app_name: str) -> int:
    get_application(stores, app_name)
    return stores.meta.count_entities(app_name)


def delete_application(stores: Stores, name: str, force: bool) -> ApplicationRow:
    """Delete an application; with ``force``, also every entity it holds."""
    application = get_application(stores, name)
    held = stores.meta.count_entities(name)
    if held and not force:
        raise ConflictError(
            "APPLICATION_NOT_EMPTY",
            f"application {name!r} holds {held} {'entity' if held == 1 else 'entities'}: "
            f"delete {'it' if held == 1 else 'them'} first, or delete with ?force=true to "
            f"remove {'it' if held == 1 else 'them'} too",
        )
    _delete_vectors(stores, stores.meta.entity_vectors(name))
    for key in stores.meta.entity_object_keys(name):
        stores.objects.delete(application.bucket, key)
    for field in application.fields:
        pipeline = stores.meta.get_pipeline(field.pipeline) if field.pipeline else None
        if pipeline is not None:
            stores.vectors.drop_partition(pipeline.collection, partition_name(name))
    stores.meta.delete_application(name)
    if not any(app.bucket == application.bucket for app in stores.meta.list_applications()):
        stores.objects.delete_bucket(application.bucket)
    return application
