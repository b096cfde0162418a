"""Multipart bodies cut with `bytes.find` (`api/multipart_form.py`) read as Starlette's own
parser (python-multipart) reads them: bodies as httpx and browsers write them, and bodies
the format allows that neither writes (a preamble, an epilogue, padding after a boundary, a
part without headers)."""

from __future__ import annotations

import asyncio

import httpx
import numpy as np
import pytest
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartParser
from starlette.requests import Request

from phantoscope.api.multipart_form import MAX_FIELD_BYTES, FormFile, parse_form
from phantoscope.engine.errors import BadRequestError

# Bytes a file's delimiter search must step over: CRs, LFs, dashes and the boundary's start.
TRICKY = b"\r\n--\r\n\r\n--b\r\n-\r--" + bytes(range(256)) * 3 + b"\r\n--"
RANDOM = np.random.default_rng(2).integers(0, 256, 300_000, dtype=np.uint8).tobytes()


def _starlette(content_type: str, body: bytes) -> list[tuple[str, object]]:
    """What Starlette's parser makes of ``body``: (name, text or (filename, bytes))."""
    chunks = [body[start:start + 65536] for start in range(0, len(body), 65536)] or [b""]

    async def parse():
        async def stream():
            for chunk in chunks:
                yield chunk

        headers = Request({"type": "http", "headers": [
            (b"content-type", content_type.encode("latin-1"))]}).headers
        form = await MultiPartParser(headers, stream(), max_part_size=MAX_FIELD_BYTES).parse()
        items = []
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                value = (value.filename, await value.read())
            items.append((name, value))
        return items

    return asyncio.run(parse())


def _ours(content_type: str, body: bytes) -> list[tuple[str, object]]:
    return [(name, (value.filename, value.data) if isinstance(value, FormFile) else value)
            for name, value in parse_form(content_type, body).multi_items()]


def _encoded(**kwargs) -> tuple[str, bytes]:
    request = httpx.Request("POST", "http://test/", **kwargs)
    return request.headers["content-type"], request.read()


@pytest.mark.parametrize("kwargs", [
    {"files": {"file": ("photo.jpg", RANDOM, "image/jpeg")}},
    {"files": [("files", ("a.jpg", TRICKY)), ("files", ("b.jpg", b"")),
               ("files", ("", RANDOM[:1000])), ("files", ("ü ñ 写真.png", RANDOM[:7]))],
     "data": {"field": "image", "name": "holidays/beach.jpg",
              "attributes": '{"tags": ["a", "b"], "note": "x\\r\\ny"}'}},
    {"data": {"text": "a red car", "topk": "5", "filter": ""},
     "files": {"other": ("q.txt", b"x")}},
    {"files": {"file": ("line\r\nbreak.jpg", b"\r\n")}},
], ids=["one photo", "a batch with fields", "text fields", "a name with a line break"])
def test_bodies_httpx_writes_read_as_starlette_reads_them(kwargs: dict) -> None:
    content_type, body = _encoded(**kwargs)
    assert _ours(content_type, body) == _starlette(content_type, body)


def _part(name: str, data: bytes, filename: str | None = None) -> bytes:
    disposition = f'form-data; name="{name}"' + (
        f'; filename="{filename}"' if filename is not None else "")
    return (f"Content-Disposition: {disposition}\r\nContent-Type: image/jpeg\r\n\r\n"
            .encode() + data)


BOUNDARY = "----WebKitFormBoundary7MA4YWxkTrZu0gW"
TYPE = f"multipart/form-data; boundary={BOUNDARY}"
DASHED = b"--" + BOUNDARY.encode()


@pytest.mark.parametrize("body", [
    # a browser's: no preamble, CRLF after the closing delimiter
    DASHED + b"\r\n" + _part("file", TRICKY, "a.jpg") + b"\r\n" + DASHED + b"\r\n"
    + _part("field", b"image") + b"\r\n" + DASHED + b"--\r\n",
    # text in UTF-8, padding after a delimiter, an epilogue
    DASHED + b"\r\n" + _part("name", "café".encode()) + b"\r\n" + DASHED + b" \t\r\n"
    + _part("file", RANDOM, "b.jpg") + b"\r\n" + DASHED + b"--\r\nan epilogue\r\n",
], ids=["a browser's", "text, padding, epilogue"])
def test_bodies_the_format_allows_read_as_starlette_reads_them(body: bytes) -> None:
    assert _ours(TYPE, body) == _starlette(TYPE, body)
    assert _ours(TYPE + "; charset=utf-8", body) == _starlette(TYPE + "; charset=utf-8", body)


def test_a_preamble_and_a_part_without_headers_are_read_as_the_format_says() -> None:
    """python-multipart refuses both, which RFC 2046 allows."""
    body = (b"a preamble\r\n" + DASHED + b"\r\n\r\nno headers\r\n" + DASHED + b"\r\n"
            + _part("file", TRICKY, "a.jpg") + b"\r\n" + DASHED + b"--")
    with pytest.raises(BadRequestError, match="no Content-Disposition"):
        parse_form(TYPE, body)
    body = body.replace(b"\r\n\r\nno headers", b"\r\n" + _part("text", b"hi"))
    assert _ours(TYPE, body) == [("text", "hi"), ("file", ("a.jpg", TRICKY))]


@pytest.mark.parametrize(("content_type", "body", "what"), [
    ("multipart/form-data", DASHED + b"--", "names no boundary"),
    (TYPE, b"no delimiter at all", "holds no boundary delimiter"),
    (TYPE, DASHED + b"\r\n" + _part("file", b"abc", "a.jpg"), "before its closing"),
    (TYPE, DASHED + b"x\r\n" + _part("file", b"abc") + b"\r\n" + DASHED + b"--",
     "not followed by a line end"),
    (TYPE, DASHED + b"\r\nContent-Disposition: form-data\r\n\r\nabc\r\n" + DASHED + b"--",
     "no Content-Disposition with a name"),
    (TYPE, DASHED + b"\r\nno colon here\r\n\r\nabc\r\n" + DASHED + b"--", "has no colon"),
    (TYPE, DASHED + b"\r\nContent-Disposition: form-data; name=a" + b"\r\n" + DASHED + b"--",
     "do not end with an empty line"),
])
def test_a_malformed_body_is_a_400_that_names_the_fault(content_type, body, what) -> None:
    with pytest.raises(BadRequestError) as raised:
        parse_form(content_type, body)
    assert raised.value.code == "MALFORMED_MULTIPART"
    assert what in str(raised.value)


def test_too_many_parts_or_an_oversized_field_is_a_400() -> None:
    for kwargs, what in [
        ({"files": [("files", (f"{i}.jpg", b"x")) for i in range(1001)]}, "1000 files"),
        ({"data": {f"k{i}": "v" for i in range(101)}}, "100 fields"),
        ({"data": {"text": "x" * (MAX_FIELD_BYTES + 1)}}, "send it as a file part"),
    ]:
        kwargs.setdefault("files", {"file": ("a.jpg", b"x")})
        with pytest.raises(BadRequestError) as raised:
            parse_form(*_encoded(**kwargs))
        assert raised.value.code == "INVALID_REQUEST" and what in str(raised.value)
