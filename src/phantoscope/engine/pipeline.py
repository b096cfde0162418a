"""Running a pipeline: processors in order, then the encoder, over gRPC.

Every vector keeps its lineage: which input image it came from and, through processors,
which box of that image (boxes of nested processors are composed into input coordinates),
and the labels the encoder gave with it (none when it gives none). Asked for thumbnails, a
pipeline without processors gives each vector the grey thumbnail its encoder made of the
image, where the encoder's replica gives them (duplicate detection then decodes nothing).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from phantoscope.engine.errors import (
    BadRequestError,
    OperatorFailedError,
    OperatorUnavailableError,
)
from phantoscope.engine.model import Box, Operator
from phantoscope.engine.picture import Picture
from phantoscope.engine.replicas import OperatorPool
from phantoscope.imaging.phash import THUMBNAIL
from phantoscope.operators.rpc_client import CropResult, OperatorCallError

# Images per Execute call to an encoder; processors get one image per call (original
# processors cannot say which image a crop came from) sent concurrently, which our
# operator servers batch together again.
ENCODER_CHUNK = 32
# An encoder with several replicas gets the images of one call split between them (parts of
# at least this many, sent at once): each replica decodes its part on its own cores, so one
# upload of 32 photos keeps 2 to 4 operator processes busy rather than one.
MIN_REPLICA_PART = 8
# The image bytes of one Execute call at most (an image larger than that goes alone). The
# request is built, and copied by gRPC, in a worker thread, where glibc serves a large buffer
# from a 64 MB thread heap: two 16 MB copies share one, where a 32 MB request (12 phone
# photos) took a fresh heap for its copy and gave it back after every call (one call at a
# time: 650 page faults a photo against none; an import, 4 requests at once: 1,272 against
# 1,704).
MAX_PART_BYTES = 16 << 20
PROCESSOR_CONCURRENCY = 8
ENCODER_CONCURRENCY = 64  # parts in flight over all uploads at once
UNAVAILABLE_CODES = {"UNAVAILABLE", "DEADLINE_EXCEEDED", "CANCELLED"}
MAX_LABEL_ID = 64  # characters of a label id the metadata store keeps
# (class id, probability) pairs of one image, best first
ImageLabels = tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class Item:
    """An image on its way through a pipeline."""

    image: Picture
    source: int  # index of the input image it descends from
    box: Box | None  # where it lies in that input image; None = the whole image

    @property
    def data(self) -> str:
        """The image in base64."""
        return self.image.b64


@dataclass(frozen=True)
class PipelineVector:
    vector: np.ndarray
    source: int
    box: Box | None
    labels: ImageLabels = ()
    # the encoder's 64 x 64 grey thumbnail of the image, when asked and its replica gives them
    thumbnail: bytes | None = None


@dataclass
class Step:
    """What one operator produced, for `POST /v1/pipeline/<name>/test`."""

    operator: str
    type: str
    items: list[Item] = field(default_factory=list)
    vectors: np.ndarray | None = None


def operator_error(operator: Operator, exc: OperatorCallError, what: str = "image"
                   ) -> Exception:
    """Translate a failed operator call on an ``what`` ("image" or "text") into what the API
    tells its caller."""
    if exc.code == "INVALID_ARGUMENT":
        return BadRequestError(
            f"OPERATOR_REJECTED_{what.upper()}",
            f"operator {operator.name!r} cannot use the {what}: {exc.details}",
        )
    if exc.code in UNAVAILABLE_CODES:
        return OperatorUnavailableError(
            "OPERATOR_UNAVAILABLE",
            f"operator {operator.name!r} at {','.join(operator.endpoints)} did not answer "
            f"({exc.code}: {exc.details}): check that it is running",
        )
    return OperatorFailedError(
        "OPERATOR_FAILED", f"operator {operator.name!r} failed ({exc.code}): {exc.details}"
    )


def _compose(outer: Box | None, crop: CropResult) -> Box | None:
    """Where ``crop`` of an image lying at ``outer`` lies in the input image."""
    inner = crop.box
    if inner is None:
        return outer
    if outer is None:
        return inner
    return Box(
        outer.left + inner.left,
        outer.top + inner.top,
        outer.left + inner.right,
        outer.top + inner.bottom,
        inner.score,
    )


def checked_labels(labels: Sequence[Sequence[tuple[str, float]]]) -> list[ImageLabels]:
    """The labels an encoder gave, one list per image (the client aligns them with the
    vectors), as the metadata store keeps them: best first, ids of 1 to 64 characters, each
    once, probabilities clamped into [0, 1]; a label of any other shape is left out (an
    operator not built on our SDK is not checked by its server)."""
    checked: list[ImageLabels] = []
    for image in labels:
        kept: dict[str, float] = {}
        for label, score in image:
            if (isinstance(label, str) and 0 < len(label) <= MAX_LABEL_ID
                    and math.isfinite(score) and label not in kept):
                kept[label] = min(1.0, max(0.0, float(score)))
        checked.append(tuple(sorted(kept.items(), key=lambda pair: (-pair[1], pair[0]))))
    return checked


def checked_thumbnails(thumbnails: Sequence[bytes], images: int) -> list[bytes | None]:
    """The thumbnails an encoder answered for ``images`` images, when it answered one of
    THUMBNAIL x THUMBNAIL levels for each; else None for each (made again by the engine)."""
    if len(thumbnails) == images and all(len(one) == THUMBNAIL * THUMBNAIL
                                          for one in thumbnails):
        return list(thumbnails)
    return [None] * images


class PipelineRunner:
    def __init__(self, pool: OperatorPool) -> None:
        self.pool = pool
        self._threads = ThreadPoolExecutor(PROCESSOR_CONCURRENCY, "pipeline-processor")
        self._parts = ThreadPoolExecutor(ENCODER_CONCURRENCY, "pipeline-encoder-part")

    def _call(self, operator: Operator, images: Sequence[Picture], thumbnails: bool = False):
        try:
            return self.pool.replicas(operator.endpoints).execute(
                operator.name, images, thumbnails=thumbnails)
        except OperatorCallError as exc:
            raise operator_error(operator, exc) from None

    def _process(self, operator: Operator, items: list[Item]) -> list[Item]:
        def crops_of(item: Item) -> list[CropResult]:
            return self._call(operator, [item.image]).crops

        results = list(self._threads.map(crops_of, items))
        return [
            Item(Picture(b64=crop.data), item.source, _compose(item.box, crop))
            for item, crops in zip(items, results, strict=True)
            for crop in crops
        ]

    def _encode(self, operator: Operator, items: list[Item], thumbnails: bool
                ) -> tuple[np.ndarray, list[ImageLabels], list[bytes | None]]:
        """The vectors of ``items``, the labels of each (empty when the encoder gives
        none) and, asked for, each one's thumbnail (None where the encoder gave none)."""
        chunks = []
        labels: list[ImageLabels] = []
        thumbs: list[bytes | None] = []
        parts = encoder_parts([item.image for item in items], len(operator.endpoints))
        if len(parts) > 1 and len(operator.endpoints) > 1:
            results = list(self._parts.map(
                lambda part: self._call(operator, part, thumbnails), parts))
        else:
            results = [self._call(operator, part, thumbnails) for part in parts]
        for part, result in zip(parts, results, strict=True):
            vectors = result.vectors
            if len(vectors) != len(part) or (
                len(vectors) and vectors.shape[1] != operator.dimension
            ):
                raise OperatorFailedError(
                    "OPERATOR_FAILED",
                    f"operator {operator.name!r} returned {len(vectors)} vectors of dimension "
                    f"{vectors.shape[1] if len(vectors) else 0} for {len(part)} images; "
                    f"expected dimension {operator.dimension}",
                )
            chunks.append(vectors)
            labels.extend(checked_labels(result.labels))
            thumbs.extend(checked_thumbnails(result.thumbnails, len(part)))
        if not chunks:
            return np.zeros((0, operator.dimension)), [], []
        return np.concatenate(chunks), labels, thumbs

    def encode_text(self, operator: Operator, text: str) -> np.ndarray:
        """The vector a text encoder gives ``text``: shape (``operator.dimension``,)."""
        try:
            result = self.pool.replicas(operator.endpoints).execute_texts(operator.name, [text])
        except OperatorCallError as exc:
            raise operator_error(operator, exc, "text") from None
        vectors = result.vectors
        if vectors.shape != (1, operator.dimension):
            raise OperatorFailedError(
                "OPERATOR_FAILED",
                f"text encoder {operator.name!r} returned {len(vectors)} vectors of dimension "
                f"{vectors.shape[1] if len(vectors) else 0} for 1 text; expected 1 of "
                f"dimension {operator.dimension}",
            )
        return vectors[0]

    def run(
        self, processors: Sequence[Operator], encoder: Operator, images: Sequence[Picture],
        *, thumbnails: bool = False,
    ) -> tuple[list[PipelineVector], list[Step]]:
        """Run ``images`` through the pipeline; vectors with lineage, and each step.
        ``thumbnails``: without processors, ask the encoder for each image's thumbnail."""
        items = [Item(image, index, None) for index, image in enumerate(images)]
        steps = []
        for processor in processors:
            items = self._process(processor, items) if items else []
            steps.append(Step(processor.name, processor.type, items=items))
        vectors, labels, thumbs = self._encode(encoder, items, thumbnails and not processors)
        steps.append(Step(encoder.name, encoder.type, vectors=vectors))
        return [
            PipelineVector(vector, item.source, item.box, image_labels, thumb)
            for item, vector, image_labels, thumb in zip(items, vectors, labels, thumbs,
                                                         strict=True)
        ], steps

    def close(self) -> None:
        self._threads.shutdown(wait=False)
        self._parts.shutdown(wait=False)


def encoder_parts(images: list[Picture], replicas: int) -> list[list[Picture]]:
    """``images`` in Execute calls to an encoder with ``replicas`` replicas, in order: at most
    :func:`_part_size` images a call, and at most MAX_PART_BYTES of them unless one image
    alone is larger."""
    size = _part_size(len(images), replicas)
    parts: list[list[Picture]] = []
    held = 0
    for image in images:
        nbytes = image.nbytes
        if not parts or len(parts[-1]) == size or held + nbytes > MAX_PART_BYTES:
            parts.append([])
            held = 0
        parts[-1].append(image)
        held += nbytes
    return parts


def _part_size(images: int, replicas: int) -> int:
    """Images per Execute call: ENCODER_CHUNK, or with several replicas an even share of
    ``images`` for each (at least MIN_REPLICA_PART, at most ENCODER_CHUNK)."""
    if replicas <= 1:
        return ENCODER_CHUNK
    share = -(-images // replicas)
    return max(1, min(ENCODER_CHUNK, max(MIN_REPLICA_PART, share)))
