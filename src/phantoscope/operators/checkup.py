"""`phantoscope operator test`: is the operator at an endpoint usable?

Calls Identity, waits for Healthy, runs one image through Execute and checks the answer
against what Identity claimed — the checks of the original's test script, made strict.
A text encoder (Identity ``input`` "text") gets a few sentences instead, whose vectors must
tell them apart and be the same for the same sentence, and must refuse an empty text and an
image.
"""

from __future__ import annotations

import base64
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from phantoscope.imaging.codec import BadImageError, b64_to_bytes, decode_image
from phantoscope.operators.proto import HEALTHY
from phantoscope.operators.rpc_client import (
    ExecuteResult,
    OperatorCallError,
    OperatorClient,
    OperatorIdentity,
)

# What a text encoder is checked with: the last sentence repeats the first.
SENTENCES = (
    "a photo of a cat asleep on a sofa",
    "a red car parked beside the sea",
    "two people hiking up a snowy mountain",
    "a photo of a cat asleep on a sofa",
)
REFUSED = "INVALID_ARGUMENT"


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
    # A text encoder's answers to what it must refuse: what was sent -> "CODE: details".
    refusals: dict[str, str] = field(default_factory=dict)
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


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal up to float rounding, relative to the vectors' length."""
    scale = max(float(np.linalg.norm(a)), float(np.linalg.norm(b)))
    return float(np.linalg.norm(a - b)) <= 1e-4 * scale


def _text_problems(identity: OperatorIdentity, result: ExecuteResult) -> list[str]:
    """What is wrong with a text encoder's vectors of :data:`SENTENCES`."""
    if identity.type != "encoder":
        return [f"an operator taking texts must be an encoder, not a {identity.type!r}"]
    vectors = result.vectors
    if result.crops:
        return [f"a text encoder returned {len(result.crops)} crops"]
    if len(vectors) != len(SENTENCES):
        return [f"{len(SENTENCES)} texts gave {len(vectors)} vectors"]
    if vectors.shape[1] != identity.dimension:
        return [f"vector dimension {vectors.shape[1]} differs from the "
                f"{identity.dimension} Identity claims"]
    if not np.isfinite(vectors).all():
        return ["the vectors hold NaN or infinite values"]
    problems = []
    first = SENTENCES.index(SENTENCES[-1])
    if not _same(vectors[first], vectors[-1]):
        problems.append(f"the same sentence ({SENTENCES[first]!r}) gave two different vectors")
    distinct = len(SENTENCES) - 1
    for i in range(distinct):
        for j in range(i + 1, distinct):
            if _same(vectors[i], vectors[j]):
                problems.append(
                    f"different sentences gave the same vector: {SENTENCES[i]!r} and "
                    f"{SENTENCES[j]!r}"
                )
    return problems


def _check_refusals(
    client: OperatorClient, report: CheckReport, image_request: dict[str, list[str]]
) -> None:
    """A text encoder must answer INVALID_ARGUMENT to an empty text and to an image."""
    calls: dict[str, Callable[[], ExecuteResult]] = {
        "an empty text": lambda: client.execute_texts([""]),
        "an image": lambda: client.execute(**image_request),
    }
    for what, call in calls.items():
        try:
            call()
        except OperatorCallError as exc:
            report.refusals[what] = f"{exc.code}: {exc.details}"
            if exc.code != REFUSED:
                report.problems.append(f"{what} got {exc.code}, not {REFUSED}: {exc.details}")
        else:
            report.refusals[what] = "accepted"
            report.problems.append(f"{what} was accepted; a text encoder must refuse it "
                                   f"with {REFUSED}")


def _image_request(image: str | None) -> dict[str, list[str]]:
    """Execute's arguments for ``image`` (a file path or an http(s) URL; None: the sample)."""
    if image and image.startswith(("http://", "https://")):
        return {"urls": [image]}
    data = Path(image).read_bytes() if image else sample_image()
    return {"datas": [base64.b64encode(data).decode("ascii")]}


def check_operator(
    endpoint: str,
    *,
    image: str | None = None,
    wait_s: float = 60.0,
    timeout_s: float = 60.0,
) -> CheckReport:
    """Check the operator at ``endpoint``; ``image`` is a file path or an http(s) URL (for a
    text encoder, the image it must refuse)."""
    report = CheckReport(endpoint)
    with OperatorClient(endpoint, timeout_s=timeout_s) as client:
        try:
            identity = report.identity = client.identity(timeout_s=min(timeout_s, 10))
            report.health = _wait_healthy(client, wait_s)
            if report.health != HEALTHY:
                report.problems.append(f"operator is not healthy: {report.health}")
                return report
            request = _image_request(image)
            texts = identity.input == "text"
            started = time.perf_counter()
            report.result = (
                client.execute_texts(SENTENCES) if texts else client.execute(**request)
            )
            report.seconds = time.perf_counter() - started
            if texts:
                report.problems.extend(_text_problems(identity, report.result))
                _check_refusals(client, report, request)
            else:
                report.problems.extend(_problems_with(identity, report.result))
        except OperatorCallError as exc:
            report.problems.append(str(exc))
    return report
