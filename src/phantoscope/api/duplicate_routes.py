"""/v1/application/<app>/duplicates: groups of copies and of similar shots, and settling
them (delete the extras, or dismiss)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from phantoscope.api.deps import image_url, stores_of
from phantoscope.api.responses import COMMON, errors
from phantoscope.engine import registry
from phantoscope.engine.context import Stores
from phantoscope.engine.duplicate_review import Group, list_groups, resolve_group
from phantoscope.engine.errors import BadRequestError
from phantoscope.engine.model import Application

router = APIRouter(prefix="/v1/application", tags=["duplicates"], responses=COMMON)

KIND = ("copies: the same picture however re-encoded, resized, cropped a little, "
        "colour-adjusted, turned or mirrored; similar: shots of the same scene.")
RESOLVE_BODY = {
    "requestBody": {
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "keep": {"type": "array", "items": {"type": "integer"},
                                 "description": "Entities kept (the group's others not "
                                                "named in `delete` are kept too)."},
                        "delete": {"type": "array", "items": {"type": "integer"},
                                   "description": "Entities deleted, all or none."},
                        "dismiss": {"type": "boolean",
                                    "description": "true: these are not duplicates."},
                    },
                }
            }
        }
    }
}


def _group_json(stores: Stores, application: Application, group: Group) -> dict[str, Any]:
    return {
        "id": group.id,
        "kind": group.kind,
        "entities": [{
            "_id": member.entity.id,
            "name": member.entity.name,
            "score": member.score,
            "width": member.width,
            "height": member.height,
            "bytes": member.entity.size,
            "format": member.format,
            "quality": member.quality,
            "taken_at": member.entity.exif.get("taken_at"),
            "created_at": member.entity.created_at.isoformat() + "Z",
            "_image_url": image_url(stores, application, member.entity),
        } for member in group.members],
        "keep": group.keep,
        "reason": group.reason,
    }


def _listing(stores: Stores, name: str, kind: str, page: int, num: int) -> dict[str, Any]:
    application = registry.get_application(stores, name)
    found = list_groups(stores, name, kind, page, num)
    return {"kind": found.kind,
            "groups": [_group_json(stores, application, group) for group in found.groups],
            "page": found.page, "num": found.num, "total": found.total}


@router.get("/{name}/duplicates")
def duplicates(
    name: str,
    request: Request,
    kind: str = Query("copies", description=KIND),
    page: int = Query(0, description="The page, from 0."),
    num: int = Query(20, description="Groups per page: 1 to 100."),
) -> dict:
    """A page of the application's groups of duplicates, by their smallest entity id; each
    with its entities (`score`: how close each is to the copy to keep), the suggested copy to
    keep and why. Groups already resolved or dismissed are not listed. The first listing
    after a start finds every pair (minutes for 100k images); later ones only the new."""
    return _listing(stores_of(request), name, kind, page, num)


@router.post("/{name}/duplicates/{group}/resolve", openapi_extra=RESOLVE_BODY,
             responses=errors(409))
async def resolve(name: str, group: str, request: Request) -> dict:
    """Settle a group: `{"keep": [ids], "delete": [ids]}` deletes those entities (all or
    none) and keeps the rest; `{"dismiss": true}` records that they are not duplicates.
    Either way the group is not listed again. 409 GROUP_CHANGED when the group changed since
    it was listed."""
    raw = await request.body()
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadRequestError("MALFORMED_JSON", "the request body is not valid JSON") from None
    done = await run_in_threadpool(resolve_group, stores_of(request), name, group, body)
    return {"group": done.group, "action": done.action, "kept": list(done.kept),
            "deleted": [entity.id for entity in done.deleted]}
