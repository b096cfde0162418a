"""What route handlers get from the running app."""

from __future__ import annotations

from fastapi import Request

from phantoscope.engine.context import Stores
from phantoscope.storage.meta import ApplicationRow, EntityRow


def stores_of(request: Request) -> Stores:
    return request.app.state.stores


def image_url(request: Request, application: ApplicationRow, entity: EntityRow) -> str:
    """A URL a browser can open: presigned for S3, served by this API for a folder store."""
    stores = stores_of(request)
    presigned = stores.objects.presigned_url(
        application.bucket, entity.object_key, stores.settings.presign_expires_s
    )
    if presigned:
        return presigned
    base = str(request.base_url).rstrip("/")
    return f"{base}/v1/application/{application.name}/entity/{entity.id}/image"
