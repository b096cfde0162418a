"""/v1/application: applications, upload, search and entities."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from phantoscope.api.deps import image_url, stores_of
from phantoscope.api.entity_fields import attributes_of, form_attributes, form_name, name_of
from phantoscope.api.image_refs import (
    ImageRef,
    read_budget,
    read_file,
    read_image,
    ref_name,
)
from phantoscope.api.multipart_form import FormFile, read_form
from phantoscope.api.responses import COMMON, errors
from phantoscope.api.serialize import (
    application_json,
    box_json,
    entity_json,
    hit_json,
    text_answer_json,
)
from phantoscope.engine import entities, registry
from phantoscope.engine.catalog import ApplicationPlan
from phantoscope.engine.context import Stores
from phantoscope.engine.entity_filters import request_filter, request_filter_text
from phantoscope.engine.errors import BadRequestError, EngineError, SchemaError, TooLargeError
from phantoscope.engine.filters import Filter
from phantoscope.engine.intake import ImageInput
from phantoscope.engine.model import Application
from phantoscope.engine.pipeline_choice import searched_with
from phantoscope.engine.query_mix import invalid_weights, weights_from_text
from phantoscope.engine.search import MAX_TOPK, check_topk, plan_search, run_search, topk_error
from phantoscope.engine.text_search import MAX_TEXT, plan_text_search, run_text_search
from phantoscope.metrics import INGESTED_IMAGES

router = APIRouter(prefix="/v1/application", tags=["applications"], responses=COMMON)

MULTIPART = "multipart/form-data"
FORMS = (MULTIPART, "application/x-www-form-urlencoded")  # a text search needs no file
TOPK = f"How many images to answer: an integer from 1 to {MAX_TOPK}."


class CreateApplication(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    fields: dict[str, Any]
    s3_buckets: str | None = Field(None, alias="s3Buckets")


NAME = "The entity's name (at most 1024 characters, no control characters)."
ATTRIBUTES = "The user's own keys: a JSON object of strings, numbers, booleans, string lists."
FILTER = "Search only among the entities this structured filter selects."
PIPELINE = ("Search by image with this pipeline instead of the field's own: one a finished "
            "reindex job embedded every image of the field with (to compare the two before "
            "switching).")
REJECT = ("Refuse (409 DUPLICATE, nothing stored) an image that is a copy of a stored entity "
          "(or of an earlier image of the same request).")
CHECK = ("false: store the images without looking for what they copy (faster, as an import "
         "wants); the answer then carries no `duplicate_of`, and the duplicates listing finds "
         "the copies.")
TEXT = (f"Search by words (at most {MAX_TEXT:,} characters): through the pipeline's text "
        "encoder when it has one, else the words name image labels through WordNet. With "
        "an image too: a mixed query (the field's pipeline needs a text encoder).")
TEXT_FIELD = ("The field a text search searches (default: the application's only field "
              "searchable by words; for a mixed query, the only one with a text encoder).")
IMAGE = "The query image (`url` or `data`) of the field named by `field` (or the only one)."
WEIGHTS = ("A mixed query's [w_text, w_image]: two numbers >= 0, not both 0 (default equal); "
           "each query vector is made unit-length, weighted, summed and made unit-length.")
DEFAULT_TOPK = 10


class UploadBody(BaseModel):
    fields: dict[str, ImageRef] = Field(min_length=1)
    name: Any = Field(None, description=NAME)  # checked by the engine's rules
    attributes: Any = Field(None, description=ATTRIBUTES)


class SearchBody(BaseModel):
    fields: dict[str, ImageRef] | None = Field(None, min_length=1, max_length=1)
    image: ImageRef | None = Field(None, description=IMAGE)
    text: Any = Field(None, description=TEXT)  # checked by the engine: INVALID_TEXT
    field: Any = Field(None, description=TEXT_FIELD)
    weights: Any = Field(None, description=WEIGHTS)  # checked by the engine: INVALID_WEIGHTS
    topk: int | None = Field(None, description=TOPK + " Required with an image; default 10 "
                             "with text.")
    nprobe: int | None = None
    filter: Any = Field(None, description=FILTER)  # checked: INVALID_FILTER
    pipeline: Any = Field(None, description=PIPELINE)  # checked by the engine


class BatchItem(ImageRef):
    field: str | None = None
    name: Any = Field(None, description=NAME)
    attributes: Any = Field(None, description=ATTRIBUTES)


class BatchBody(BaseModel):
    images: list[BatchItem] = Field(min_length=1)


def _image_body(**form_fields: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI request body of an image endpoint: JSON, or a multipart `file`."""
    return {
        "requestBody": {
            "content": {
                "application/json": {"schema": {"type": "object"}},
                MULTIPART: {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "file": {"type": "string", "format": "binary"},
                            "field": {"type": "string"},
                            **form_fields,
                        },
                    }
                },
            }
        }
    }


