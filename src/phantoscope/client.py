"""A typed, synchronous client for the Phantoscope REST API.

    with PhantoscopeClient("http://127.0.0.1:5000") as client:
        client.operators.register("encoder", "127.0.0.1:50001")
        client.pipelines.create("photos", encoder="encoder")
        client.applications.create("gallery", pipeline="photos")
        client.upload("gallery", Path("cat.jpg"), attributes={"category": "pets"})
        hits = client.search("gallery", Path("query.jpg"), topk=5,
                             filter={"attributes.category": "pets"})
        hits = client.search("gallery", text="dog on a beach", topk=5)
        hits = client.search("gallery", Path("query.jpg"), text="red", weights=(0.3, 0.7))

Images are given as bytes, a path (``str`` or ``os.PathLike``) or an ``http(s)://`` URL,
which the server fetches itself. Each stored image (entity) has a ``name`` (given, else the
file's name, else the URL's last path segment), user ``attributes`` and the ``exif`` the
server read from it, and the ``labels`` its encoder saw in it (ImageNet classes with their
probabilities, for the default encoder); searches and entity listings take a ``filter`` on
them (see the API's search documentation for its keys and operators). A search takes an
image, or words (``text=``), which find images through the pipeline's text encoder (a
CLIP-class pair) or through their labels, or both an image and words (a pipeline with a text
encoder: the two query vectors weighted by ``weights=(w_text, w_image)``).

Every error answer of the API, and failing to reach it, raises :class:`PhantoscopeError`;
reading a local image file may raise ``OSError``.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeAlias
from urllib.parse import quote

import httpx

DEFAULT_URL = "http://127.0.0.1:5000"
API_KEY_ENV = "PHANTOSCOPE_API_KEY"


@dataclass(frozen=True)
class ServerFile:
    """An image the server reads from its own disk instead of receiving it: the file's
    absolute path there (under the server's PHANTOSCOPE_IMPORT_ROOTS) and the SHA-256 of its
    bytes, which the server checks before it stores or searches with them."""

    path: str
    sha256: str


ImageSource: TypeAlias = bytes | str | os.PathLike[str] | ServerFile
# A search or listing filter as the API takes it, e.g. {"attributes.category": "shoes",
# "taken_at": {"gte": "2024-01-01"}, "name": {"prefix": "holidays/"}}.
Filter: TypeAlias = Mapping[str, Any]


class PhantoscopeError(Exception):
    """An error answer of the API: HTTP ``status``, stable ``code`` and ``message``.

    ``status`` is 0 when the server could not be reached or did not answer in time.
    """

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"PhantoscopeError({self.status}, {self.code!r}, {self.message!r})"

    @classmethod
    def from_response(cls, response: httpx.Response) -> PhantoscopeError:
        """The error a response's JSON body (``{"code", "error", "message"}``) describes."""
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("message"), str):
            code = body.get("code") or body.get("error") or "HTTP_ERROR"
            return cls(response.status_code, str(code), body["message"])
        text = response.text.strip()[:300] or response.reason_phrase
        return cls(response.status_code, "HTTP_ERROR", text)


# -- what the API answers ------------------------------------------------------------------


@dataclass(frozen=True)
class Box:
    """A region of an image in pixels (right and bottom exclusive), with its detector score."""

    left: int
    top: int
    right: int
    bottom: int
    score: float

    @classmethod
    def parse(cls, body: Mapping[str, Any] | None) -> Box | None:
        if body is None:
            return None
        return cls(body["left"], body["top"], body["right"], body["bottom"], body["score"])


@dataclass(frozen=True)
class Operator:
    name: str
    backend: str  # the name the operator gives itself
    type: str  # encoder | processor
    input: str
    output: str
    endpoint: str
    metric_type: str
    dimension: int

    @classmethod
    def parse(cls, body: Mapping[str, Any]) -> Operator:
        return cls(
            name=body["_name"],
            backend=body["_backend"],
            type=body["_type"],
            input=body["_input"],
            output=body["_output"],
            endpoint=body["_endpoint"],
            metric_type=body["_metric_type"],
            dimension=int(body["_dimension"]),
        )


@dataclass(frozen=True)
class Pipeline:
    name: str
    input: str
    output: str
    dimension: int
    index_file_size: int
    metric_type: str
    description: str
    processors: tuple[str, ...]
    encoder: str
    text_encoder: str | None = None  # searches by words embed them with it; None: none

    @classmethod
    def parse(cls, body: Mapping[str, Any]) -> Pipeline:
        return cls(
            name=body["_pipeline_name"],
            input=body["_input"],
            output=body["_output"],
            dimension=int(body["_dimension"]),
            index_file_size=int(body["_index_file_size"]),
            metric_type=body["_metric_type"],
            description=body["_description"],
            processors=tuple(name for name in body["_processors"] if name),
            encoder=body["_encoder"],
            text_encoder=body.get("_text_encoder"),
        )


