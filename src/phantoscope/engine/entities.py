"""Entities: uploading images (all or nothing), listing and deleting them."""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np

from phantoscope.engine import journal
from phantoscope.engine.boundary import entry_point
from phantoscope.engine.catalog import ApplicationPlan, FieldPlan, application_plan
from phantoscope.engine.context import Stores
from phantoscope.engine.duplicate_backfill import descriptor_row
from phantoscope.engine.duplicate_intake import (
    DuplicateOf,
    NewImage,
    UploadCheck,
    add_unchecked,
    describe_upload,
)
from phantoscope.engine.entity_filters import matching_entities
from phantoscope.engine.entity_records import payload_of
from phantoscope.engine.errors import (
    BadRequestError,
    ConflictError,
    EngineError,
    NotFoundError,
    OperatorFailedError,
    OperatorUnavailableError,
)
from phantoscope.engine.filters import Filter
from phantoscope.engine.ids import new_id
from phantoscope.engine.intake import ImageInput
from phantoscope.engine.model import Application, Entity, StoredImage
from phantoscope.engine.names import partition_name
from phantoscope.engine.photo_exif import exif_at_intake
from phantoscope.engine.pipeline import PipelineVector
from phantoscope.engine.registry import get_application
from phantoscope.engine.rows import entity_of, label_rows, vector_row
from phantoscope.engine.standby import standby_of
from phantoscope.storage.duplicate_rows import DescriptorRow
from phantoscope.storage.meta import EntityRow
from phantoscope.storage.meta_lock import meta_lock
from phantoscope.storage.vectors import VectorPayload

log = logging.getLogger(__name__)
INT64_MAX = 2**63 - 1  # the largest id or row offset SQL databases take


@dataclass(frozen=True)
class UploadItem:
    field: str | None  # None: the application's only image field
    image: ImageInput
    name: str | None = None  # checked (engine.entity_names)
    # checked (engine.attributes)
    attributes: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    # the entity's id when the caller fixed it (a job's item: the same on every attempt, so
    # that a second attempt collides with a first that was stored); None: a new one
    entity_id: int | None = None
    # an entity of the application the new one takes the place of: its rows are deleted in
    # the new one's transaction (a watched file changed), then its vectors and image
    replaces: int | None = None


@dataclass
class UploadOutcome:
    """One item of an upload: its entity, or the error that stopped it."""

    entity: Entity | None = None
    error: EngineError | None = None
    duplicate_of: DuplicateOf | None = None  # the stored entity the image copies
    copies_checked: bool = True  # False: stored without looking for what it copies


plan_upload = entry_point(application_plan)
"""What an upload into the application reads of the catalog, once per upload."""


def embed(stores: Stores, plan: FieldPlan, images: Sequence[ImageInput], *,
          thumbnails: bool = False) -> list[PipelineVector]:
    """The images' vectors; ``thumbnails``: with the encoder's thumbnail of each image where
    it gives them (a pipeline without processors)."""
    pictures = [image.picture for image in images]
    vectors, _ = stores.runner.run(plan.processors, plan.encoder, pictures,
                                   thumbnails=thumbnails)
    return vectors


def _no_vector(plan: FieldPlan) -> BadRequestError:
    found = " (no region was found in it)" if plan.pipeline.processors else ""
    return BadRequestError(
        "NO_VECTOR", f"pipeline {plan.pipeline.name!r} produced no vector for the image{found}"
    )


def embed_each(
    stores: Stores, plan: FieldPlan, images: Sequence[ImageInput], *, thumbnails: bool = False
) -> list[list[PipelineVector] | EngineError]:
    """Vectors per image; when the batch fails on bad input, find out which image it was."""
    try:
        vectors = embed(stores, plan, images, thumbnails=thumbnails)
    except BadRequestError:
        if len(images) == 1:
            raise
        return [_embed_one(stores, plan, image, thumbnails) for image in images]
    per_image: list[list[PipelineVector] | EngineError] = [[] for _ in images]
    for vector in vectors:
        per_image[vector.source].append(vector)  # type: ignore[union-attr]
    return [found if found else _no_vector(plan) for found in per_image]


def _embed_one(
    stores: Stores, plan: FieldPlan, image: ImageInput, thumbnails: bool
) -> list[PipelineVector] | EngineError:
    try:
        return embed(stores, plan, [image], thumbnails=thumbnails) or _no_vector(plan)
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


