"""Serving an :class:`~phantoscope.operators.base.Operator` over the Phantoscope gRPC protocol."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from concurrent import futures
from dataclasses import dataclass
from typing import Any

import grpc
import numpy as np

from phantoscope.config import OperatorSettings, endpoint_port
from phantoscope.imaging.codec import BadImageError, b64_to_bytes, encode_jpeg_b64
from phantoscope.imaging.fetch import FetchError, FetchPolicy, fetch_url
from phantoscope.operators.base import Box, Crop, Encoder, Encoding, Operator, TextEncoder
from phantoscope.operators.batching import Batcher, BatcherClosedError, BatchStats
from phantoscope.operators.labels import Label, checked_labels
from phantoscope.operators.proto import HEALTHY
from phantoscope.operators.proto import omnisearch_pb2 as pb
from phantoscope.operators.proto import omnisearch_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Item:
    """One image of a request, named as errors will name it (`urls[0]`, `datas[2]`,
    `images[1]`): a URL, a base64 text or the file's bytes."""

    label: str
    url: str | None = None
    data: str | None = None
    raw: bytes | None = None


class _BadRequestError(ValueError):
    """The request cannot be served as sent; the message says what to fix."""


@dataclass(frozen=True)
class _Encoded:
    """What an encoder made of one image: its vector, and its labels if the encoder has any."""

    vector: np.ndarray
    labels: list[Label] | None


