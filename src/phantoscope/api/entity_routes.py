"""/v1/application/<app>/entity: listing (optionally filtered), counting, reading, renaming
and deleting an application's entities."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from phantoscope.api.deps import image_url, stores_of
from phantoscope.api.responses import COMMON
from phantoscope.api.serialize import entity_json
from phantoscope.engine import entities, registry
from phantoscope.engine.context import Stores
from phantoscope.engine.entity_filters import request_filter_text
from phantoscope.engine.entity_updates import UNCHANGED, update_entity
from phantoscope.engine.errors import BadRequestError

router = APIRouter(prefix="/v1/application", tags=["entities"], responses=COMMON)

FILTER = ("A structured filter as JSON text (the search filter): only the entities it "
          "selects, in the same order.")
PATCH_BODY = {
    "requestBody": {
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "name": {"type": ["string", "null"],
                                 "description": "The new name (null or \"\": none)."},
                        "attributes": {"type": "object",
                                       "description": "Replaces the attributes wholly."},
                    },
                }
            }
        }
    }
}


@router.get("/{name}/entity")
def list_entities(
    name: str,
    request: Request,
    num: int = Query(10, description="Entities per page: 1 to 1000."),
    page: int = Query(0, description="The page, from 0 (num * page under 2^63)."),
    filter: str | None = Query(None, description=FILTER),
) -> list[dict]:
    """A page of the application's entities by id; with `filter`, of those it selects (it
    reads the application's entities in id order until the page is full: a filter that
    only a few entities pass costs a read of many)."""
    stores = stores_of(request)
    application = registry.get_application(stores, name)
    found = entities.list_entities(stores, name, num, page, request_filter_text(filter))
    return [entity_json(entity, application, image_url(stores, application, entity))
            for entity in found]


@router.get("/{name}/entity/count")
def count_entities(name: str, request: Request) -> dict:
    return {"count": entities.count_entities(stores_of(request), name)}


@router.get("/{name}/entity/{entity_id}")
def get_entity(name: str, entity_id: int, request: Request) -> dict:
    stores = stores_of(request)
    application = registry.get_application(stores, name)
    entity = entities.get_entity(stores, name, entity_id)
    return entity_json(entity, application, image_url(stores, application, entity))


@router.patch("/{name}/entity/{entity_id}", openapi_extra=PATCH_BODY)
async def patch_entity(name: str, entity_id: int, request: Request) -> dict:
    """Change the entity's `name` and/or `attributes` (replaced wholly); answers the
    entity."""
    raw = await request.body()
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadRequestError("MALFORMED_JSON", "the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise BadRequestError("INVALID_REQUEST", "body: give a JSON object with `name` "
                                                 "and/or `attributes`")
    return await run_in_threadpool(_patched, stores_of(request), name, entity_id, body)


def _patched(stores: Stores, name: str, entity_id: int, body: dict[str, Any]) -> dict:
    application = registry.get_application(stores, name)
    entity = update_entity(stores, name, entity_id, body.get("name", UNCHANGED),
                           body.get("attributes", UNCHANGED))
    return entity_json(entity, application, image_url(stores, application, entity))


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
    image = entities.entity_image(stores_of(request), name, entity_id)
    if image.url:
        return RedirectResponse(image.url)
    return Response(
        image.data, media_type=image.content_type,
        headers={"Cache-Control": "private, max-age=86400"},
    )


@router.delete("/{name}/entity/{entity_id}")
def delete_entity(name: str, entity_id: int, request: Request) -> dict:
    stores = stores_of(request)
    application = registry.get_application(stores, name)
    entity = entities.delete_entity(stores, name, entity_id)
    return entity_json(entity, application, "")
