"""Setting up one operator, pipeline and application through the API, and timed calls."""

from __future__ import annotations

import time

import httpx

from photos import b64, jpeg, photo

UPLOAD = {"fields": {"image": {"data": b64(jpeg(photo("coffee")))}}}
SEARCH = {**UPLOAD, "topk": 3}


def set_up(api: httpx.Client, endpoint: str) -> None:
    """Operator `enc` at ``endpoint``, pipeline `pipe`, application `app` with one image."""
    answer = api.post("/v1/operator/regist", json={"name": "enc", "endpoint": endpoint})
    assert answer.status_code == 200, answer.text
    assert api.post("/v1/pipeline/pipe", json={"encoder": "enc"}).status_code == 200
    assert api.post("/v1/application/app", json={
        "fields": {"image": {"type": "object", "pipeline": "pipe"}}}).status_code == 200
    answer = api.post("/v1/application/app/upload", json=UPLOAD)
    assert answer.status_code == 200, answer.text


def timed(call, *args, **kwargs) -> tuple[httpx.Response, float]:
    """The answer and the seconds it took."""
    start = time.monotonic()
    answer = call(*args, **kwargs)
    return answer, time.monotonic() - start
