"""Reading a multipart upload: Starlette's form parser against `api/multipart_form`.

A batch upload as httpx writes it (``--files`` JPEG-like files of ``--megabytes`` each: random
bytes, which hold a CR byte in 256 as compressed data does) is read as the API reads it:
Starlette's way is ``request.form()`` (python-multipart, each file written into a
SpooledTemporaryFile that rolls onto disk past 1 MB) then ``await upload.read()`` of each
file; ours is ``request.body()`` then `parse_form`. The body arrives in 64 KiB messages, as
uvicorn hands it over. Printed: CPU milliseconds per file each way (median of ``--repeats``,
interleaved) and the ratio.

    .venv/bin/python bench/multipart_form.py [--files 16] [--megabytes 1.2] [--repeats 15]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import httpx
import numpy as np
from starlette.requests import Request

from phantoscope.api.multipart_form import FormFile, parse_form

CHUNK = 65536


def _request(content_type: str, body: bytes) -> Request:
    chunks = [body[start:start + CHUNK] for start in range(0, len(body), CHUNK)][::-1]

    async def receive() -> dict:
        chunk = chunks.pop() if chunks else b""
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    headers = [(b"content-type", content_type.encode()),
               (b"content-length", str(len(body)).encode())]
    return Request({"type": "http", "method": "POST", "path": "/", "query_string": b"",
                    "headers": headers}, receive)


async def starlette_way(request: Request, content_type: str) -> list[bytes]:
    form = await request.form(max_files=1000, max_fields=100)
    files = [await upload.read() for upload in form.getlist("files")]
    await form.close()
    return files


async def our_way(request: Request, content_type: str) -> list[bytes]:
    form = parse_form(content_type, await request.body())
    return [part.data for part in form.getlist("files") if isinstance(part, FormFile)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=16)
    parser.add_argument("--megabytes", type=float, default=1.2)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    size = int(args.megabytes * 1e6)
    files = [rng.integers(0, 256, size, dtype=np.uint8).tobytes() for _ in range(args.files)]
    request = httpx.Request("POST", "http://bench/", files=[
        ("files", (f"{index}.jpg", data, "image/jpeg")) for index, data in enumerate(files)])
    content_type, body = request.headers["content-type"], request.read()
    ways = {"starlette": starlette_way, "ours": our_way}
    times: dict[str, list[float]] = {name: [] for name in ways}

    async def measure() -> None:
        for repeat in range(args.repeats + 1):
            for name, way in ways.items():
                request = _request(content_type, body)
                started = time.process_time()
                read = await way(request, content_type)
                if repeat:  # the first is a warm-up
                    times[name].append((time.process_time() - started) / args.files * 1000)
                assert read == files, name

    asyncio.run(measure())
    print(f"{args.files} files of {args.megabytes} MB in one multipart body, CPU ms per file, "
          f"median of {args.repeats}:")
    for name, figures in times.items():
        print(f"  {name:>9}: {statistics.median(figures):6.2f}")
    ratio = statistics.median(times["ours"]) / statistics.median(times["starlette"])
    print(f"  ours / starlette: {ratio:.2f}")


if __name__ == "__main__":
    main()
