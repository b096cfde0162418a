"""What route handlers get from the running app."""

from __future__ import annotations

from fastapi import Request

from phantoscope.engine.context import Stores
from phantoscope.engine.entities import image_link
from phantoscope.engine.model import Application, Entity


def stores_of(request: Request) -> Stores:
    return request.app.state.stores


def image_url(stores: Stores, application: Application, entity: Entity) -> str:
    """A URL a browser can open: presigned for S3, else this API's image route, under the
    configured public URL (PHANTOSCOPE_PUBLIC_URL), or relative when that is unset; never
    built from what a request says its host is."""
    presigned = image_link(stores, application, entity)
    if presigned:
        return presigned
    base = stores.settings.public_url.rstrip("/")
    return f"{base}/v1/application/{application.name}/entity/{entity.id}/image"