@dataclass(frozen=True)
class Application:
    name: str
    fields: Mapping[str, Mapping[str, Any]]  # as the API shows them: {"type", "pipeline"|"value"}
    bucket: str

    @property
    def image_fields(self) -> dict[str, str]:
        """Image fields and the pipeline of each."""
        return {
            name: spec["pipeline"] for name, spec in self.fields.items() if spec["type"] == "object"
        }

    @classmethod
    def parse(cls, body: Mapping[str, Any]) -> Application:
        return cls(body["_application_name"], body["_fields"], body["_buckets"])


@dataclass(frozen=True)
class EntityVector:
    """One vector stored for an entity: a whole image, or one region a processor found."""

    id: int
    pipeline: str
    box: Box | None


@dataclass(frozen=True)
class Label:
    """A class the encoder saw in an image: its id (a WordNet synset such as ``n02123045``
    for the default encoder), a name to show, and its probability."""

    id: str
    name: str
    score: float


@dataclass(frozen=True)
class DuplicateOf:
    """The stored entity an uploaded image is a copy of, and how closely (1.0: the same
    pixels)."""

    id: int
    score: float

    @classmethod
    def parse(cls, body: Mapping[str, Any] | None) -> DuplicateOf | None:
        return None if body is None else cls(int(body["_id"]), float(body["score"]))


@dataclass(frozen=True)
class Entity:
    """A stored image. ``box``: the region of the vector an upload answer object is about.

    ``name``: its name, or None; ``attributes``: the user's own keys (``{}`` when none);
    ``exif``: what the server read from the image's EXIF (``taken_at`` ISO 8601 text,
    ``camera``, ``width``, ``height``, ``gps`` ``{"lat", "lon"}``; each only when known).
    ``labels``: what the encoder saw in the whole image, best first (empty when its pipeline
    gives none). ``duplicate_of``: in upload answers, the stored entity the image is a copy
    of (None when it is none).
    """

    id: int
    app_name: str
    image_url: str
    field: str
    content_type: str
    size: int
    sha256: str
    created_at: datetime
    vectors: tuple[EntityVector, ...]
    box: Box | None = None
    name: str | None = None
    attributes: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    exif: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    labels: tuple[Label, ...] = ()
    duplicate_of: DuplicateOf | None = None

    @property
    def taken_at(self) -> datetime | None:
        """When the photo was taken, from its EXIF (naive when the camera gave no offset)."""
        text = self.exif.get("taken_at")
        return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None

    @classmethod
    def parse(cls, body: Mapping[str, Any], base: str = "") -> Entity:
        """``base``: the server's URL, which a relative ``_image_url`` is under."""
        created = datetime.fromisoformat(body["created_at"].removesuffix("Z"))
        link = body["_image_url"]
        return cls(
            id=int(body["_id"]),  # a number in upload answers, text in search answers
            app_name=body["_app_name"],
            image_url=f"{base}{link}" if link.startswith("/") else link,
            field=body["field"],
            content_type=body["content_type"],
            size=body["size"],
            sha256=body["sha256"],
            created_at=created if created.tzinfo else created.replace(tzinfo=timezone.utc),
            vectors=tuple(
                EntityVector(int(v["id"]), v["pipeline"], Box.parse(v["box"]))
                for v in body["vectors"]
            ),
            box=Box.parse(body.get("box")),
            name=body.get("name"),
            attributes=body.get("attributes") or {},
            exif=body.get("exif") or {},
            labels=tuple(Label(label["id"], label["name"], label["score"])
                         for label in body.get("labels") or ()),
            duplicate_of=DuplicateOf.parse(body.get("duplicate_of")),
        )


@dataclass(frozen=True)
class Match:
    """One stored region that matched one region of the query image."""

    box: Box | None
    query_box: Box | None
    distance: float
    score: float


@dataclass(frozen=True)
class Hit:
    """A stored image found by a search: its best match first in ``matches``."""

    entity: Entity
    score: float  # larger is better
    distance: float  # in the pipeline's metric
    box: Box | None
    matches: tuple[Match, ...]

    @property
    def id(self) -> int:
        return self.entity.id

    @property
    def name(self) -> str | None:
        return self.entity.name

    @property
    def attributes(self) -> Mapping[str, Any]:
        return self.entity.attributes

    @property
    def exif(self) -> Mapping[str, Any]:
        return self.entity.exif

    @property
    def labels(self) -> tuple[Label, ...]:
        return self.entity.labels

    @classmethod
    def parse(cls, body: Mapping[str, Any], base: str = "") -> Hit:
        return cls(
            entity=Entity.parse(body, base),
            score=body["score"],
            distance=body["distance"],
            box=Box.parse(body["box"]),
            matches=tuple(
                Match(Box.parse(m["box"]), Box.parse(m["query_box"]), m["distance"], m["score"])
                for m in body["matches"]
            ),
        )


