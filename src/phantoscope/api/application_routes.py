"""/v1/application: applications, upload, search and entities."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from typing import Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from phantoscope.api.deps import image_url, stores_of
from phantoscope.api.image_refs import ImageRef, read_file, read_image
from phantoscope.api.responses import COMMON, errors
from phantoscope.api.serialize import application_json, box_json, entity_json, hit_json
from phantoscope.engine import entities, registry
from phantoscope.engine.context import Stores
from phantoscope.engine.errors import BadRequestError, EngineError, SchemaError, TooLargeError
from phantoscope.engine.intake import ImageInput
from phantoscope.engine.search import check_topk, plan_search, run_search
from phantoscope.metrics import INGESTED_IMAGES
from phantoscope.storage.meta import ApplicationRow

router = APIRouter(prefix="/v1/application", tags=["applications"], responses=COMMON)

MULTIPART = "multipart/form-data"


class CreateApplication(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    fields: dict[str, Any]
    s3_buckets: str | None = Field(None, alias="s3Buckets")


class UploadBody(BaseModel):
    fields: dict[str, ImageRef] = Field(min_length=1)


class SearchBody(BaseModel):
    fields: dict[str, ImageRef] = Field(min_length=1, max_length=1)
    topk: int
    nprobe: int | None = None


class BatchItem(ImageRef):
    field: str | None = None


class BatchBody(BaseModel):
    images: list[BatchItem] = Field(min_length=1)


IMAGE_BODY = {
    "requestBody": {
        "content": {
            "application/json": {"schema": {"type": "object"}},
            MULTIPART: {
                "schema": {
                    "type": "object",
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "field": {"type": "string"},
                    },
                }
            },
        }
    }
}


def _invalid(exc: ValidationError) -> SchemaError:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ())) or "body"
    return SchemaError("INVALID_REQUEST", f"{where}: {first.get('msg', 'invalid')}")


async def _body(request: Request, model: type[BaseModel]) -> BaseModel | FormData:
    """The request as a validated JSON model, or its multipart form."""
    limit = stores_of(request).settings.max_upload_bytes * 2
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLargeError("REQUEST_TOO_LARGE", f"request body over {limit:,} bytes")
    if request.headers.get("content-type", "").startswith(MULTIPART):
        return await request.form(max_files=1000, max_fields=100)
    raw = await request.body()
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadRequestError("MALFORMED_JSON", "the request body is not valid JSON") from None
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise _invalid(exc) from None


async def _files(form: FormData) -> list[tuple[str, bytes]]:
    uploads = [
        value
        for key in ("file", "files")
        for value in form.getlist(key)
        if isinstance(value, UploadFile)
    ]
    if not uploads:
        raise BadRequestError("INVALID_REQUEST", "the form has no `file` (or `files`) part")
    return [
        (upload.filename or f"file {index}", await upload.read())
        for index, upload in enumerate(uploads)
    ]


def _field(form: FormData) -> str | None:
    value = form.get("field")
    return value if isinstance(value, str) and value else None


@router.get("/")
@router.get("", include_in_schema=False)
def list_applications(request: Request) -> list[dict]:
    return [application_json(row) for row in stores_of(request).meta.list_applications()]


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


def _entities_answer(request: Request, application: ApplicationRow, outcomes) -> list[dict]:
    """One object per vector, as the original answered an upload."""
    answer = []
    for outcome in outcomes:
        entity = outcome.entity
        url = image_url(request, application, entity)
        for vector in entity.vectors:
            body = entity_json(entity, application, url)
            body["box"] = box_json(vector.box)
            answer.append(body)
    return answer


def _read_items(stores: Stores, refs: list[tuple[str | None, ImageRef]]):
    return [
        entities.UploadItem(field, read_image(stores, ref, f"fields.{field}"))
        for field, ref in refs
    ]


@router.post("/{name}/upload", openapi_extra=IMAGE_BODY, responses=errors(413, 502))
async def upload(name: str, request: Request) -> list[dict]:
    """Upload one image: JSON `{"fields": {"<field>": {"url"|"data"}}}` or a multipart
    `file` (with an optional `field`). Answers one entity object per vector produced."""
    stores = stores_of(request)
    application = await run_in_threadpool(registry.get_application, stores, name)
    body = await _body(request, UploadBody)
    if isinstance(body, FormData):
        files = await _files(body)
        if len(files) != 1:
            raise BadRequestError("INVALID_REQUEST", "upload takes one file; use upload/batch")
        label, data = files[0]
        items = [
            entities.UploadItem(
                _field(body), await run_in_threadpool(read_file, stores, data, label)
            )
        ]
    else:
        items = await run_in_threadpool(_read_items, stores, list(body.fields.items()))
    outcomes = await run_in_threadpool(entities.upload, stores, name, items)
    INGESTED_IMAGES.labels(name).inc(len(outcomes))
    return await run_in_threadpool(_entities_answer, request, application, outcomes)


def _read_batch(stores: Stores, refs: list[BatchItem]):
    read: list[entities.UploadItem | EngineError] = []
    for index, ref in enumerate(refs):
        try:
            read.append(entities.UploadItem(ref.field, read_image(stores, ref, f"images[{index}]")))
        except EngineError as exc:
            read.append(exc)
    return read


def _check_files(stores: Stores, files: list[tuple[str, bytes]], field: str | None):
    read: list[entities.UploadItem | EngineError] = []
    for label, data in files:
        try:
            read.append(entities.UploadItem(field, read_file(stores, data, label)))
        except EngineError as exc:
            read.append(exc)
    return read


def _error_json(error: EngineError) -> dict:
    return {"status": error.status, "code": error.code, "message": error.message}


@router.post("/{name}/upload/batch", openapi_extra=IMAGE_BODY, responses=errors(413, 502))
async def upload_batch(name: str, request: Request) -> dict:
    """Upload many images in one request: JSON `{"images": [{"url"|"data", "field"?}]}` or
    multipart `files`. Each image succeeds or fails on its own; the answer says which."""
    stores = stores_of(request)
    application = await run_in_threadpool(registry.get_application, stores, name)
    body = await _body(request, BatchBody)
    if isinstance(body, FormData):
        read = await run_in_threadpool(_check_files, stores, await _files(body), _field(body))
    else:
        read = await run_in_threadpool(_read_batch, stores, body.images)
    limit = stores.settings.max_batch_images
    if len(read) > limit:
        raise TooLargeError("BATCH_TOO_LARGE", f"{len(read)} images; the limit is {limit}")
    good = [
        (index, item) for index, item in enumerate(read) if isinstance(item, entities.UploadItem)
    ]
    outcomes = await run_in_threadpool(
        entities.upload, stores, name, [item for _, item in good], atomic=False
    )
    results = await run_in_threadpool(_batch_results, request, application, read,
                                      [index for index, _ in good], outcomes)
    imported = sum("entity" in result for result in results)
    INGESTED_IMAGES.labels(name).inc(imported)
    return {"imported": imported, "failed": len(results) - imported, "results": results}


def _batch_results(request: Request, application: ApplicationRow,
                   read: list[entities.UploadItem | EngineError], uploaded: list[int],
                   outcomes: list[entities.UploadOutcome]) -> list[dict]:
    """One result per image of a batch, in the request's order."""
    results: list[dict] = [
        {"index": index, "error": _error_json(item)}
        for index, item in enumerate(read)
        if isinstance(item, EngineError)
    ]
    for index, outcome in zip(uploaded, outcomes, strict=True):
        if outcome.error is not None:
            results.append({"index": index, "error": _error_json(outcome.error)})
        else:
            url = image_url(request, application, outcome.entity)
            results.append(
                {"index": index, "entity": entity_json(outcome.entity, application, url)}
            )
    return sorted(results, key=lambda result: result["index"])


