"""Multipart form bodies, read whole and cut at their delimiters with ``bytes.find``.

Starlette hands a multipart body to python-multipart, which steps through a part in Python
at every CR byte (random bytes, a JPEG's among them, hold one in 256), and writes each file
into a SpooledTemporaryFile that rolls onto disk past 1 MB, to be read back in a thread.
The body, capped by `limits.BodySizeLimit`, is read whole here and cut where its
delimiters stand (RFC 2046: CRLF, two dashes and the boundary), in C; each file's bytes are
copied once. Files come back as `FormFile`, other parts as text, in a Starlette `FormData`.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

from python_multipart.multipart import parse_options_header
from starlette.datastructures import FormData
from starlette.requests import Request

from phantoscope.engine.errors import BadRequestError

__all__ = ["MAX_FIELD_BYTES", "FormFile", "parse_form", "read_form"]

MAX_FILES = 1000
MAX_FIELDS = 100
MAX_FIELD_BYTES = 1 << 20  # a part that is not a file: text, as Starlette caps it
_HEADERS_END = b"\r\n\r\n"


@dataclass(frozen=True)
class FormFile:
    """A part sent with a file name (possibly empty): its name and its bytes."""

    filename: str
    data: bytes


async def read_form(request: Request) -> FormData:
    """The request's form: a multipart body cut here, a URL-encoded one by Starlette."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/"):
        return await request.form(max_files=MAX_FILES, max_fields=MAX_FIELDS)
    return parse_form(content_type, await request.body())


def parse_form(content_type: str, body: bytes) -> FormData:
    """The parts of a multipart ``body`` sent as ``content_type`` (which names the boundary),
    in order; a 400 saying what is wrong with the body where it breaks the format."""
    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise _malformed("the Content-Type names no boundary")
    charset = _charset(options.get(b"charset", b"utf-8"))
    items: list[tuple[str, FormFile | str]] = []
    files = fields = 0
    for start, end in _part_spans(body, boundary):
        headers, data = _split_part(body, start, end)
        disposition = next((value for name, value in headers
                            if name == b"content-disposition"), None)
        _, params = parse_options_header(disposition or b"")
        if b"name" not in params:
            raise _malformed("a part has no Content-Disposition with a name")
        name = _decode(params[b"name"], charset)
        if b"filename" in params:
            files += 1
            if files > MAX_FILES:
                raise BadRequestError("INVALID_REQUEST",
                                      f"more than {MAX_FILES} files in one form: send fewer")
            items.append((name, FormFile(_decode(params[b"filename"], charset), data)))
            continue
        fields += 1
        if fields > MAX_FIELDS:
            raise BadRequestError("INVALID_REQUEST",
                                  f"more than {MAX_FIELDS} fields in one form: send fewer")
        if len(data) > MAX_FIELD_BYTES:
            raise BadRequestError("INVALID_REQUEST", f"form field {name!r} is over "
                                  f"{MAX_FIELD_BYTES:,} bytes: send it as a file part")
        items.append((name, _decode(data, charset)))
    return FormData(items)


def _part_spans(body: bytes, boundary: bytes) -> list[tuple[int, int]]:
    """Where each part lies in ``body``: after its delimiter line, up to the CRLF before the
    next delimiter. A preamble and an epilogue are skipped, as the format asks."""
    dashed = b"--" + boundary
    delimiter = b"\r\n" + dashed
    if body.startswith(dashed):
        position = len(dashed)
    else:
        found = body.find(delimiter)
        if found < 0:
            raise _malformed("the body holds no boundary delimiter")
        position = found + len(delimiter)
    spans = []
    while not body.startswith(b"--", position):
        line_end = body.find(b"\r\n", position)
        if line_end < 0 or body[position:line_end].strip(b" \t"):
            raise _malformed("a boundary delimiter is not followed by a line end")
        start = line_end + 2
        end = body.find(delimiter, start)
        if end < 0:
            raise _malformed("the body ends before its closing boundary delimiter")
        spans.append((start, end))
        position = end + len(delimiter)
    return spans


def _split_part(body: bytes, start: int, end: int) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """A part's headers (names in lower case) and its content."""
    if body.startswith(b"\r\n", start):  # no headers
        return [], body[start + 2:end]
    headers_end = body.find(_HEADERS_END, start, end)
    if headers_end < 0:
        raise _malformed("a part's headers do not end with an empty line")
    headers = []
    for line in body[start:headers_end].split(b"\r\n"):
        name, colon, value = line.partition(b":")
        if not colon:
            raise _malformed("a part's header line has no colon")
        headers.append((name.strip().lower(), value.strip()))
    return headers, body[headers_end + len(_HEADERS_END):end]


def _charset(named: bytes | str) -> str:
    text = named.decode("latin-1") if isinstance(named, bytes) else named
    try:
        return codecs.lookup(text).name
    except LookupError:
        return "latin-1"


def _decode(raw: bytes, charset: str) -> str:
    try:
        return raw.decode(charset)
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _malformed(what: str) -> BadRequestError:
    return BadRequestError("MALFORMED_MULTIPART", f"the multipart body is malformed: {what}")