Body = TypeVar("Body", bound=BaseModel)
IMAGE_BODY = _image_body(
    name={"type": "string", "description": NAME + " Default: the file's name."},
    attributes={"type": "string", "description": ATTRIBUTES + " As JSON text."})
SEARCH_BODY = _image_body(
    topk={"type": "integer", "minimum": 1, "maximum": MAX_TOPK, "default": 10,
          "description": TOPK},
    filter={"type": "string", "description": FILTER + " As JSON text."},
    text={"type": "string", "description": TEXT + " With or without `file`."},
    weights={"type": "string", "description": WEIGHTS + ' As "0.3,0.7" or JSON text.'})


def _invalid(exc: ValidationError) -> EngineError:
    first = exc.errors()[0]
    if first.get("loc") == ("topk",) and first.get("type") != "missing":
        return topk_error()  # the same answer as for a topk out of range, or in a form
    where = ".".join(str(part) for part in first.get("loc", ())) or "body"
    return SchemaError("INVALID_REQUEST", f"{where}: {first.get('msg', 'invalid')}")


async def _body(request: Request, model: type[Body]) -> Body | FormData:
    """The request as a validated JSON model, or its form (multipart, or URL-encoded)."""
    limit = stores_of(request).settings.max_upload_bytes * 2
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLargeError("REQUEST_TOO_LARGE", f"request body over {limit:,} bytes")
    if request.headers.get("content-type", "").startswith(FORMS):
        return await read_form(request)
    raw = await request.body()
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadRequestError("MALFORMED_JSON", "the request body is not valid JSON") from None
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise _invalid(exc) from None


@dataclass(frozen=True)
class FilePart:
    filename: str | None
    data: bytes
    label: str  # how errors name it: its file name, else its place


def _files(form: FormData) -> list[FilePart]:
    uploads = [
        value
        for key in ("file", "files")
        for value in form.getlist(key)
        if isinstance(value, FormFile)
    ]
    if not uploads:
        raise BadRequestError("INVALID_REQUEST", "the form has no `file` (or `files`) part")
    return [
        FilePart(upload.filename, upload.data, upload.filename or f"file {index}")
        for index, upload in enumerate(uploads)
    ]


def _field(form: FormData) -> str | None:
    value = form.get("field")
    return value if isinstance(value, str) and value else None


def _has_files(form: FormData) -> bool:
    return any(isinstance(value, FormFile) for key in ("file", "files")
               for value in form.getlist(key))


def _text_field(value: object) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise BadRequestError("INVALID_REQUEST", "field: give the field's name as a string")
    return value


@dataclass(frozen=True)
class Files:
    """The files of a multipart request, read, its `field`, and its `name` and `attributes`
    form fields as sent."""

    files: list[FilePart]
    field: str | None
    name: object = None
    attributes: object = None


async def _upload_body(request: Request, model: type[Body]) -> Body | Files | EngineError:
    """An upload request read on the event loop. What is wrong with it is kept, not raised:
    an unknown application is answered first, as before the body is looked at."""
    try:
        body = await _body(request, model)
        if isinstance(body, FormData):
            return Files(_files(body), _field(body), body.get("name"),
                         body.get("attributes"))
        return body
    except EngineError as exc:
        return exc


@router.get("/")
@router.get("", include_in_schema=False)
def list_applications(request: Request) -> list[dict]:
    return [application_json(row) for row in registry.list_applications(stores_of(request))]


@router.get("/{name}")
def get_application(name: str, request: Request) -> dict:
    return application_json(registry.get_application(stores_of(request), name))


@router.post("/{name}", responses=errors(409))
def create_application(name: str, body: CreateApplication, request: Request) -> dict:
    row = registry.create_application(stores_of(request), name, body.fields, body.s3_buckets)
    return application_json(row)


@router.delete("/{name}", responses=errors(409))
def delete_application(name: str, request: Request, force: bool = False) -> dict:
    """Refused (409) while it holds entities, unless `?force=true`."""
    return application_json(entities.delete_application(stores_of(request), name, force))


def _duplicate_json(outcome: entities.UploadOutcome) -> dict | None:
    found = outcome.duplicate_of
    return None if found is None else {"_id": found.id, "score": found.score}