class Hits(list[Hit]):
    """A search's hits, best first. For a search by words, also how the server read them:
    ``matched_by`` ("text_encoder": embedded by the pipeline's text encoder; "labels": through
    image labels; None for a search by image alone), and for labels ``terms`` (each word or
    phrase that named image classes, with how many) and ``unmatched`` (the words that named
    none; no hits when no word did)."""

    def __init__(self, hits: Sequence[Hit], terms: Sequence[tuple[str, int]] = (),
                 unmatched: Sequence[str] = (), matched_by: str | None = None) -> None:
        super().__init__(hits)
        self.terms = tuple(terms)
        self.unmatched = tuple(unmatched)
        self.matched_by = matched_by


@dataclass(frozen=True)
class BatchItem:
    """The outcome of one image of a batch upload: its entity or its error."""

    index: int
    entity: Entity | None
    error: PhantoscopeError | None


@dataclass(frozen=True)
class BatchResult:
    imported: int
    failed: int
    results: tuple[BatchItem, ...]  # one per image, in the order given

    @classmethod
    def parse(cls, body: Mapping[str, Any], base: str = "") -> BatchResult:
        items = []
        for result in body["results"]:
            error = result.get("error")
            items.append(
                BatchItem(
                    index=result["index"],
                    entity=dataclasses.replace(
                        Entity.parse(result["entity"], base),
                        duplicate_of=DuplicateOf.parse(result.get("duplicate_of")))
                    if "entity" in result else None,
                    error=PhantoscopeError(error["status"], error["code"], error["message"])
                    if error
                    else None,
                )
            )
        return cls(body["imported"], body["failed"], tuple(items))


@dataclass(frozen=True)
class DuplicateMember:
    """One entity of a group of duplicates. ``score``: how close it is to the copy to keep
    (1.0 for that copy); ``size``: bytes; ``quality``: estimated JPEG quality (None: not a
    JPEG)."""

    id: int
    name: str | None
    score: float
    width: int
    height: int
    size: int
    format: str
    quality: int | None
    taken_at: str | None
    image_url: str

    @classmethod
    def parse(cls, body: Mapping[str, Any], base: str = "") -> DuplicateMember:
        link = body["_image_url"]
        return cls(int(body["_id"]), body.get("name"), body["score"], body["width"],
                   body["height"], body["bytes"], body["format"], body.get("quality"),
                   body.get("taken_at"), f"{base}{link}" if link.startswith("/") else link)


@dataclass(frozen=True)
class DuplicateGroup:
    """Copies of one picture (kind ``copies``) or shots of one scene (``similar``), with the
    suggested copy to ``keep`` and the ``reason`` in words."""

    id: str
    kind: str
    entities: tuple[DuplicateMember, ...]
    keep: int
    reason: str

    @classmethod
    def parse(cls, body: Mapping[str, Any], base: str = "") -> DuplicateGroup:
        return cls(body["id"], body["kind"],
                   tuple(DuplicateMember.parse(each, base) for each in body["entities"]),
                   int(body["keep"]), body["reason"])


@dataclass(frozen=True)
class DuplicatePage:
    kind: str
    groups: tuple[DuplicateGroup, ...]
    page: int
    num: int
    total: int  # groups in all pages


@dataclass(frozen=True)
class Resolution:
    """What resolving or dismissing a group did."""

    group: str
    action: str  # "resolved" or "dismissed"
    kept: tuple[int, ...]
    deleted: tuple[int, ...]


@dataclass(frozen=True)
class Crop:
    """A region a processor found while testing a pipeline, as a base64 JPEG."""

    box: Box | None
    source: int  # index of the image it was cut from
    data: str


@dataclass(frozen=True)
class PipelineStep:
    """What one operator of a pipeline produced: crops (processors) or vectors (encoders)."""

    operator: str
    type: str
    crops: tuple[Crop, ...]
    vectors: tuple[tuple[float, ...], ...]

    @classmethod
    def parse(cls, body: Mapping[str, Any]) -> PipelineStep:
        return cls(
            operator=body["operator"],
            type=body["type"],
            crops=tuple(
                Crop(Box.parse(c["box"]), c["source"], c["data"]) for c in body["crops"] or ()
            ),
            vectors=tuple(tuple(vector) for vector in body["vectors"] or ()),
        )


@dataclass(frozen=True)
class Job:
    """A background job: the application and image field it works on, ``pipeline`` the one
    a reindex embeds with (None for the other kinds); ``done`` and ``failed`` count its
    items, ``errors`` are the first failed items (``(item, reason)``), ``rate`` items a
    second, ``eta_s`` the seconds left at that rate (None when unknown)."""

    id: int
    kind: str
    application: str
    field: str
    pipeline: str | None
    state: str  # queued | running | done | failed | cancelled
    total: int
    done: int
    failed: int
    errors: tuple[tuple[str, str], ...]
    rate: float
    eta_s: float | None

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed", "cancelled")

    @classmethod
    def parse(cls, body: Mapping[str, Any]) -> Job:
        return cls(int(body["id"]), body["kind"], body["application"], body["field"],
                   body["pipeline"], body["state"], body["total"], body["done"],
                   body["failed"], tuple((e["item"], e["reason"]) for e in body["errors"]),
                   float(body["rate"]), body["eta_s"])


