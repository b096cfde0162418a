"""A client for any operator speaking the Phantoscope protocol (ours or the original's)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import grpc
import numpy as np

from phantoscope.operators.base import Box
from phantoscope.operators.labels import Label
from phantoscope.operators.proto import omnisearch_pb2 as pb
from phantoscope.operators.proto import omnisearch_pb2_grpc as pb_grpc

DEFAULT_MAX_MESSAGE_BYTES = 100 * 1024 * 1024
# gRPC waits up to 120 s between reconnection attempts by default: an operator restarted
# after a crash would go unused that long. Retry the connection every 0.1 to 1 s instead.
RECONNECT_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
]


class OperatorCallError(Exception):
    """A call to an operator failed; ``code`` is the gRPC status name (e.g. ``UNAVAILABLE``)."""

    def __init__(self, endpoint: str, method: str, code: str, details: str) -> None:
        self.endpoint, self.method, self.code, self.details = endpoint, method, code, details
        super().__init__(f"{method} at {endpoint} failed with {code}: {details}")


@dataclass(frozen=True)
class OperatorIdentity:
    """What an operator says about itself."""

    name: str
    endpoint: str
    type: str
    input: str
    output: str
    dimension: int
    metric_type: str
    labels: str  # the label vocabulary Execute answers in ("imagenet-1k"); "" for none
    # Execute reads image files' bytes (``execute(images=...)``); False for an operator of
    # the original protocol, which takes base64 ``datas`` only.
    image_bytes: bool = False
    # Execute answers each image's grey thumbnail when asked (``execute(thumbnails=True)``);
    # False for an operator of the original protocol.
    thumbnails: bool = False


@dataclass(frozen=True)
class CropResult:
    """One crop a processor returned: base64 JPEG, its box if the operator gave one, and the
    index of the request item it came from (0 for operators that do not say)."""

    data: str
    box: Box | None
    source: int


@dataclass(frozen=True)
class ExecuteResult:
    """An Execute answer. ``labels`` is always aligned with ``vectors``: one list per vector,
    its (class id, probability) pairs best first, empty when the encoder gives no labels
    (and ``[]`` for processors, which return no vectors). ``thumbnails``: what the operator
    answered when asked for them, one 64 x 64 grey thumbnail per image; empty when it gave
    none."""

    vectors: np.ndarray  # (n, dimension) float32; (0, 0) for processors
    crops: list[CropResult]
    labels: list[list[Label]]
    thumbnails: list[bytes] = field(default_factory=list)


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_IMAGES_KEY = _varint(pb.ExecuteRequest.DESCRIPTOR.fields_by_name["images"].number << 3 | 2)


def encoded_execute_request(request: pb.ExecuteRequest, images: Sequence[bytes]) -> bytes:
    """``request`` with ``images`` appended to its ``images``, in the wire format: the files'
    bytes are joined once, where building and serializing the message copies each twice (a
    request of 32 photos of 0.6 MB: 3 ms against 31 on 2 cores)."""
    parts = [request.SerializeToString()]
    for image in images:
        parts += (_IMAGES_KEY, _varint(len(image)), image)
    return b"".join(parts)


class OperatorClient:
    """One long-lived channel to one operator endpoint; share it, it is thread-safe."""

    def __init__(
        self,
        endpoint: str,
        *,
        timeout_s: float = 30.0,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ) -> None:
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self._channel = grpc.insecure_channel(
            endpoint,
            options=[
                ("grpc.max_send_message_length", max_message_bytes),
                ("grpc.max_receive_message_length", max_message_bytes),
                *RECONNECT_OPTIONS,
            ],
        )
        self._stub = pb_grpc.OperatorStub(self._channel)
        # Execute takes its request written already (encoded_execute_request)
        self._stub.Execute = self._channel.unary_unary(
            "/omnisearch.Operator/Execute", request_serializer=bytes,
            response_deserializer=pb.ExecuteReply.FromString, _registered_method=True)

    def _call(self, method: str, request: object, timeout_s: float | None = None):
        try:
            # Not wait_for_ready: an unreachable operator fails the call at once.
            return getattr(self._stub, method)(
                request, timeout=timeout_s or self.timeout_s, wait_for_ready=False
            )
        except grpc.RpcError as exc:
            raise OperatorCallError(
                self.endpoint, method, exc.code().name, exc.details() or ""
            ) from None

    def identity(self, timeout_s: float | None = None) -> OperatorIdentity:
        reply = self._call("Identity", pb.IdentityRequest(), timeout_s)
        try:
            dimension = int(reply.dimension or 0)
        except ValueError:
            raise OperatorCallError(
                self.endpoint, "Identity", "INVALID_REPLY",
                f"dimension {reply.dimension!r} is not an integer",
            ) from None
        return OperatorIdentity(
            name=reply.name, endpoint=reply.endpoint, type=reply.type, input=reply.input,
            output=reply.output, dimension=dimension, metric_type=reply.metricType,
            labels=reply.labels, image_bytes=reply.image_bytes, thumbnails=reply.thumbnails,
        )

    def health(self, timeout_s: float | None = None) -> str:
        """The operator's own word: ``healthy`` when it can serve."""
        return self._call("Healthy", pb.HealthyRequest(), timeout_s).healthy

    def execute(
        self,
        *,
        urls: Sequence[str] = (),
        datas: Sequence[str] = (),
        images: Sequence[bytes] = (),
        thumbnails: bool = False,
        timeout_s: float | None = None,
    ) -> ExecuteResult:
        """Run images (URLs, then base64 files, then files' bytes) through an image encoder or
        processor. Send ``images`` only to an operator whose identity says ``image_bytes``;
        ``thumbnails`` asks an encoder whose identity says ``thumbnails`` for each image's."""
        return self._execute(
            pb.ExecuteRequest(urls=list(urls), datas=list(datas), thumbnails=thumbnails),
            timeout_s, images)

    def execute_texts(
        self, texts: Sequence[str], timeout_s: float | None = None
    ) -> ExecuteResult:
        """Run texts through a text encoder (Identity ``input`` "text"): one vector each."""
        return self._execute(pb.ExecuteRequest(texts=list(texts)), timeout_s)

    def _execute(self, request: pb.ExecuteRequest, timeout_s: float | None,
                 images: Sequence[bytes] = ()) -> ExecuteResult:
        """``request`` with ``images`` added, sent as :func:`encoded_execute_request` writes
        it."""
        reply = self._call("Execute", encoded_execute_request(request, images), timeout_s)
        vectors = np.array([list(v.element) for v in reply.vectors], dtype=np.float32)
        if not reply.vectors:
            vectors = np.zeros((0, 0), dtype=np.float32)
        crops = [
            CropResult(
                data=meta.data.decode("ascii", errors="replace"),
                box=_box(meta.box) if meta.HasField("box") else None,
                source=meta.source,
            )
            for meta in reply.metadata
        ]
        return ExecuteResult(vectors=vectors, crops=crops, labels=self._labels(reply),
                             thumbnails=list(reply.thumbnails))

    def _labels(self, reply: pb.ExecuteReply) -> list[list[Label]]:
        """One list of labels per vector (each empty when the reply has none)."""
        if not reply.labels:
            return [[] for _ in reply.vectors]
        if len(reply.labels) != len(reply.vectors):
            raise OperatorCallError(
                self.endpoint, "Execute", "INVALID_REPLY",
                f"{len(reply.labels)} lists of labels for {len(reply.vectors)} vectors",
            )
        return [[(label.id, label.score) for label in image.labels] for image in reply.labels]

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> OperatorClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _box(box: pb.Box) -> Box:
    return Box(box.left, box.top, box.right, box.bottom, box.score)