@entry_point
def upload(
    stores: Stores, plan: ApplicationPlan, items: Sequence[UploadItem], *, atomic: bool = True,
    reject_duplicates: bool = False, check_duplicates: bool = True,
) -> list[UploadOutcome]:
    """Store each image with its vectors, its copy descriptor (and, for a pipeline without
    processors, the labels its encoder gave the image), in the entity's transaction; an item
    is either wholly stored or not at all. Each stored item says which stored entity (or
    earlier item) it copies, if any; with ``reject_duplicates`` such an item is refused
    (409 ``DUPLICATE``) instead. Without ``check_duplicates`` nothing is aligned: the items
    are stored as they are, and the duplicates listing judges them (as an import wants).

    ``plan``: the application's, from :func:`plan_upload`.
    ``atomic``: the first item error fails the whole request and nothing is stored.
    Otherwise items failing on their own input get their error and the rest are stored.
    A store failure fails (and undoes) every item either way.
    """
    application = plan.application
    if reject_duplicates and not check_duplicates:
        raise BadRequestError(
            "INVALID_REQUEST",
            "reject_duplicates=true needs the copy check: leave out check_duplicates=false")
    outcomes = [UploadOutcome(copies_checked=check_duplicates) for _ in items]
    by_field: dict[str, list[int]] = defaultdict(list)
    for index, item in enumerate(items):
        try:
            by_field[plan.field(item.field).field].append(index)
        except EngineError as exc:
            outcomes[index].error = exc

    embedded: dict[int, tuple[FieldPlan, list[PipelineVector]]] = {}  # by item index
    standby: dict[int, list[tuple[FieldPlan, list[PipelineVector]]]] = defaultdict(list)
    for field, indexes in by_field.items():
        results = embed_each(stores, plan.fields[field], [items[i].image for i in indexes],
                             thumbnails=True)
        for index, result in zip(indexes, results, strict=True):
            if isinstance(result, EngineError):
                outcomes[index].error = result
            else:
                embedded[index] = (plan.fields[field], result)
        for other in plan.fields[field].standby:  # a reindex under way, or a switch's grace
            ready = [index for index in indexes if index in embedded]
            if not ready:
                continue
            try:
                results = embed_each(stores, other, [items[i].image for i in ready])
            except (OperatorUnavailableError, OperatorFailedError) as exc:
                # stored without them: a switch to it finds them lacking (see field_switch)
                log.warning("an upload to %s is stored without the vectors of standby "
                            "pipeline %s: %s", application.name, other.pipeline.name, exc)
                continue
            for index, result in zip(ready, results, strict=True):
                if isinstance(result, EngineError):
                    outcomes[index].error = result
                    del embedded[index]
                else:
                    standby[index].append((other, result))

    # two uploads refusing copies, checked at once, could each pass as the other's original:
    # one at a time in every process that shares the stores, from the check to the write
    exclusive = meta_lock(stores.meta, f"reject-duplicates:{application.name}") \
        if reject_duplicates else nullcontext()
    with exclusive:
        _check_and_store(stores, plan, items, embedded, standby, outcomes, atomic=atomic,
                         reject_duplicates=reject_duplicates, check_duplicates=check_duplicates)
    return outcomes


def _check_and_store(
    stores: Stores, plan: ApplicationPlan, items: Sequence[UploadItem],
    embedded: Mapping[int, tuple[FieldPlan, list[PipelineVector]]],
    standby: Mapping[int, list[tuple[FieldPlan, list[PipelineVector]]]],
    outcomes: list[UploadOutcome], *, atomic: bool, reject_duplicates: bool,
    check_duplicates: bool,
) -> None:
    """The second half of :func:`upload`: each embedded item checked for copies, then the
    accepted ones written together; their entities (or errors) set in ``outcomes``."""
    application = plan.application
    stored: dict[int, tuple[EntityRow, ImageInput]] = {}  # by item index
    descriptors: list[DescriptorRow] = []
    collection_writes: dict[str, CollectionWrite] = defaultdict(CollectionWrite)
    entities: dict[int, EntityRow] = {}
    new_images: dict[int, NewImage] = {}  # by item index: the images described
    for index in sorted(embedded):
        field_plan, result = embedded[index]
        entity = entities[index] = _entity_row(application, field_plan.field, items[index])
        for vector in result:
            entity.vectors.append(vector_row(new_id(), field_plan.pipeline.name, vector.box))
        # the labels of the whole image; a processor pipeline's vectors describe crops
        whole = not field_plan.pipeline.processors
        entity.labels = label_rows(entity, result[0].labels) if whole else []
        descriptor = describe_upload(stores, items[index].image,
                                     result[0].thumbnail if whole else None)
        if descriptor is not None:
            new_images[index] = NewImage(entity.id, field_plan, descriptor,
                                         result[0].vector if whole else None,
                                         entity.vectors[0].id if whole else None)
    check = UploadCheck(stores, plan, at_once=reject_duplicates) if check_duplicates else None
    if check is not None:
        _find_copies(check, new_images, outcomes, refuse=reject_duplicates)
    for index, entity in entities.items():
        if outcomes[index].error is not None:
            continue
        if index in new_images:
            descriptors.append(descriptor_row(entity.id, application.name,
                                              new_images[index].descriptor))
        field_plan, result = embedded[index]
        write = collection_writes[field_plan.pipeline.collection]
        payload = payload_of(entity)
        for vector, row in zip(result, entity.vectors, strict=True):
            write.add(row.id, vector.vector, payload)
        for other, vectors in standby.get(index, []):
            write = collection_writes[other.pipeline.collection]
            for vector in vectors:
                entity.vectors.append(vector_row(new_id(), other.pipeline.name, vector.box))
                write.add(entity.vectors[-1].id, vector.vector, payload)
        stored[index] = (entity, items[index].image)
    if atomic:
        for outcome in outcomes:
            if outcome.error is not None:
                raise outcome.error
    if stored:
        replaced = _replaced(stores, application.name, [items[i].replaces for i in stored])
        _write(stores, application, list(stored.values()), collection_writes, descriptors,
               replaced)
        if check is not None:
            check.record([entity.id for entity, _ in stored.values()])
        else:
            add_unchecked(stores, plan, [new_images[index] for index in stored
                                         if index in new_images])
        if replaced:
            delete_stored(stores, application, replaced)
            stores.duplicates.forget(application.name, [entity.id for entity in replaced])
    for index, (entity, _) in stored.items():
        outcomes[index].entity = entity_of(entity)