# -- the client ----------------------------------------------------------------------------


def is_url(image: ImageSource) -> bool:
    """Whether ``image`` is an http(s) URL for the server to fetch."""
    return isinstance(image, str) and image.startswith(("http://", "https://"))


def _by_reference(image: ImageSource) -> bool:
    """Whether ``image`` travels as a JSON reference the server fetches or reads itself (a URL,
    a server file), not as its bytes."""
    return is_url(image) or isinstance(image, ServerFile)


def _file(image: ImageSource) -> tuple[str, bytes]:
    """(file name, bytes) of an image given as bytes or a path."""
    if isinstance(image, bytes | bytearray):
        return "image", bytes(image)
    path = Path(image)
    return path.name, path.read_bytes()


def _ref(image: ImageSource) -> dict[str, str]:
    """The API's image reference: ``{"url"}``, ``{"path", "sha256"}`` or ``{"data"}``
    (base64)."""
    if is_url(image):
        return {"url": str(image)}
    if isinstance(image, ServerFile):
        return {"path": image.path, "sha256": image.sha256}
    return {"data": base64.b64encode(_file(image)[1]).decode("ascii")}


def _segment(name: str | int) -> str:
    return quote(str(name), safe="")


def _json_text(value: Any) -> str:
    """``value`` as JSON text, for a form field or a query parameter."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _meta(name: str | None, attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ``name`` and ``attributes`` keys of a JSON upload, each only when given."""
    return {
        **({"name": name} if name is not None else {}),
        **({"attributes": dict(attributes)} if attributes is not None else {}),
    }


def _copy_params(reject_duplicates: bool, check_duplicates: bool) -> dict[str, str]:
    """An upload's query parameters for its copy check, each only when not the default."""
    return {**({"reject_duplicates": "true"} if reject_duplicates else {}),
            **({} if check_duplicates else {"check_duplicates": "false"})}


def _fits_part_header(name: str) -> bool:
    """Whether ``name`` reaches the server unchanged as a multipart part's file name: httpx
    percent-encodes quotes and control characters, and the form parser keeps only the last
    segment of what looks like a Windows path."""
    if any(ch == '"' or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in name):
        return False
    return not (name[1:3] == ":\\" or name.startswith("\\\\"))


@dataclass(frozen=True)
class Upload:
    """One image of a batch upload with its own ``name`` and ``attributes`` (None: the
    default name, the batch's attributes)."""

    image: ImageSource
    name: str | None = None
    attributes: Mapping[str, Any] | None = None


def _upload(image: ImageSource | Upload, attributes: Mapping[str, Any] | None) -> Upload:
    """``image`` as an :class:`Upload` with its name and attributes filled in."""
    item = image if isinstance(image, Upload) else Upload(image)
    name = item.name
    if name is None and isinstance(item.image, ServerFile):
        name = Path(item.image.path).name
    elif name is None and not is_url(item.image) and not isinstance(item.image, bytes | bytearray):
        name = Path(item.image).name
    return Upload(item.image, name, item.attributes if item.attributes is not None else attributes)


