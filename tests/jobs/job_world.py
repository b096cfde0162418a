"""What the job tests share: photo folders, an application, waiting for a job."""

from __future__ import annotations

import io
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image


def photo_bytes(number: int, taken_at: str | None = None) -> bytes:
    """A small JPEG of its own (noise drawn from ``number``), with EXIF DateTimeOriginal
    when ``taken_at`` is given."""
    pixels = np.random.default_rng(number).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    exif = Image.Exif()
    if taken_at is not None:
        exif.get_ifd(0x8769)[0x9003] = taken_at
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=90, exif=exif)
    return buffer.getvalue()


def write_photos(folder: Path, names: list[str], first: int = 0) -> dict[str, bytes]:
    """One photo per relative name under ``folder``; the bytes by name."""
    written = {}
    for number, name in enumerate(names, start=first):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        written[name] = photo_bytes(number)
        path.write_bytes(written[name])
    return written


def make_application(api: httpx.Client, endpoint: str, app: str, operator: str) -> None:
    """An operator at ``endpoint``, a pipeline on it and an application with one image
    field, each named after ``app``."""
    answers = [
        api.post("/v1/operator/regist", json={"name": operator, "endpoint": endpoint}),
        api.post(f"/v1/pipeline/{app}-pipe", json={"encoder": operator}),
        api.post(f"/v1/application/{app}", json={
            "fields": {"photo": {"type": "object", "pipeline": f"{app}-pipe"}}}),
    ]
    for answer in answers:
        assert answer.status_code == 200, answer.text


def wait_for_job(api: httpx.Client, job: int, states: tuple[str, ...] = ("done", "failed"),
                 timeout_s: float = 120) -> dict:
    """The job once it is in one of ``states``."""
    deadline = time.monotonic() + timeout_s
    while True:
        status = api.get(f"/v1/jobs/{job}").json()
        if status["state"] in states:
            return status
        assert time.monotonic() < deadline, status
        time.sleep(0.1)
