"""/v1/pipeline"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from phantoscope.api.deps import stores_of
from phantoscope.api.image_refs import ImageRef, read_image
from phantoscope.api.responses import COMMON, errors
from phantoscope.api.serialize import box_json, pipeline_json
from phantoscope.engine import registry

router = APIRouter(prefix="/v1/pipeline", tags=["pipelines"], responses=COMMON)


class CreatePipeline(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    input: str = "image"
    description: str = ""
    processors: str | list[str] = Field(
        "", description='Processor names, in order: "a,b" as in the original, or a list'
    )
    encoder: str
    index_file_size: int = Field(1024, alias="indexFileSize", ge=1, le=1 << 20)
    text_encoder: str | None = Field(
        None, description="A text encoder of the encoder's embedding space (same dimension "
        "and metric): searches by words embed their words with it")

    def processor_names(self) -> list[str]:
        names = self.processors.split(",") if isinstance(self.processors, str) else self.processors
        return [name.strip() for name in names if name.strip()]


@router.get("/")
@router.get("", include_in_schema=False)
def list_pipelines(request: Request) -> list[dict]:
    return [pipeline_json(row) for row in registry.list_pipelines(stores_of(request))]


@router.get("/{name}")
def get_pipeline(name: str, request: Request) -> dict:
    return pipeline_json(registry.get_pipeline(stores_of(request), name))


@router.post("/{name}", responses=errors(409))
def create_pipeline(name: str, body: CreatePipeline, request: Request) -> dict:
    row = registry.create_pipeline(
        stores_of(request),
        name,
        input=body.input,
        description=body.description,
        processors=body.processor_names(),
        encoder=body.encoder,
        index_file_size=body.index_file_size,
        text_encoder=body.text_encoder,
    )
    return pipeline_json(row)


@router.delete("/{name}", responses=errors(409))
def delete_pipeline(name: str, request: Request) -> dict:
    return pipeline_json(registry.delete_pipeline(stores_of(request), name))


@router.post("/{name}/test", responses=errors(413, 502))
async def test_pipeline(name: str, body: ImageRef, request: Request) -> dict[str, Any]:
    """Run the pipeline on one image (`data`, `url` or `path` and `sha256`) without storing
    anything."""
    stores = stores_of(request)
    registry.get_pipeline(stores, name)
    image = await run_in_threadpool(read_image, stores, body, "image")
    steps = await run_in_threadpool(registry.try_pipeline, stores, name, image.b64)
    return {
        "pipeline": name,
        "steps": [
            {
                "operator": step.operator,
                "type": step.type,
                "crops": [
                    {"box": box_json(item.box), "source": item.source, "data": item.data}
                    for item in step.items
                ]
                if step.type == "processor"
                else None,
                "vectors": step.vectors.tolist() if step.vectors is not None else None,
            }
            for step in steps
        ],
    }