class PhantoscopeClient:
    """One connection pool to a Phantoscope server; use it as a context manager, or close().

    Thread-safe: one client can serve many threads at once. ``api_key`` (default: the
    ``PHANTOSCOPE_API_KEY`` environment variable) is sent as a bearer token.
    """

    def __init__(
        self, url: str = DEFAULT_URL, timeout: float = 120.0, api_key: str | None = None
    ) -> None:
        self.url = url.rstrip("/")
        api_key = api_key or os.environ.get(API_KEY_ENV)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(base_url=self.url, timeout=timeout, headers=headers)
        self.operators = Operators(self)
        self.pipelines = Pipelines(self)
        self.applications = Applications(self)
        self.entities = Entities(self)
        self.duplicates = Duplicates(self)
        self.jobs = Jobs(self)

    def __enter__(self) -> PhantoscopeClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send a request; an error answer or no answer raises :class:`PhantoscopeError`."""
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            message = f"{self.url} did not answer in time ({exc})"
            raise PhantoscopeError(0, "TIMEOUT", message) from None
        except httpx.TransportError as exc:
            raise PhantoscopeError(0, "UNREACHABLE", f"cannot reach {self.url}: {exc}") from None
        if response.status_code >= 400:
            raise PhantoscopeError.from_response(response)
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.request(method, path, **kwargs).json()

    def ping(self) -> bool:
        """Whether the server answers ``pong``."""
        return self.request("GET", "/v1/settings/ping").text == "pong"

    def stats(self) -> dict[str, int]:
        """How much each store holds: operators, pipelines, applications, entities, vectors..."""
        return self.json("GET", "/v1/settings/stats")

    def _image_field(self, app: str, field: str | None) -> str:
        """``field``, or the application's only image field (JSON requests must name one)."""
        if field is not None:
            return field
        fields = self.applications.get(app).image_fields
        if len(fields) != 1:
            raise PhantoscopeError(
                400,
                "FIELD_REQUIRED",
                f"application {app!r} has image fields {', '.join(fields)}: say which one",
            )
        return next(iter(fields))

    def upload(
        self,
        app: str,
        image: ImageSource,
        field: str | None = None,
        name: str | None = None,
        attributes: Mapping[str, Any] | None = None,
        reject_duplicates: bool = False,
        check_duplicates: bool = True,
    ) -> list[Entity]:
        """Store one image; one entity object per vector produced (a region each, with
        processors), each saying the stored entity the image copies (``duplicate_of``).
        ``field`` may be left out when the application has one image field.
        ``reject_duplicates``: refuse a copy (PhantoscopeError 409 ``DUPLICATE``).
        ``check_duplicates`` False: store it without looking for what it copies (no
        ``duplicate_of``; the duplicates listing finds its copies).

        ``name`` defaults to the file's name for a path or a :class:`ServerFile`, the URL's
        last path segment for a URL (the server's default for those two), and ``image`` for
        bytes (the name of the part they travel in); ``attributes`` are the user's own keys
        (strings, numbers, booleans or lists of strings)."""
        path = f"/v1/application/{_segment(app)}/upload"
        params = _copy_params(reject_duplicates, check_duplicates)
        if _by_reference(image):
            field = self._image_field(app, field)
            body = self.json(
                "POST", path, json={"fields": {field: _ref(image)}, **_meta(name, attributes)},
                params=params,
            )
        else:
            file_name, data = _file(image)
            if name is None and not isinstance(image, bytes | bytearray):
                name = file_name
            form = {
                **({"field": field} if field else {}),
                **({"name": name} if name is not None else {}),
                **({"attributes": _json_text(attributes)} if attributes is not None else {}),
            }
            body = self.json("POST", path, files={"file": (file_name, data)}, data=form,
                             params=params)
        return [Entity.parse(item, self.url) for item in body]

    def upload_batch(
        self,
        app: str,
        images: Sequence[ImageSource | Upload],
        field: str | None = None,
        attributes: Mapping[str, Any] | None = None,
        reject_duplicates: bool = False,
        check_duplicates: bool = True,
    ) -> BatchResult:
        """Store many images in one request; each succeeds or fails on its own (with
        ``reject_duplicates``, a copy of a stored entity or of an earlier image fails with
        ``DUPLICATE``), each stored one saying what it copies (``entity.duplicate_of``;
        ``check_duplicates`` False: not looked for, as :meth:`upload`).

        Each image is an image source, or an :class:`Upload` with its own name and
        attributes; ``attributes`` apply to every image without attributes of its own.
        Names default as for :meth:`upload` (bytes without a name are unnamed when the batch
        goes as JSON). Files and bytes travel as multipart parts (the part's file name is the
        image's name); all go as JSON (bytes in base64) when any is a URL or a
        :class:`ServerFile`, when images differ in attributes, or when a name cannot be a
        part's file name.
        """
        path = f"/v1/application/{_segment(app)}/upload/batch"
        params = _copy_params(reject_duplicates, check_duplicates)
        items = [_upload(image, attributes) for image in images]
        first = items[0].attributes if items else None
        multipart = all(
            not _by_reference(item.image)
            and item.attributes == first
            and (item.name is None or _fits_part_header(item.name))
            for item in items
        )
        if multipart:
            files = []
            for item in items:
                file_name, data = _file(item.image)
                files.append(("files", (item.name or file_name, data)))
            form = {
                **({"field": field} if field else {}),
                **({"attributes": _json_text(first)} if first is not None else {}),
            }
            body = self.json("POST", path, files=files, data=form, params=params)
        else:
            entries = [
                {**_ref(item.image), "field": field, **_meta(item.name, item.attributes)}
                for item in items
            ]
            body = self.json("POST", path, json={"images": entries}, params=params)
        return BatchResult.parse(body, self.url)

    def search(
        self,
        app: str,
        image: ImageSource | None = None,
        topk: int = 10,
        field: str | None = None,
        filter: Filter | None = None,
        *,
        text: str | None = None,
        weights: Sequence[float] | None = None,
        pipeline: str | None = None,
    ) -> Hits:
        """The ``topk`` stored images nearest to ``image``, best first; with ``filter``, the
        ``topk`` nearest of those that match it.

        With ``text`` instead of an image: the images the words describe best, through the
        field's text encoder or else its labels (scores in [0, 1]); ``field`` defaults to the
        application's only field searchable by words. With ``text`` and ``image`` (a field
        with a text encoder): both, weighted by ``weights`` ``(w_text, w_image)`` (default
        equal).

        ``pipeline``: search by image with this pipeline instead of the field's own (one a
        finished reindex job embedded every image of the field with).
        """
        path = f"/v1/application/{_segment(app)}/search"
        if text is not None:
            return self._search_text(path, text, topk, field, filter, image, weights)
        if image is None:
            raise ValueError("search takes an image or text")
        if _by_reference(image):
            field = self._image_field(app, field)
            request: dict[str, Any] = {"fields": {field: _ref(image)}, "topk": topk}
            if filter is not None:
                request["filter"] = filter
            if weights is not None:
                request["weights"] = list(weights)  # the server says they need a text
            if pipeline is not None:
                request["pipeline"] = pipeline
            body = self.json("POST", path, json=request)
        else:
            form = {
                "topk": str(topk),
                **({"field": field} if field else {}),
                **({"filter": _json_text(filter)} if filter is not None else {}),
                **({"weights": _json_text(list(weights))} if weights is not None else {}),
                **({"pipeline": pipeline} if pipeline is not None else {}),
            }
            body = self.json("POST", path, files={"file": _file(image)}, data=form)
        return Hits([Hit.parse(item, self.url) for item in body])


    def _search_text(self, path: str, text: str, topk: int, field: str | None,
                     filter: Filter | None, image: ImageSource | None,
                     weights: Sequence[float] | None) -> Hits:
        """A search by words, with an image too when ``image`` is given: JSON, or a form
        when the image is a file to send."""
        if image is not None and not _by_reference(image):
            form = {
                "text": text,
                "topk": str(topk),
                **({"field": field} if field else {}),
                **({"filter": _json_text(filter)} if filter is not None else {}),
                **({"weights": _json_text(list(weights))} if weights is not None else {}),
            }
            body = self.json("POST", path, files={"file": _file(image)}, data=form)
        else:
            query: dict[str, Any] = {"text": text, "topk": topk}
            if image is not None:
                query["image"] = _ref(image)
            if field:
                query["field"] = field
            if filter is not None:
                query["filter"] = filter
            if weights is not None:
                query["weights"] = list(weights)
            body = self.json("POST", path, json=query)
        return Hits([Hit.parse(item, self.url) for item in body["hits"]],
                    [(term["word"], term["classes"]) for term in body["terms"]],
                    body["unmatched"], body.get("matched_by"))


