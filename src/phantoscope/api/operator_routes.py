"""/v1/operator"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from phantoscope.api.deps import stores_of
from phantoscope.api.responses import COMMON, errors
from phantoscope.api.serialize import operator_json
from phantoscope.engine import registry
from phantoscope.engine.model import Operator

REPLICAS_HEADER = "Phantoscope-Replicas"

router = APIRouter(prefix="/v1/operator", tags=["operators"], responses=COMMON)


class RegisterOperator(BaseModel):
    endpoint: str
    name: str


def _json(request: Request, operator: Operator) -> dict:
    return operator_json(operator, registry.replica_states(stores_of(request), operator))


@router.get("/")
@router.get("", include_in_schema=False)
def list_operators(request: Request) -> list[dict]:
    return [_json(request, row) for row in registry.list_operators(stores_of(request))]


@router.post("/regist", responses=errors(409))
async def register(body: RegisterOperator, request: Request) -> dict:
    """Register the operator answering at `endpoint` under `name` (calls its Identity)."""
    row = await run_in_threadpool(
        registry.register_operator, stores_of(request), body.name, body.endpoint
    )
    return _json(request, row)


@router.get("/{name}")
def get_operator(name: str, request: Request) -> dict:
    return _json(request, registry.get_operator(stores_of(request), name))


@router.delete("/{name}", responses=errors(409))
def delete_operator(name: str, request: Request) -> dict:
    return _json(request, registry.delete_operator(stores_of(request), name))


@router.get("/{name}/health", response_class=PlainTextResponse, responses=errors(502))
def operator_health(name: str, request: Request, response: Response) -> str:
    """The operator's own answer, as bare text: `healthy` when a replica can serve. The
    `Phantoscope-Replicas` header lists each replica as `endpoint=up` or `endpoint=down`."""
    answer, replicas = registry.operator_health(stores_of(request), name)
    response.headers[REPLICAS_HEADER] = ",".join(
        f"{replica['endpoint']}={replica['state']}" for replica in replicas
    )
    return answer
