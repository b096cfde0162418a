"""`/healthz` (the process answers) and `/readyz` (every store and pipeline operator does)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from phantoscope.api.deps import stores_of
from phantoscope.engine import health

CHECK_TIMEOUT_S = 2.5  # each check; the stores first, then the operators: 5 s at most

router = APIRouter(tags=["health"])

Check = dict[str, str]


async def _run(check: Callable[[], object]) -> tuple[Check, object]:
    """``check``'s outcome within the time limit, and what it returned."""
    try:
        value = await asyncio.wait_for(asyncio.to_thread(check), CHECK_TIMEOUT_S)
    except TimeoutError:
        return {"status": "unavailable", "error": f"no answer within {CHECK_TIMEOUT_S} s"}, None
    except Exception as exc:
        return {"status": "unavailable", "error": str(exc) or type(exc).__name__}, None
    return {"status": "ok"}, value


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The server process is alive (touches no store)."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "a store or an operator is down"}})
async def readyz(request: Request) -> JSONResponse:
    """Every store answers, and every operator a pipeline uses is healthy (checked at once,
    each within a few seconds); 503 names what failed."""
    stores = stores_of(request)
    (meta, operators), (vectors, _), (objects, _) = await asyncio.gather(
        _run(partial(health.pipeline_operators, stores)),
        _run(partial(health.ping_vectors, stores)),
        _run(partial(health.ping_objects, stores)),
    )
    checks = {"meta": meta, "vectors": vectors, "objects": objects}
    names = operators if isinstance(operators, list) else []
    outcomes = await asyncio.gather(
        *(_run(partial(health.check_operator, stores, name)) for name in names))
    for name, (check, _) in zip(names, outcomes, strict=True):
        checks[f"operator:{name}"] = check
    ready = all(check["status"] == "ok" for check in checks.values())
    return JSONResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks},
        status_code=200 if ready else 503,
    )