class _Resource:
    def __init__(self, client: PhantoscopeClient) -> None:
        self._client = client


class Operators(_Resource):
    """/v1/operator: operators registered with the server."""

    def list(self) -> list[Operator]:
        return [Operator.parse(item) for item in self._client.json("GET", "/v1/operator/")]

    def get(self, name: str) -> Operator:
        return Operator.parse(self._client.json("GET", f"/v1/operator/{_segment(name)}"))

    def register(self, name: str, endpoint: str) -> Operator:
        """Register the operator serving at ``endpoint`` (``host:port``) under ``name``."""
        body = {"name": name, "endpoint": endpoint}
        return Operator.parse(self._client.json("POST", "/v1/operator/regist", json=body))

    def delete(self, name: str) -> Operator:
        return Operator.parse(self._client.json("DELETE", f"/v1/operator/{_segment(name)}"))

    def health(self, name: str) -> str:
        """The operator's own answer: ``healthy`` when it can serve."""
        return self._client.request("GET", f"/v1/operator/{_segment(name)}/health").text


class Pipelines(_Resource):
    """/v1/pipeline: processors, in order, then one encoder."""

    def list(self) -> list[Pipeline]:
        return [Pipeline.parse(item) for item in self._client.json("GET", "/v1/pipeline/")]

    def get(self, name: str) -> Pipeline:
        return Pipeline.parse(self._client.json("GET", f"/v1/pipeline/{_segment(name)}"))

    def create(
        self,
        name: str,
        encoder: str,
        processors: Sequence[str] = (),
        description: str = "",
        index_file_size: int = 1024,
        text_encoder: str | None = None,
    ) -> Pipeline:
        """Processors in order, then ``encoder``; with ``text_encoder``, a text encoder of the
        encoder's embedding space (same dimension and metric) that searches by words use."""
        body: dict[str, Any] = {
            "input": "image",
            "description": description,
            "processors": list(processors),
            "encoder": encoder,
            "indexFileSize": index_file_size,
        }
        if text_encoder is not None:
            body["text_encoder"] = text_encoder
        return Pipeline.parse(
            self._client.json("POST", f"/v1/pipeline/{_segment(name)}", json=body)
        )

    def delete(self, name: str) -> Pipeline:
        return Pipeline.parse(self._client.json("DELETE", f"/v1/pipeline/{_segment(name)}"))

    def test(self, name: str, image: ImageSource) -> list[PipelineStep]:
        """Run the pipeline on one image without storing anything: what each step made."""
        path = f"/v1/pipeline/{_segment(name)}/test"
        body = self._client.json("POST", path, json=_ref(image))
        return [PipelineStep.parse(step) for step in body["steps"]]