def _find_copies(check: UploadCheck, new_images: Mapping[int, NewImage],
                 outcomes: list[UploadOutcome], *, refuse: bool) -> None:
    """Set each described image's ``duplicate_of``; with ``refuse``, a copy's error instead.
    Refusing, the images are checked one at a time (a refused copy is the original of no
    later image); else all together (their candidates aligned in larger batches)."""
    if not refuse:
        answers = check.check_all(list(new_images.values()))
        for (index, new), (pairs, _) in zip(new_images.items(), answers, strict=True):
            outcomes[index].duplicate_of = check.copy_of(new, pairs)
        return
    for index, new in new_images.items():
        pairs, pending = check.check(new)
        outcomes[index].duplicate_of = check.copy_of(new, pairs)
        if outcomes[index].duplicate_of is not None:
            outcomes[index].error = _refused_copy(outcomes[index].duplicate_of)
        else:
            check.accept(new, pairs, pending)


def _replaced(stores: Stores, app_name: str, ids: Sequence[int | None]) -> list[Entity]:
    """The entities that items replace (those still there)."""
    rows = (stores.meta.get_entity(app_name, entity_id) for entity_id in ids
            if entity_id is not None)
    return [entity_of(row) for row in rows if row is not None]


def _refused_copy(found: DuplicateOf) -> ConflictError:
    return ConflictError(
        "DUPLICATE",
        f"the image is a copy of entity {found.id} (score {found.score}); nothing was stored. "
        "Upload without reject_duplicates=true to store it anyway",
    )


@dataclass
class CollectionWrite:
    """The vectors an upload inserts into one collection, with their payloads."""

    ids: list[int] = dataclasses.field(default_factory=list)
    vectors: list[np.ndarray] = dataclasses.field(default_factory=list)
    payloads: list[VectorPayload] = dataclasses.field(default_factory=list)

    def add(self, vector_id: int, vector: np.ndarray, payload: VectorPayload) -> None:
        self.ids.append(vector_id)
        self.vectors.append(vector)
        self.payloads.append(payload)


def _entity_row(application: Application, field: str, item: UploadItem) -> EntityRow:
    image = item.image
    photo = exif_at_intake(image.data)
    return EntityRow(
        id=new_id() if item.entity_id is None else item.entity_id,
        application=application.name,
        field=field,
        object_key=f"{application.name}-{uuid.uuid4().hex}",
        content_type=image.content_type,
        sha256=image.sha256,
        size=len(image.data),
        name=item.name,
        attributes=dict(item.attributes),
        exif=photo.exif,
        taken_at=photo.taken_at,
    )


def _write(
    stores: Stores,
    application: Application,
    stored: list[tuple[EntityRow, ImageInput]],
    collection_writes: dict[str, CollectionWrite],
    descriptors: Sequence[DescriptorRow] = (),
    replaced: Sequence[Entity] = (),
) -> None:
    """Journal the upload, write objects, then vectors, then rows with the descriptors
    (closing the journal row and deleting the rows of the ``replaced`` entities in the same
    transaction); on any failure undo what was written. What the undo could not remove
    stays named by the journal row, for a later repair (see engine/journal.py)."""
    upload = journal.open_upload(
        stores, application.name, application.bucket,
        [entity.object_key for entity, _ in stored],
        {collection: write.ids for collection, write in collection_writes.items()},
    )
    undo: list[Callable[[], None]] = []
    try:
        _put_objects(stores, application.bucket, stored, undo)
        for collection, write in collection_writes.items():
            undo.append(lambda c=collection, i=write.ids: stores.vectors.delete(c, i))
            stores.vectors.insert(
                collection, write.ids, np.stack(write.vectors),
                partition=partition_name(application.name), payloads=write.payloads,
            )
        stores.meta.add_entities([*(entity for entity, _ in stored), *descriptors],
                                 pending_upload=upload,
                                 replacing=[entity.id for entity in replaced])
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