def _entities_answer(stores: Stores, application: Application,
                     outcomes: list[entities.UploadOutcome]) -> list[dict]:
    """One object per vector, as the original answered an upload, with the stored entity
    the image copies (``duplicate_of``, null when none; left out when not checked)."""
    answer = []
    for outcome in outcomes:
        entity = outcome.entity
        assert entity is not None  # an upload without errors stored every image
        url = image_url(stores, application, entity)
        for vector in entity.vectors:
            body = entity_json(entity, application, url)
            body["box"] = box_json(vector.box)
            if outcome.copies_checked:
                body["duplicate_of"] = _duplicate_json(outcome)
            answer.append(body)
    return answer


def _upload_answer(stores: Stores, name: str, body: UploadBody | Files | EngineError,
                   reject_duplicates: bool = False, check_duplicates: bool = True
                   ) -> list[dict]:
    """The rest of an upload, on one worker thread: the catalog read (once), the image read
    and checked, stored, and the answer built."""
    plan = entities.plan_upload(stores, name)
    if isinstance(body, EngineError):
        raise body
    if isinstance(body, Files):
        if len(body.files) != 1:
            raise BadRequestError("INVALID_REQUEST", "upload takes one file; use upload/batch")
        part = body.files[0]
        name, attributes = form_name(body.name, part.filename), form_attributes(body.attributes)
        items = [entities.UploadItem(body.field, read_file(stores, part.data, part.label),
                                     name, attributes)]
    else:
        attributes = attributes_of(body.attributes)
        names = {field: name_of(body.name, ref_name(ref))
                 for field, ref in body.fields.items()}
        budget = read_budget(stores)
        items = [
            entities.UploadItem(field, read_image(stores, ref, f"fields.{field}", budget),
                                names[field], attributes)
            for field, ref in body.fields.items()
        ]
    outcomes = entities.upload(stores, plan, items, reject_duplicates=reject_duplicates,
                               check_duplicates=check_duplicates)
    INGESTED_IMAGES.labels(name).inc(len(outcomes))
    return _entities_answer(stores, plan.application, outcomes)


@router.post("/{name}/upload", openapi_extra=IMAGE_BODY,
             responses=errors(409, 413, 502))
async def upload(name: str, request: Request,
                 reject_duplicates: bool = Query(False, description=REJECT),
                 check_duplicates: bool = Query(True, description=CHECK)) -> list[dict]:
    """Upload one image: JSON `{"fields": {"<field>": {"url"|"data"}}, "name"?,
    "attributes"?}` or a multipart `file` (with optional `field`, `name` and `attributes`
    as JSON text). The name defaults to the file's name, or the URL's last path segment.
    Answers one entity object per vector produced, each with `duplicate_of`: the stored
    entity the image is a copy of (`{"_id", "score"}`), or null (left out with
    `check_duplicates=false`)."""
    body = await _upload_body(request, UploadBody)
    return await run_in_threadpool(_upload_answer, stores_of(request), name, body,
                                   reject_duplicates, check_duplicates)


@dataclass(frozen=True)
class BatchRead:
    """How to read one image of a batch, and what its entity is called and carries."""

    field: str | None
    image: Callable[[], ImageInput]
    name: str | None
    attributes: dict[str, Any]


def _batch_reads(stores: Stores, body: BatchBody | Files) -> list[BatchRead]:
    """Each image of a batch with its checked name and attributes; a bad name or attributes
    refuses the whole batch (nothing is read or stored)."""
    if isinstance(body, Files):
        attributes = form_attributes(body.attributes)
        return [BatchRead(body.field, partial(read_file, stores, part.data, part.label),
                          form_name(None, part.filename), attributes)
                for part in body.files]
    budget = read_budget(stores)
    return [BatchRead(ref.field, partial(read_image, stores, ref, f"images[{index}]", budget),
                      name_of(ref.name, ref_name(ref),
                              f"images[{index}].name"),
                      attributes_of(ref.attributes, f"images[{index}]"))
            for index, ref in enumerate(body.images)]


def _read_each(reads: list[BatchRead]) -> list[entities.UploadItem | EngineError]:
    """Each image of a batch read and checked, or the error that refused it."""
    read: list[entities.UploadItem | EngineError] = []
    for each in reads:
        try:
            read.append(entities.UploadItem(each.field, each.image(), each.name,
                                            each.attributes))
        except EngineError as exc:
            read.append(exc)
    return read


def _error_json(error: EngineError) -> dict:
    return {"status": error.status, "code": error.code, "message": error.message}


