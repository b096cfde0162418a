"""What the engine hands its callers: operators, pipelines, applications and entities as
plain frozen values, read from the stores inside the engine and never tied to a session."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

# A region of an image: the operator SDK's own value, passed on as operators give it.
from phantoscope.operators.base import Box

__all__ = [
    "Application", "Box", "Entity", "EntityVector", "Field", "Label", "Operator", "Pipeline",
    "StoredImage",
]


@dataclass(frozen=True)
class Operator:
    name: str
    backend: str
    type: str  # "encoder" or "processor"
    input: str
    output: str
    endpoints: list[str]  # the `host:port` of each replica, in registration order
    metric_type: str
    dimension: int
    # the vocabulary of the labels it gives with its vectors ("imagenet-1k"); "" for none
    labels: str = ""


@dataclass(frozen=True)
class Pipeline:
    name: str
    input: str
    output: str
    description: str
    processors: tuple[str, ...]  # operator names, in order
    encoder: str
    dimension: int
    metric_type: str
    index_file_size: int
    collection: str  # the vector store's collection of its vectors
    # the text encoder paired with ``encoder`` (same embedding space): searches by words
    # embed the query with it; None: none (words go through labels, if any)
    text_encoder: str | None = None


@dataclass(frozen=True)
class Field:
    """A field of an application: an image field ("object") runs ``pipeline``; any other
    type holds a constant ``value``."""

    name: str
    type: str
    pipeline: str | None
    value: Any


@dataclass(frozen=True)
class Application:
    name: str
    bucket: str
    fields: tuple[Field, ...]

    def image_fields(self) -> dict[str, str]:
        """Pipeline names by image field, in field order."""
        return {f.name: f.pipeline for f in self.fields if f.type == "object" and f.pipeline}


@dataclass(frozen=True)
class EntityVector:
    id: int
    pipeline: str
    box: Box | None  # the region of the image it describes; None: the whole image


@dataclass(frozen=True)
class Label:
    """A class the encoder saw in an image: its id in the encoder's vocabulary (a WordNet
    synset such as ``n02123045`` for "imagenet-1k"), a name to show, and its probability."""

    id: str
    name: str
    score: float


@dataclass(frozen=True)
class Entity:
    """One stored image of an application."""

    id: int
    application: str
    field: str
    object_key: str
    content_type: str
    size: int
    sha256: str
    created_at: datetime
    vectors: tuple[EntityVector, ...]
    name: str | None = None  # given in the request, or the file's or URL's name
    attributes: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # the user's keys
    # What the image's EXIF says: taken_at (ISO 8601 with offset), camera, width, height,
    # gps {lat, lon}; each key only when known.
    exif: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    # The labels of the whole image, best first (none: a pipeline with processors, an
    # encoder without labels, or an entity stored before labels existed).
    labels: tuple[Label, ...] = ()


@dataclass(frozen=True)
class StoredImage:
    """An entity's image: its bytes, or (object stores that presign) a URL to fetch it from."""

    data: bytes = b""
    content_type: str = ""
    url: str | None = None