@entry_point
def get_entity(stores: Stores, app_name: str, entity_id: int) -> Entity:
    get_application(stores, app_name)
    # ids are positive 64-bit integers: any other has no row (and no database takes it)
    row = stores.meta.get_entity(app_name, entity_id) if 0 < entity_id <= INT64_MAX else None
    if row is None:
        raise NotFoundError(
            "ENTITY_NOT_FOUND", f"application {app_name!r} has no entity {entity_id}"
        )
    return entity_of(row)


@entry_point
def image_link(stores: Stores, application: Application, entity: Entity) -> str | None:
    """A presigned URL of the entity's image, for object stores that give them; else None."""
    return stores.objects.presigned_url(
        application.bucket, entity.object_key, stores.settings.presign_expires_s
    )


@entry_point
def entity_image(stores: Stores, app_name: str, entity_id: int) -> StoredImage:
    """The entity's stored image: a presigned URL where the object store gives one, else
    its bytes."""
    application = get_application(stores, app_name)
    entity = get_entity(stores, app_name, entity_id)
    url = image_link(stores, application, entity)
    if url:
        return StoredImage(url=url)
    data, content_type = stores.objects.get(application.bucket, entity.object_key)
    return StoredImage(data=data, content_type=content_type)


@entry_point
def delete_entity(stores: Stores, app_name: str, entity_id: int) -> Entity:
    """Remove an entity's vectors, stored image and rows."""
    application = get_application(stores, app_name)
    entity = get_entity(stores, app_name, entity_id)
    _delete_vectors(stores, [(vector.pipeline, vector.id) for vector in entity.vectors])
    stores.objects.delete(application.bucket, entity.object_key)
    stores.meta.delete_entity(entity.id)
    stores.duplicates.forget(app_name, [entity.id])
    return entity


def delete_stored(stores: Stores, application: Application, deleted: Sequence[Entity]) -> None:
    """Remove the vectors and images of entities whose rows are already deleted (in the
    transaction that settled them); what cannot be removed now is logged, and left for
    ``phantoscope check --repair`` (a vector or image without a row)."""
    try:
        _delete_vectors(stores, [(vector.pipeline, vector.id) for entity in deleted
                                 for vector in entity.vectors])
        for entity in deleted:
            stores.objects.delete(application.bucket, entity.object_key)
    except Exception:
        log.exception("the rows of entities %s are deleted, but not all their vectors and "
                      "images: `phantoscope check --repair` removes them",
                      [entity.id for entity in deleted])


def _delete_vectors(stores: Stores, vectors: Sequence[tuple[str, int]]) -> None:
    by_pipeline: dict[str, list[int]] = defaultdict(list)
    for pipeline, vector_id in vectors:
        by_pipeline[pipeline].append(vector_id)
    for pipeline, ids in by_pipeline.items():
        row = stores.meta.get_pipeline(pipeline)
        if row is not None:
            stores.vectors.delete(row.collection, ids)


@entry_point
def list_entities(stores: Stores, app_name: str, num: int, page: int,
                  filter: Filter | None = None) -> list[Entity]:
    """A page of the application's entities (those ``filter`` selects), by id."""
    get_application(stores, app_name)
    if not 1 <= num <= 1000 or not 0 <= page <= INT64_MAX // num:
        raise BadRequestError(
            "INVALID_PAGE",
            "num must be between 1 and 1000 and page at least 0 (with num * page under 2^63)",
        )
    if filter is None:
        rows = stores.meta.list_entities(app_name, offset=num * page, limit=num)
    else:
        rows = matching_entities(stores, app_name, filter, offset=num * page, limit=num)
    return [entity_of(row) for row in rows]


@entry_point
def count_entities(stores: Stores, app_name: str) -> int:
    get_application(stores, app_name)
    return stores.meta.count_entities(app_name)


@entry_point
def delete_application(stores: Stores, name: str, force: bool) -> Application:
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
    used = {field.pipeline for field in application.fields if field.pipeline}
    used.update(each for field in application.fields for each in standby_of(field.value))
    for pipeline_name in sorted(used):
        pipeline = stores.meta.get_pipeline(pipeline_name)
        if pipeline is not None:
            stores.vectors.drop_partition(pipeline.collection, partition_name(name))
    stores.meta.delete_application(name)
    stores.duplicates.drop(name)
    if not any(app.bucket == application.bucket for app in stores.meta.list_applications()):
        stores.objects.delete_bucket(application.bucket)
    return application