def _batch_answer(stores: Stores, name: str, body: BatchBody | Files | EngineError,
                  reject_duplicates: bool = False, check_duplicates: bool = True) -> dict:
    """The rest of a batch upload, on one worker thread (as :func:`_upload_answer`)."""
    plan = entities.plan_upload(stores, name)
    if isinstance(body, EngineError):
        raise body
    count = len(body.files) if isinstance(body, Files) else len(body.images)
    limit = stores.settings.max_batch_images
    if count > limit:
        raise TooLargeError("BATCH_TOO_LARGE", f"{count} images; the limit is {limit}")
    read = _read_each(_batch_reads(stores, body))
    good = [
        (index, item) for index, item in enumerate(read) if isinstance(item, entities.UploadItem)
    ]
    outcomes = entities.upload(stores, plan, [item for _, item in good], atomic=False,
                               reject_duplicates=reject_duplicates,
                               check_duplicates=check_duplicates)
    results = _batch_results(stores, plan, read, [index for index, _ in good], outcomes)
    imported = sum("entity" in result for result in results)
    INGESTED_IMAGES.labels(name).inc(imported)
    return {"imported": imported, "failed": len(results) - imported, "results": results}


@router.post("/{name}/upload/batch", openapi_extra=IMAGE_BODY, responses=errors(413, 502))
async def upload_batch(name: str, request: Request,
                       reject_duplicates: bool = Query(False, description=REJECT),
                       check_duplicates: bool = Query(True, description=CHECK)) -> dict:
    """Upload many images in one request: JSON `{"images": [{"url"|"data", "field"?,
    "name"?, "attributes"?}]}` or multipart `files` (each named by its file name; an
    `attributes` form field applies to all). Each image succeeds or fails on its own; the
    answer says which, and each stored one's `duplicate_of` (a stored entity or an earlier
    image of the batch that it copies, or null; left out with `check_duplicates=false`). A
    bad name or attributes refuses the whole batch."""
    body = await _upload_body(request, BatchBody)
    return await run_in_threadpool(_batch_answer, stores_of(request), name, body,
                                   reject_duplicates, check_duplicates)


def _batch_results(stores: Stores, plan: ApplicationPlan,
                   read: list[entities.UploadItem | EngineError], uploaded: list[int],
                   outcomes: list[entities.UploadOutcome]) -> list[dict]:
    """One result per image of a batch, in the request's order."""
    application = plan.application
    results: list[dict] = [
        {"index": index, "error": _error_json(item)}
        for index, item in enumerate(read)
        if isinstance(item, EngineError)
    ]
    for index, outcome in zip(uploaded, outcomes, strict=True):
        if outcome.error is not None:
            results.append({"index": index, "error": _error_json(outcome.error)})
        elif outcome.entity is not None:
            url = image_url(stores, application, outcome.entity)
            result = {"index": index,
                      "entity": entity_json(outcome.entity, application, url)}
            if outcome.copies_checked:
                result["duplicate_of"] = _duplicate_json(outcome)
            results.append(result)
    return sorted(results, key=lambda result: result["index"])


def _topk_of(text: object) -> int:
    """A form's `topk`, checked as a JSON one is."""
    try:
        return check_topk(int(text) if isinstance(text, str) else text)
    except ValueError:
        raise topk_error() from None


@dataclass(frozen=True)
class SearchQuery:
    """A search request, parsed: its image (read later, on a worker thread), words or both."""

    field: str | None
    image: Callable[[], ImageInput] | None
    text: object  # None: no words
    weights: object  # None: none given
    topk: int
    filter: Filter | None
    pipeline: object = None  # None: the field's own


async def _form_query(stores: Stores, form: FormData) -> SearchQuery:
    text = form.get("text")
    weights = form.get("weights")
    image = None
    if text is None or _has_files(form):
        part = _files(form)[0]
        image = partial(read_file, stores, part.data, part.label)
    return SearchQuery(
        _field(form), image, text, None if weights is None else weights_from_text(weights),
        _topk_of(form.get("topk", str(DEFAULT_TOPK))), request_filter_text(form.get("filter")),
        form.get("pipeline"))