class Applications(_Resource):
    """/v1/application: image fields bound to pipelines, and a bucket for the images."""

    def list(self) -> list[Application]:
        return [Application.parse(item) for item in self._client.json("GET", "/v1/application/")]

    def get(self, name: str) -> Application:
        return Application.parse(self._client.json("GET", f"/v1/application/{_segment(name)}"))

    def create(
        self,
        name: str,
        fields: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        pipeline: str | None = None,
        field: str = "image",
        bucket: str | None = None,
    ) -> Application:
        """Create an application from field definitions as the API takes them
        (``{"photo": {"type": "object", "pipeline": "p"}}``), or with one image field
        ``field`` bound to ``pipeline``."""
        if (fields is None) == (pipeline is None):
            raise ValueError("give either fields or pipeline")
        if pipeline is not None:
            fields = {field: {"type": "object", "pipeline": pipeline}}
        body: dict[str, Any] = {"fields": fields}
        if bucket is not None:
            body["s3Buckets"] = bucket
        return Application.parse(
            self._client.json("POST", f"/v1/application/{_segment(name)}", json=body)
        )

    def delete(self, name: str, force: bool = False) -> Application:
        """Refused while it holds entities, unless ``force`` (which deletes them too)."""
        params = {"force": "true"} if force else {}
        path = f"/v1/application/{_segment(name)}"
        return Application.parse(self._client.json("DELETE", path, params=params))

    def switch(self, name: str, field: str, pipeline: str) -> Application:
        """Make the image field's searches use ``pipeline`` (409 ``REINDEX_REQUIRED`` or
        ``REINDEX_NOT_FINISHED`` until a reindex job with it is done); the application."""
        path = f"/v1/application/{_segment(name)}/fields/{_segment(field)}/switch"
        return Application.parse(self._client.json("POST", path, json={"pipeline": pipeline}))

    def count(self, name: str) -> int:
        """How many entities (stored images) the application holds."""
        path = f"/v1/application/{_segment(name)}/entity/count"
        return int(self._client.json("GET", path)["count"])


