"""Which form the engine sends images in (issue 20): bytes to an operator whose identity says
`image_bytes`, base64 `datas` to one of the original protocol, and base64 again to an endpoint
that another (original) operator took over without the engine seeing it down; thumbnails asked
only of a replica that announces them. Real gRPC servers on 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from concurrent import futures

import grpc
import numpy as np
import pytest

from inprocess import MeanColourEncoder
from phantoscope.config import OperatorSettings
from phantoscope.engine.model import Operator
from phantoscope.engine.picture import Picture
from phantoscope.engine.pipeline import MAX_PART_BYTES, PipelineRunner
from phantoscope.engine.replicas import OperatorPool
from phantoscope.imaging.codec import decode_image
from phantoscope.imaging.phash import thumbnail
from phantoscope.operators.proto import omnisearch_pb2 as pb
from phantoscope.operators.proto import omnisearch_pb2_grpc as pb_grpc
from phantoscope.operators.rpc_client import OperatorCallError
from phantoscope.operators.server import OperatorServicer
from photos import jpeg, photo


def digest_vector(data: bytes) -> list[float]:
    """A vector that only these file bytes give: their length and two bytes of their hash."""
    head = hashlib.sha256(data).digest()
    return [float(len(data)), float(head[0]), float(head[1])]


class ShapeShifter(pb_grpc.OperatorServicer):
    """An operator speaking our protocol (``original`` False) or, once ``original`` is set,
    only the original's: its Identity lacks `image_bytes` and its Execute reads `datas` alone
    (field 4 is unknown to it), as when an original operator takes over the endpoint.
    ``forms`` records which fields each Execute carried."""

    def __init__(self) -> None:
        self.original = False
        self.forms: list[str] = []
        self.sizes: list[int] = []  # the file bytes each Execute carried

    def Identity(self, request, context):
        return pb.IdentityReply(name="shifter", type="encoder", input="image",
                                output="vector", dimension="3", metricType="L2",
                                image_bytes=not self.original)

    def Healthy(self, request, context):
        return pb.HealthyReply(healthy="healthy")

    def Execute(self, request, context):
        self.forms.append("images" if request.images else "datas")
        files = [base64.b64decode(d) for d in request.datas]
        if not self.original:
            files += list(request.images)
        self.sizes.append(sum(map(len, files)))
        vectors = [pb.Vector(element=digest_vector(f)) for f in files]
        return pb.ExecuteReply(nums=len(vectors), vectors=vectors)


class RecordingServicer(OperatorServicer):
    """Our SDK's servicer, noting which fields each Execute carried."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.forms: list[str] = []

    def Execute(self, request, context):
        self.forms.append("images" if request.images else "datas")
        return super().Execute(request, context)


def serve(servicer) -> tuple[grpc.Server, str]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4),
                         options=[("grpc.max_receive_message_length", 64 << 20)])
    pb_grpc.add_OperatorServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, f"127.0.0.1:{port}"


@pytest.fixture(scope="module")
def files() -> list[bytes]:
    return [jpeg(photo(name)) for name in ("chelsea", "coffee", "rocket")]


@pytest.fixture
def ours() -> Iterator[tuple[RecordingServicer, str]]:
    servicer = RecordingServicer(MeanColourEncoder(), OperatorSettings(endpoint="127.0.0.1:0"))
    servicer.load()
    server, endpoint = serve(servicer)
    yield servicer, endpoint
    server.stop(0)
    servicer.close()


@pytest.fixture
def shifter() -> Iterator[tuple[ShapeShifter, str]]:
    servicer = ShapeShifter()
    server, endpoint = serve(servicer)
    yield servicer, endpoint
    server.stop(0)


def pictures(files: list[bytes], given_b64: bool = False) -> list[Picture]:
    if given_b64:
        return [Picture(b64=base64.b64encode(f).decode()) for f in files]
    return [Picture(raw=f) for f in files]


def test_our_operator_gets_bytes_and_answers_as_with_base64(ours, files):
    servicer, endpoint = ours
    by_bytes, by_base64 = OperatorPool(timeout_s=10), OperatorPool(timeout_s=10, image_bytes=False)
    try:
        sent_bytes = by_bytes.replicas([endpoint]).execute("ours", pictures(files))
        # A caller's base64 text is decoded once for an operator that takes bytes.
        from_text = by_bytes.replicas([endpoint]).execute("ours", pictures(files, True))
        sent_base64 = by_base64.replicas([endpoint]).execute("ours", pictures(files))
    finally:
        by_bytes.close()
        by_base64.close()
    assert servicer.forms == ["images", "images", "datas"]
    np.testing.assert_array_equal(sent_bytes.vectors, sent_base64.vectors)
    np.testing.assert_array_equal(from_text.vectors, sent_base64.vectors)
    assert sent_bytes.vectors.shape == (3, 3)