class OperatorServicer(pb_grpc.OperatorServicer):
    """The three protocol calls over one operator, with its model loaded in the background."""

    def __init__(self, operator: Operator, settings: OperatorSettings) -> None:
        self.operator = operator
        self.settings = settings
        self._loaded = threading.Event()
        self._load_error: str | None = None
        self._fetch_policy = FetchPolicy(
            timeout_s=settings.fetch_timeout_s,
            max_bytes=settings.fetch_max_bytes,
            allow_private=settings.allow_private_urls,
        )
        self.batcher = Batcher(
            self._run_checked,
            max_batch_size=settings.max_batch_size or operator.serving_batch_size(),
            max_wait_s=settings.batch_wait_ms / 1000,
            name=f"batcher-{operator.name}",
        )

    # -- model lifecycle -------------------------------------------------------------

    def load(self) -> None:
        """Load the model; until this returns, Healthy says `loading` and Execute refuses."""
        try:
            self.operator.load()
        except Exception as exc:
            self._load_error = f"{type(exc).__name__}: {exc}"
            log.exception("operator %s failed to load", self.operator.name)
            return
        self._loaded.set()
        log.info("operator %s loaded", self.operator.name)

    @property
    def health(self) -> str:
        if self._loaded.is_set():
            return HEALTHY
        if self._load_error:
            return f"unhealthy: failed to load: {self._load_error}"
        return "loading"

    def wait_loaded(self, timeout: float | None = None) -> bool:
        return self._loaded.wait(timeout)

    @property
    def stats(self) -> BatchStats:
        return self.batcher.stats

    # -- protocol ---------------------------------------------------------------------

    def Identity(self, request: pb.IdentityRequest, context: grpc.ServicerContext):
        op = self.operator
        return pb.IdentityReply(
            name=op.name,
            endpoint=self.settings.endpoint,
            type=op.type,
            input=op.input,
            output=op.output,
            dimension=str(op.dimension),
            metricType=op.metric_type,
            labels=op.labels,
            image_bytes=not isinstance(op, TextEncoder),
            thumbnails=op.gives_thumbnails(),
        )

    def Healthy(self, request: pb.HealthyRequest, context: grpc.ServicerContext):
        return pb.HealthyReply(healthy=self.health)

    def Execute(self, request: pb.ExecuteRequest, context: grpc.ServicerContext):
        if not self._loaded.is_set():
            context.abort(grpc.StatusCode.UNAVAILABLE, f"operator is {self.health}")
        thumbnails: list[bytes] = []
        try:
            if isinstance(self.operator, TextEncoder):
                inputs = self._texts(request)
            elif request.thumbnails and self.operator.gives_thumbnails():
                pairs = [self._prepare_with_thumbnail(item) for item in self._images(request)]
                inputs = [prepared for prepared, _ in pairs]
                thumbnails = [thumb for _, thumb in pairs]
            else:
                inputs = [self._prepare(item) for item in self._images(request)]
        except _BadRequestError as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        try:
            results = self.batcher.submit(inputs)
        except BatcherClosedError as exc:
            context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        except Exception as exc:
            log.exception("operator %s failed on a batch", self.operator.name)
            context.abort(
                grpc.StatusCode.INTERNAL,
                f"operator {self.operator.name} failed: {type(exc).__name__}: {exc}",
            )
        if self.operator.type == "encoder":
            reply = _vectors_reply(results, labelled=bool(self.operator.labels))
            reply.thumbnails.extend(thumbnails)
            return reply
        return _crops_reply(results)

    # -- helpers ----------------------------------------------------------------------

    def _images(self, request: pb.ExecuteRequest) -> list[_Item]:
        """The request's images, in the order they run (urls, then datas, then images)."""
        if request.texts:
            raise _BadRequestError(
                f"{self.operator.name} takes images, not texts: send them in `urls`, "
                "`datas` or `images` (texts go to a text encoder)"
            )
        items = [_Item(f"urls[{i}]", url=u) for i, u in enumerate(request.urls)]
        items += [_Item(f"datas[{i}]", data=d) for i, d in enumerate(request.datas)]
        items += [_Item(f"images[{i}]", raw=r) for i, r in enumerate(request.images)]
        if not items:
            raise _BadRequestError(
                "empty request: give at least one image in `urls`, `datas` or `images`"
            )
        self._check_count(len(items), "images")
        return items

    def _texts(self, request: pb.ExecuteRequest) -> list[str]:
        """The request's texts, each stripped of surrounding white space, once checked."""
        operator = self.operator
        assert isinstance(operator, TextEncoder)
        if request.urls or request.datas or request.images:
            raise _BadRequestError(
                f"{operator.name} encodes texts, not images: send them in `texts`"
            )
        if not request.texts:
            raise _BadRequestError("empty request: give at least one text in `texts`")
        self._check_count(len(request.texts), "texts")
        texts = []
        for index, text in enumerate(request.texts):
            if len(text) > operator.max_text_length:
                raise _BadRequestError(
                    f"texts[{index}]: {len(text):,} characters; the limit is "
                    f"{operator.max_text_length:,}: shorten it"
                )
            stripped = text.strip()
            if not stripped:
                raise _BadRequestError(f"texts[{index}]: empty text: give some words")
            texts.append(stripped)
        return texts

    def _check_count(self, count: int, what: str) -> None:
        limit = self.settings.max_items_per_request
        if count > limit:
            raise _BadRequestError(
                f"{count} {what} in one request; the limit is {limit}: split the request"
            )

    def _prepare(self, item: _Item) -> Any:
        try:
            return self.operator.prepare(self._bytes(item),
                                         max_pixels=self.settings.max_image_pixels)
        except (FetchError, BadImageError) as exc:
            raise _BadRequestError(f"{item.label}: {exc}") from None

    def _prepare_with_thumbnail(self, item: _Item) -> tuple[Any, bytes]:
        """What run() takes of the item and the thumbnail of the same decoded image."""
        try:
            prepared, thumb = self.operator.prepare_with_thumbnail(
                self._bytes(item), max_pixels=self.settings.max_image_pixels)
        except (FetchError, BadImageError) as exc:
            raise _BadRequestError(f"{item.label}: {exc}") from None
        return prepared, thumb.tobytes()

    def _bytes(self, item: _Item) -> bytes:
        if item.raw is not None:
            return item.raw
        if item.url is not None:
            return fetch_url(item.url, self._fetch_policy)
        return b64_to_bytes(item.data or "")

    def _run_checked(self, inputs: list[Any]) -> Sequence[Any]:
        """Run the operator and check its results have the declared shape: for an encoder,
        one :class:`_Encoded` per input."""
        operator = self.operator
        if operator.type != "encoder":
            return operator.run(inputs)
        # Text encoders, and original-template encoders (legacy.LegacyOperator), have run()
        # only.
        encoding = (
            operator.encode(inputs) if isinstance(operator, Encoder)
            else Encoding(operator.run(inputs))
        )
        vectors = np.asarray(encoding.vectors, dtype=np.float32)
        expected = (len(inputs), operator.dimension)
        if vectors.shape != expected:
            raise RuntimeError(
                f"run() returned vectors of shape {vectors.shape}; expected {expected}"
            )
        labels = checked_labels(encoding.labels, len(inputs), operator.labels)
        if labels is None:
            return [_Encoded(vector, None) for vector in vectors]
        return [_Encoded(vector, image) for vector, image in zip(vectors, labels, strict=True)]

    def close(self) -> None:
        self.batcher.close()


