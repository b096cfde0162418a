"""/v1/application/<app>/fields/<field>/switch: an image field moved to another pipeline."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from phantoscope.api.deps import stores_of
from phantoscope.api.responses import COMMON, errors
from phantoscope.api.serialize import application_json
from phantoscope.engine.field_switch import switch_field

router = APIRouter(prefix="/v1/application", tags=["application"], responses=COMMON)


class Switch(BaseModel):
    """Checked by the engine, which names what to fix."""

    model_config = ConfigDict(extra="ignore")

    pipeline: Any = Field(description="The pipeline the field's searches use from now on: one "
                                      "a finished reindex job embedded every image with")


@router.post("/{name}/fields/{field}/switch", responses=errors(404, 409))
def switch(name: str, field: str, body: Switch, request: Request) -> dict[str, Any]:
    """Make the field's searches use another pipeline, at once. The pipeline needs a
    finished reindex of the field (POST /v1/jobs {"kind": "reindex", ...}); the pipeline
    used until now keeps its vectors for PHANTOSCOPE_SWITCH_GRACE_S (switching back within
    it needs no reindex), then they are removed. Answers the application."""
    return application_json(switch_field(stores_of(request), name, field, body.pipeline))