def _json_query(stores: Stores, body: SearchBody) -> SearchQuery:
    image = None
    if body.fields is not None and body.image is not None:
        raise BadRequestError("INVALID_REQUEST",
                              "give the query image in `fields` or in `image`, not both")
    if body.fields is not None:
        field, ref = next(iter(body.fields.items()))
        named = _text_field(body.field) if body.text is not None else None
        if named not in (None, field):
            raise BadRequestError(
                "INVALID_REQUEST", f"field {named!r} and fields.{field}: name one field")
        image = partial(read_image, stores, ref, f"fields.{field}")
    else:
        field = _text_field(body.field)
        if body.image is not None:
            image = partial(read_image, stores, body.image, "image")
    if body.text is None and image is None:
        raise SchemaError("INVALID_REQUEST", "fields: Field required (or give text or image)")
    if body.topk is None and body.text is None:
        raise SchemaError("INVALID_REQUEST", "topk: Field required (or give text)")
    topk = check_topk(DEFAULT_TOPK if body.topk is None else body.topk)
    return SearchQuery(field, image, body.text, body.weights, topk, request_filter(body.filter),
                       body.pipeline)


@router.post("/{name}/search", openapi_extra=SEARCH_BODY, responses=errors(413, 502),
             response_model=list[dict] | dict)
async def search(name: str, request: Request) -> JSONResponse:
    """Search by image: JSON `{"fields": {"<field>": {"url"|"data"}}, "topk": 10,
    "filter"?: {...}}` (or `{"image": {"url"|"data"}, "field"?, ...}`) or a multipart `file`
    with `topk` (and optional `field`, and `filter` as JSON text). Nearest first. `topk` is an
    integer from 1 to 1000 (INVALID_TOPK otherwise); `filter` selects the entities searched
    among (INVALID_FILTER when it is not a valid filter). `pipeline` (optional): search with
    a pipeline a finished reindex job embedded every image of the field with, instead of the
    field's own (409 REINDEX_REQUIRED / REINDEX_NOT_FINISHED otherwise).

    Search by words: JSON `{"text": "dog on a beach", "topk"?: 10, "filter"?: {...},
    "field"?: "<field>"}` or a multipart form with `text` (and no `file`). Answers
    `{"hits": [...], "terms": [...], "unmatched": [...], "matched_by": ...}`. On a field
    whose pipeline has a text encoder (`"matched_by": "text_encoder"`) the words are
    embedded by it and the image vectors searched: scores as an image search's, `terms` and
    `unmatched` empty. Otherwise (`"labels"`) the words name image labels: `score` in
    [0, 1] (`distance` = 1 - score), `terms` the words that named image classes
    (`{"word", "classes"}`), `unmatched` those that named none (no hits when no word did).

    Mixed query (a field with a text encoder): `text` and an image (`fields`, `image` or a
    `file`), with optional `weights` [w_text, w_image] (JSON, or a form field "0.3,0.7"):
    the two query vectors made unit-length, weighted, summed and made unit-length again."""
    stores = stores_of(request)
    body = await _body(request, SearchBody)
    if isinstance(body, FormData):
        query = await _form_query(stores, body)
    else:
        query = _json_query(stores, body)
    if query.text is not None and query.pipeline is not None:
        raise BadRequestError("INVALID_REQUEST", "pipeline chooses how an image search embeds "
                                                 "its image: leave it out of a search by words")
    if query.text is None:
        if query.weights is not None:
            raise invalid_weights("weigh a text and an image: give both, or no weights")
        assert query.image is not None
        return await run_in_threadpool(_search_answer, stores, name, query.field, query.image,
                                       query.topk, query.filter, query.pipeline)
    return await run_in_threadpool(_text_answer, stores, name, query)


def _search_answer(stores: Stores, name: str, field: str | None,
                   read: Callable[[], ImageInput], topk: int,
                   found: Filter | None, pipeline: object = None) -> JSONResponse:
    """A search once its body is parsed, on one worker thread: the event loop runs no query,
    decode or presigning, and a search pays for one hand-over to a thread, not four."""
    plan = searched_with(stores, plan_search(stores, name, field), pipeline)
    hits = run_search(stores, plan, read(), check_topk(topk), found)
    application = plan.application
    return JSONResponse([hit_json(hit, application, image_url(stores, application, hit.entity))
                         for hit in hits])


def _text_answer(stores: Stores, name: str, query: SearchQuery) -> JSONResponse:
    """A search by words (and an image) once its body is parsed, on one worker thread: all
    is checked before the image is read."""
    planned = plan_text_search(stores, name, query.field, query.text,
                               with_image=query.image is not None, weights=query.weights)
    image = None if query.image is None else query.image()
    result = run_text_search(stores, planned, query.topk, query.filter, image)
    application = result.application
    hits = [hit_json(hit, application, image_url(stores, application, hit.entity))
            for hit in result.hits]
    return JSONResponse(text_answer_json(result, hits))
