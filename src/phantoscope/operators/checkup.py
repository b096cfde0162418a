"""`phantoscope operator test`: is the operator at an endpoint usable?

Calls Identity, waits for Healthy, runs one image through Execute and checks the answer
against what Identity claimed — the checks of the original's test script, made strict.
"""

from __future__ import annotations

import base64
import math
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from phantoscope.imaging.codec import BadImageError, b64_to_bytes, decode_image
from phantoscope.operators.proto import HEALTHY
from phantoscope.operators.rpc_client import (
    ExecuteResult,
    OperatorCallError,
    OperatorClient,
    OperatorIdentity,
)


def sample_image() -> bytes:
    """A small photo shipped with the package (NASA's public-domain astronaut portrait)."""
    return resources.files("phantoscope.assets").joinpath("sample.jpg").read_bytes()


@dataclass
class CheckReport:
    endpoint: str
    identity: OperatorIdentity | None = None
    health: str | None = None
    result: ExecuteResult | None = None
    seconds: float | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _wait_healthy(client: OperatorClient, wait_s: float) -> str:
    deadline = time.monotonic() + wait_s
    while True:
        health = client.health()
        if health == HEALTHY or health.startswith("unhealthy") or time.monotonic() >= deadline:
            return health
        time.sleep(0.5)


def _problems_with(identity: OperatorIdentity, result: ExecuteResult) -> list[str]:
    problems = []
    if identity.type == "encoder":
        if result.crops:
            problems.append(f"an encoder returned {len(result.crops)} crops")
        if len(result.vectors) != 1:
            problems.append(f"one image gave {len(result.vectors)} vectors, expected 1")
        elif result.vectors.shape[1] != identity.dimension:
            problems.append(
                f"vector dimension {result.vectors.shape[1]} differs from the "
                f"{identity.dimension} Identity claims"
            )
        elif not all(math.isfinite(x) for x in result.vectors[0]):
            problems.append("the vector holds NaN or infinite values")
    elif identity.type == "processor":
        if len(result.vectors):
            problems.append(f"a processor returned {len(result.vectors)} vectors")
        for index, crop in enumerate(result.crops):
            try:
                decode_image(b64_to_bytes(crop.data))
            except BadImageError as exc:
                problems.append(f"crop {index} is not an image: {exc}")
    else:
        problems.append(f"unknown operator type {identity.type!r}")
    return problems


def check_operator(
    endpoint: str,
    *,
    image: str | None = None,
    wait_s: float = 60.0,
    timeout_s: float = 60.0,
) -> CheckReport:
    """Check the operator at ``endpoint``; ``image`` is a file path or an http(s) URL."""
    report = CheckReport(endpoint)
    with OperatorClient(endpoint, timeout_s=timeout_s) as client:
        try:
            report.identity = client.identity(timeout_s=min(timeout_s, 10))
            report.health = _wait_healthy(client, wait_s)
            if report.health != HEALTHY:
                report.problems.append(f"operator is not healthy: {report.health}")
                return report
            if image and image.startswith(("http://", "https://")):
                request = {"urls": [image]}
            else:
                data = Path(image).read_bytes() if image else sample_image()
                request = {"datas": [base64.b64encode(data).decode("ascii")]}
            started = time.perf_counter()
            report.result = client.execute(**request)
            report.seconds = time.perf_counter() - started
        except OperatorCallError as exc:
            report.problems.append(str(exc))
            return report
    report.problems.extend(_problems_with(report.identity, report.result))
    return report