class Entities(_Resource):
    """/v1/application/<app>/entity: the images stored in an application."""

    def list(
        self, app: str, num: int = 10, page: int = 0, filter: Filter | None = None
    ) -> list[Entity]:
        """Page ``page`` (from 0) of ``num`` entities (1 to 1000), oldest id first; with
        ``filter``, of those that match it."""
        path = f"/v1/application/{_segment(app)}/entity"
        params: dict[str, Any] = {"num": num, "page": page}
        if filter is not None:
            params["filter"] = _json_text(filter)
        body = self._client.json("GET", path, params=params)
        return [Entity.parse(item, self._client.url) for item in body]

    def iterate(
        self, app: str, page_size: int = 1000, filter: Filter | None = None
    ) -> Iterator[Entity]:
        """Every entity of the application (that matches ``filter``), a page at a time."""
        page = 0
        while True:
            entities = self.list(app, num=page_size, page=page, filter=filter)
            yield from entities
            if len(entities) < page_size:
                return
            page += 1

    def get(self, app: str, entity_id: int) -> Entity:
        path = f"/v1/application/{_segment(app)}/entity/{_segment(entity_id)}"
        return Entity.parse(self._client.json("GET", path), self._client.url)

    def update(
        self,
        app: str,
        entity_id: int,
        name: str | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> Entity:
        """Rename the entity and/or replace its attributes wholly (``{}`` removes them all);
        what is not given stays as it is."""
        if name is None and attributes is None:
            raise ValueError("give name, attributes or both")
        path = f"/v1/application/{_segment(app)}/entity/{_segment(entity_id)}"
        body = self._client.json("PATCH", path, json=_meta(name, attributes))
        return Entity.parse(body, self._client.url)

    def delete(self, app: str, entity_id: int) -> Entity:
        """Remove the entity, its vectors and its stored image."""
        path = f"/v1/application/{_segment(app)}/entity/{_segment(entity_id)}"
        return Entity.parse(self._client.json("DELETE", path), self._client.url)

    def image(self, app: str, entity_id: int) -> bytes:
        """The stored image file, as uploaded."""
        path = f"/v1/application/{_segment(app)}/entity/{_segment(entity_id)}/image"
        return self._client.request("GET", path, follow_redirects=True).content


class Duplicates(_Resource):
    """/v1/application/<app>/duplicates: groups of copies and of similar shots."""

    def list(self, app: str, kind: str = "copies", page: int = 0, num: int = 20
             ) -> DuplicatePage:
        """Page ``page`` (from 0) of ``num`` groups (1 to 100) of ``kind`` (``copies`` or
        ``similar``), by their smallest entity id; settled groups are not listed."""
        path = f"/v1/application/{_segment(app)}/duplicates"
        body = self._client.json("GET", path, params={"kind": kind, "page": page, "num": num})
        return DuplicatePage(body["kind"], tuple(DuplicateGroup.parse(each, self._client.url)
                                                 for each in body["groups"]),
                             body["page"], body["num"], body["total"])

    def iterate(self, app: str, kind: str = "copies", page_size: int = 100
                ) -> Iterator[DuplicateGroup]:
        """Every unsettled group of ``kind``, a page at a time."""
        page = 0
        while True:
            found = self.list(app, kind, page, page_size)
            yield from found.groups
            if (page + 1) * page_size >= found.total:
                return
            page += 1

    def resolve(self, app: str, group: str, keep: Sequence[int] = (),
                delete: Sequence[int] = ()) -> Resolution:
        """Delete the group's entities named in ``delete`` (all or none) and keep the rest;
        the group is not listed again (409 ``GROUP_CHANGED`` when it changed since it was
        listed)."""
        return self._settle(app, group, {"keep": list(keep), "delete": list(delete)})

    def dismiss(self, app: str, group: str) -> Resolution:
        """Record that the group's entities are not duplicates; it is not listed again."""
        return self._settle(app, group, {"dismiss": True})

    def _settle(self, app: str, group: str, body: dict[str, Any]) -> Resolution:
        path = f"/v1/application/{_segment(app)}/duplicates/{_segment(group)}/resolve"
        done = self._client.json("POST", path, json=body)
        return Resolution(done["group"], done["action"], tuple(done["kept"]),
                          tuple(done["deleted"]))


class Jobs(_Resource):
    """/v1/jobs: work the server does in the background."""

    def list(self) -> list[Job]:
        """The newest jobs first."""
        return [Job.parse(body) for body in self._client.json("GET", "/v1/jobs")]

    def get(self, job_id: int) -> Job:
        return Job.parse(self._client.json("GET", f"/v1/jobs/{_segment(job_id)}"))

    def start_import(self, app: str, *, folder: str | os.PathLike[str] | None = None,
                     urls: Sequence[str] | None = None, s3: str | None = None,
                     field: str | None = None,
                     attributes: Mapping[str, Any] | None = None) -> Job:
        """Import every image of a folder on the server (under its PHANTOSCOPE_IMPORT_ROOTS;
        named by their paths under it), of ``urls``, or under an ``s3://bucket/prefix`` of
        the server's S3 endpoint (named by their keys under the prefix); ``attributes`` go
        with each."""
        given = {"folder": None if folder is None else os.fspath(folder),
                 "urls": None if urls is None else list(urls), "s3": s3}
        sources = {kind: value for kind, value in given.items() if value is not None}
        if len(sources) != 1:
            raise ValueError("give one of folder, urls or s3")
        return self._start("import", app, sources, field, attributes)

    def start_watch(self, app: str, folder: str | os.PathLike[str], *,
                    field: str | None = None,
                    attributes: Mapping[str, Any] | None = None) -> Job:
        """Keep the application in step with a folder on the server: files added or changed
        are imported, files removed lose their entity, until the job is cancelled."""
        return self._start("watch", app, {"folder": os.fspath(folder)}, field, attributes)

    def start_reindex(self, app: str, pipeline: str, *, field: str | None = None) -> Job:
        """Embed every stored image of the application's field (default: its only image
        field) again with ``pipeline``, in the background; searches keep the field's own
        pipeline until :meth:`Applications.switch`."""
        body: dict[str, Any] = {"kind": "reindex", "application": app, "pipeline": pipeline}
        if field is not None:
            body["field"] = field
        return Job.parse(self._client.json("POST", "/v1/jobs", json=body))

    def _start(self, kind: str, app: str, source: dict[str, Any], field: str | None,
               attributes: Mapping[str, Any] | None) -> Job:
        body: dict[str, Any] = {"kind": kind, "application": app, "source": source}
        if field is not None:
            body["field"] = field
        if attributes is not None:
            body["attributes"] = dict(attributes)
        return Job.parse(self._client.json("POST", "/v1/jobs", json=body))

    def cancel(self, job_id: int) -> Job:
        """Stop a queued or running job (409 ``JOB_FINISHED`` when it has ended)."""
        return Job.parse(self._client.json("POST", f"/v1/jobs/{_segment(job_id)}/cancel"))

    def wait(self, job_id: int, timeout_s: float | None = None, poll_s: float = 0.5,
             on_progress: Callable[[Job], None] | None = None) -> Job:
        """The job once it has ended (``TimeoutError`` after ``timeout_s``); ``on_progress``
        gets each state read on the way."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            job = self.get(job_id)
            if on_progress is not None:
                on_progress(job)
            if job.finished:
                return job
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} is still {job.state} after {timeout_s} s")
            time.sleep(poll_s)
