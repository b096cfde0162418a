"""The one class an operator author subclasses.

An operator turns a batch of decoded RGB images into either one vector each (an *encoder*)
or a list of crops each (a *processor*); an encoder whose model also classifies may give each
image's top labels with its vector (see :meth:`Encoder.encode`). A *text encoder* turns a
batch of texts into vectors of the same space as an image encoder's (CLIP's two towers), so a
pipeline pairing the two can be searched by words. Everything else — decoding
base64, fetching URLs, batching concurrent requests, health and error reporting — is the
serving side's job (:mod:`phantoscope.operators.server`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
from PIL import Image

from phantoscope.imaging.codec import decode_image
from phantoscope.imaging.phash import thumbnail
from phantoscope.operators.labels import Label

OperatorType = Literal["encoder", "processor"]


@dataclass(frozen=True)
class Box:
    """A region of an image in pixel coordinates (right and bottom exclusive)."""

    left: int
    top: int
    right: int
    bottom: int
    score: float = 1.0


@dataclass
class Crop:
    """One region a processor found: the cropped image and where it lies in its source."""

    image: Image.Image
    box: Box | None = None  # None when the operator cannot say (e.g. original-style ones)


@dataclass(frozen=True)
class Encoding:
    """What an encoder made of a batch: one vector per image and, from the same model call,
    each image's top labels, best first (None when the encoder gives no labels)."""

    vectors: np.ndarray | list[list[float]]
    labels: list[list[Label]] | None = None


class Operator(ABC):
    """Base of every operator. Subclass :class:`Encoder` or :class:`Processor`.

    Class attributes describe the operator to the engine (they are what ``Identity`` answers).
    ``load()`` does the slow work (reading weights, building sessions); the server reports
    ``Healthy`` only after it returned.
    """

    name: str
    type: OperatorType
    input: str = "image"  # what Execute takes: "image", or "text" for a TextEncoder
    output: str
    dimension: int = 0
    metric_type: str = "IP"
    # The label vocabulary an encoder's encode() answers in (e.g. "imagenet-1k"); "" for none.
    labels: str = ""
    # Largest number of images handed to one run() call.
    max_batch_size: ClassVar[int] = 16
    # Smallest side the model needs. JPEG decoding may shrink larger images down to (not
    # below) this size for speed; None keeps full resolution (e.g. for detectors).
    min_image_side: ClassVar[int | None] = None

    def serving_batch_size(self) -> int:
        """How many images the server gathers into one run() call by default: at most
        ``max_batch_size``; an operator may pick fewer where smaller batches run faster."""
        return self.max_batch_size

    def load(self) -> None:  # noqa: B027 - optional hook
        """Load weights and sessions; called once, before the first run()."""

    def prepare(self, data: bytes, *, max_pixels: int) -> Any:
        """Turn one item's file bytes into what run() takes: by default
        :meth:`prepare_image` of :meth:`decode`.

        Raises :class:`~phantoscope.imaging.codec.BadImageError` for unusable bytes.
        Called concurrently from request threads, so decoding overlaps inference. An operator
        overriding this (rather than :meth:`decode` or :meth:`prepare_image`) gives no
        thumbnails (:meth:`gives_thumbnails`).
        """
        return self.prepare_image(self.decode(data, max_pixels=max_pixels))

    def decode(self, data: bytes, *, max_pixels: int) -> Image.Image:
        """One item's file bytes as an upright RGB image, JPEGs decoded at a reduced scale
        down to ``min_image_side``."""
        return decode_image(data, min_side=self.min_image_side, max_pixels=max_pixels)

    def prepare_image(self, image: Image.Image) -> Any:
        """What run() takes of a decoded image: by default the image itself."""
        return image

    def gives_thumbnails(self) -> bool:
        """Whether :meth:`prepare_with_thumbnail` prepares what run() gets: an image encoder
        whose :meth:`prepare` is this class's (decode, then prepare_image)."""
        return (self.type == "encoder" and self.input == "image"
                and type(self).prepare is Operator.prepare)

    def prepare_with_thumbnail(self, data: bytes, *, max_pixels: int) -> tuple[Any, np.ndarray]:
        """:meth:`prepare` and, from the same decoded image, its 64 x 64 grey thumbnail
        (:func:`phantoscope.imaging.phash.thumbnail`, what duplicate detection compares):
        the image is decoded once for both."""
        image = self.decode(data, max_pixels=max_pixels)
        return self.prepare_image(image), thumbnail(image)

    @abstractmethod
    def run(self, images: list[Image.Image]) -> list:
        """Process a batch of RGB images; one result per image, in order."""


class Encoder(Operator):
    """Turns each image into one vector of ``dimension`` floats."""

    type: OperatorType = "encoder"
    output: str = "vector"

    @abstractmethod
    def run(self, images: list[Image.Image]) -> np.ndarray | list[list[float]]:
        """Return an array of shape (len(images), dimension)."""

    def encode(self, images: list[Image.Image]) -> Encoding:
        """What the server calls: the vectors of ``run()``, without labels.

        An encoder with a label vocabulary (``labels``) overrides this to return, from one
        model call, the vectors and each image's labels (``run()`` then returns the vectors
        of ``encode()``).
        """
        return Encoding(self.run(images))


class Processor(Operator):
    """Turns each image into zero or more crops (faces, objects...)."""

    type: OperatorType = "processor"
    output: str = "image"

    @abstractmethod
    def run(self, images: list[Image.Image]) -> list[list[Crop]]:
        """Return, for each image, the crops found in it."""


class TextEncoder(Operator):
    """Turns each text into one vector of ``dimension`` floats, in the embedding space of the
    image encoder it is paired with (same ``dimension`` and ``metric_type``).

    Execute takes its texts in ``ExecuteRequest.texts`` (no images); the server checks each
    is a non-empty string of at most ``max_text_length`` characters before ``run()`` sees it.
    """

    type: OperatorType = "encoder"
    input: str = "text"
    output: str = "vector"
    max_text_length: ClassVar[int] = 1000

    def prepare(self, data: bytes, *, max_pixels: int) -> Any:
        raise TypeError(f"{self.name} encodes texts, not images")

    @abstractmethod
    def run(self, texts: list[str]) -> np.ndarray | list[list[float]]:  # type: ignore[override]
        """Return an array of shape (len(texts), dimension)."""


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    """Scale each row to unit length (rows of zeros stay zero)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)