def _vectors_reply(encoded: list[_Encoded], labelled: bool) -> pb.ExecuteReply:
    """Vectors, and when the encoder gives labels one ``Labels`` per vector, in order (else
    none, so the reply is the original protocol's)."""
    reply = pb.ExecuteReply(
        nums=len(encoded), vectors=[pb.Vector(element=e.vector.tolist()) for e in encoded]
    )
    if labelled:
        reply.labels.extend(
            pb.Labels(labels=[pb.Label(id=class_id, score=score) for class_id, score in labels])
            for labels in (e.labels or [] for e in encoded)
        )
    return reply


def _crops_reply(crops_per_image: list[list[Crop]]) -> pb.ExecuteReply:
    metadata = [
        pb.MetaData(
            data=encode_jpeg_b64(crop.image).encode("ascii"),
            box=_box_message(crop.box),
            source=source,
        )
        for source, crops in enumerate(crops_per_image)
        for crop in crops
    ]
    return pb.ExecuteReply(nums=len(metadata), metadata=metadata)


def _box_message(box: Box | None) -> pb.Box | None:
    if box is None:
        return None
    return pb.Box(
        left=box.left, top=box.top, right=box.right, bottom=box.bottom, score=box.score
    )


class OperatorServer:
    """A running gRPC server for one operator.

    ``start()`` returns at once with the port bound; the model loads in the background.
    """

    def __init__(
        self,
        operator: Operator,
        settings: OperatorSettings | None = None,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
    ) -> None:
        self.settings = settings or OperatorSettings()
        self.servicer = OperatorServicer(operator, self.settings)
        self.host = host
        self.port = endpoint_port(self.settings.endpoint) if port is None else port
        options = [
            ("grpc.max_send_message_length", self.settings.max_message_bytes),
            ("grpc.max_receive_message_length", self.settings.max_message_bytes),
        ]
        self._server = grpc.server(
            futures.ThreadPoolExecutor(
                max_workers=self.settings.threads, thread_name_prefix="operator-rpc"
            ),
            options=options,
        )
        pb_grpc.add_OperatorServicer_to_server(self.servicer, self._server)

    def start(self) -> int:
        bound = self._server.add_insecure_port(f"{self.host}:{self.port}")
        if bound == 0:
            raise OSError(f"cannot listen on {self.host}:{self.port}")
        self.port = bound
        self._server.start()
        threading.Thread(target=self.servicer.load, name="operator-load", daemon=True).start()
        return bound

    def wait(self) -> None:
        self._server.wait_for_termination()

    def stop(self, grace: float = 2.0) -> None:
        self._server.stop(grace).wait()
        self.servicer.close()

    def __enter__(self) -> OperatorServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