@router.post("/{name}/search", openapi_extra=IMAGE_BODY, responses=errors(413, 502),
             response_model=list[dict])
async def search(name: str, request: Request) -> JSONResponse:
    """Search by image: JSON `{"fields": {"<field>": {"url"|"data"}}, "topk": 10}` or a
    multipart `file` with `topk` (and optional `field`). Nearest first."""
    stores = stores_of(request)
    body = await _body(request, SearchBody)
    read: Callable[[], ImageInput]
    if isinstance(body, FormData):
        label, data = (await _files(body))[0]
        topk_text = body.get("topk", "10")
        if not isinstance(topk_text, str) or not topk_text.strip().isdigit():
            raise BadRequestError("INVALID_TOPK", "topk must be an integer")
        field, topk = _field(body), int(topk_text)
        read = partial(read_file, stores, data, label)
    else:
        field, ref = next(iter(body.fields.items()))
        topk = body.topk
        read = partial(read_image, stores, ref, f"fields.{field}")
    return await run_in_threadpool(_search_answer, request, name, field, read, topk)


def _search_answer(request: Request, name: str, field: str | None,
                   read: Callable[[], ImageInput], topk: int) -> JSONResponse:
    """A search once its body is parsed, on one worker thread: the event loop runs no query,
    decode or presigning, and a search pays for one hand-over to a thread, not four."""
    stores = stores_of(request)
    plan = plan_search(stores, name, field)
    hits = run_search(stores, plan, read(), check_topk(topk))
    application = plan.application
    return JSONResponse([hit_json(hit, application, image_url(request, application, hit.entity))
                         for hit in hits])


@router.get("/{name}/entity")
def list_entities(
    name: str, request: Request, num: int = Query(10), page: int = Query(0)
) -> list[dict]:
    stores = stores_of(request)
    application = registry.get_application(stores, name)
    rows = entities.list_entities(stores, name, num, page)
    return [entity_json(row, application, image_url(request, application, row)) for row in rows]


@router.get("/{name}/entity/count")
def count_entities(name: str, request: Request) -> dict:
    return {"count": entities.count_entities(stores_of(request), name)}


@router.get("/{name}/entity/{entity_id}")
def get_entity(name: str, entity_id: int, request: Request) -> dict:
    stores = stores_of(request)
    application = registry.get_application(stores, name)
    row = entities.get_entity(stores, name, entity_id)
    return entity_json(row, application, image_url(request, application, row))


@router.get(
    "/{name}/entity/{entity_id}/image",
    response_class=Response,
    responses={
        200: {"description": "The image as uploaded", "content": {"image/*": {}}},
        307: {"description": "S3 storage: a presigned URL of the image"},
    },
)
def entity_image(name: str, entity_id: int, request: Request) -> Response:
    """The stored original image (a redirect to a presigned URL for S3)."""
    stores = stores_of(request)
    application = registry.get_application(stores, name)
    row = entities.get_entity(stores, name, entity_id)
    presigned = stores.objects.presigned_url(
        application.bucket, row.object_key, stores.settings.presign_expires_s
    )
    if presigned:
        return RedirectResponse(presigned)
    data, content_type = stores.objects.get(application.bucket, row.object_key)
    return Response(
        data, media_type=content_type, headers={"Cache-Control": "private, max-age=86400"}
    )


@router.delete("/{name}/entity/{entity_id}")
def delete_entity(name: str, entity_id: int, request: Request) -> dict:
    stores = stores_of(request)
    application = registry.get_application(stores, name)
    row = entities.delete_entity(stores, name, entity_id)
    return entity_json(row, application, "")