def test_original_operator_gets_base64(shifter, files):
    servicer, endpoint = shifter
    servicer.original = True
    pool = OperatorPool(timeout_s=10)
    try:
        result = pool.replicas([endpoint]).execute("original", pictures(files))
    finally:
        pool.close()
    assert servicer.forms == ["datas"]
    assert result.vectors.tolist() == [digest_vector(f) for f in files]


def test_an_original_operator_taking_over_the_endpoint_gets_base64(shifter, files):
    servicer, endpoint = shifter
    pool = OperatorPool(timeout_s=10)
    try:
        replicas = pool.replicas([endpoint])
        first = replicas.execute("shifter", pictures(files[:1]))
        servicer.original = True  # the engine sees no failure in between
        second = replicas.execute("shifter", pictures(files[1:]))
        third = replicas.execute("shifter", pictures(files[:1]))
    finally:
        pool.close()
    # The one call answered with nothing for its bytes is sent again in base64, and the
    # endpoint gets base64 from then on.
    assert servicer.forms == ["images", "images", "datas", "datas"]
    assert first.vectors.tolist() == third.vectors.tolist() == [digest_vector(files[0])]
    assert second.vectors.tolist() == [digest_vector(f) for f in files[1:]]


def test_a_crop_whose_base64_is_broken_reaches_the_operator_to_be_refused(ours, files):
    servicer, endpoint = ours
    pool = OperatorPool(timeout_s=10)
    try:
        with pytest.raises(OperatorCallError) as refused:
            pool.replicas([endpoint]).execute(
                "ours", [Picture(raw=files[0]), Picture(b64="not base64!")])
    finally:
        pool.close()
    assert refused.value.code == "INVALID_ARGUMENT"
    assert refused.value.details.startswith("datas[1]: "), refused.value.details
    assert servicer.forms == ["datas"]


@pytest.mark.parametrize("asked", [True, False], ids=["default", "thumbnails-off"])
def test_thumbnails_come_from_the_replica_that_gives_them(ours, shifter, asked):
    """16 images in two parts of 8, one for each replica: each image's vector, and the
    encoder's thumbnail exactly where our replica encoded it (none when the engine is told
    not to ask, PHANTOSCOPE_OPERATOR_THUMBNAILS=false)."""
    servicer, our_endpoint = ours
    names = ("chelsea", "coffee", "rocket", "astronaut", "camera", "coins", "moon", "horse")
    files = [jpeg(photo(name).resize((300 + 10 * index, 200)))
             for index, name in enumerate(names * 2)]
    encoder = Operator(name="enc", backend="", type="encoder", input="image",
                       output="vector", endpoints=[our_endpoint, shifter[1]],
                       metric_type="L2", dimension=3)
    pool = OperatorPool(timeout_s=10, thumbnails=asked)
    runner = PipelineRunner(pool)
    try:
        vectors, _ = runner.run([], encoder, [Picture(raw=f) for f in files], thumbnails=True)
    finally:
        runner.close()
        pool.close()
    assert [vector.source for vector in vectors] == list(range(len(files)))
    by_ours = 0
    for vector, data in zip(vectors, files, strict=True):
        if vector.vector.tolist() == digest_vector(data):  # the original-protocol replica's
            assert vector.thumbnail is None
            continue
        by_ours += 1
        image = decode_image(data)
        np.testing.assert_allclose(vector.vector, np.asarray(image, np.float32).mean((0, 1)),
                                   rtol=1e-5)
        assert vector.thumbnail == (thumbnail(image).tobytes() if asked else None)
    assert by_ours == 8
    assert servicer.forms == ["images"]


def test_an_encoder_call_carries_at_most_max_part_bytes(shifter):
    """Phone-size files to one replica: Execute calls of at most MAX_PART_BYTES of them, a
    file larger than that alone, every vector the one of its file, in order."""
    servicer, endpoint = shifter
    small, large = MAX_PART_BYTES // 5, MAX_PART_BYTES + (1 << 20)
    files = [bytes([index]) * (large if index == 5 else small) for index in range(11)]
    encoder = Operator(name="shifter", backend="", type="encoder", input="image",
                       output="vector", endpoints=[endpoint], metric_type="L2", dimension=3)
    pool = OperatorPool(timeout_s=30)
    runner = PipelineRunner(pool)
    try:
        vectors, _ = runner.run([], encoder, [Picture(raw=f) for f in files])
    finally:
        runner.close()
        pool.close()
    assert servicer.sizes == [5 * small, large, 5 * small]
    assert [vector.vector.tolist() for vector in vectors] == [digest_vector(f) for f in files]


@pytest.mark.parametrize("length", [0, 1, 2, 3, 1000, 1001])
def test_a_picture_knows_its_size_from_either_form(length):
    data = bytes(range(256)) * 4 + bytes(length)
    assert Picture(raw=data).nbytes == len(data)
    assert Picture(b64=base64.b64encode(data).decode()).nbytes == len(data)
