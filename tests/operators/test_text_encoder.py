"""A served text encoder: texts in `ExecuteRequest.texts`, one vector each, batched like
images; every bad request is INVALID_ARGUMENT naming what to fix, and the server keeps serving.
Image operators refuse texts the same way.

Every server is a real gRPC server on 127.0.0.1.
"""

from __future__ import annotations

import base64
import io
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
import pytest
from PIL import Image

from inprocess import HashingTextEncoder, MeanColourEncoder, bag_of_words
from phantoscope.config import OperatorSettings
from phantoscope.operators import Box, Crop, Processor
from phantoscope.operators.proto import HEALTHY
from phantoscope.operators.proto import omnisearch_pb2 as pb
from phantoscope.operators.proto import omnisearch_pb2_grpc as pb_grpc
from phantoscope.operators.rpc_client import OperatorCallError, OperatorClient
from phantoscope.operators.server import OperatorServer

MAX_ITEMS = 4
LIMIT = HashingTextEncoder.max_text_length
DIMENSION = HashingTextEncoder.dimension


def png_b64(rgb: tuple[int, int, int] = (200, 30, 30)) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 12), rgb).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def expected(*texts: str) -> np.ndarray:
    return np.stack([bag_of_words(text, DIMENSION) for text in texts])


@pytest.fixture(scope="module")
def server() -> Iterator[OperatorServer]:
    """One hashing text encoder serving the tests of this module that do not count batches."""
    settings = OperatorSettings(endpoint="127.0.0.1:0", max_items_per_request=MAX_ITEMS)
    with OperatorServer(HashingTextEncoder(), settings, host="127.0.0.1", port=0) as served:
        assert served.servicer.wait_loaded(10)
        yield served


@pytest.fixture(scope="module")
def client(server: OperatorServer) -> Iterator[OperatorClient]:
    with OperatorClient(f"127.0.0.1:{server.port}", timeout_s=20) as client:
        yield client


@pytest.fixture(scope="module")
def stub(server: OperatorServer) -> Iterator[pb_grpc.OperatorStub]:
    """A bare stub, to send any mix of fields."""
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield pb_grpc.OperatorStub(channel)


def assert_serves(client: OperatorClient) -> None:
    """The server still answers a good request correctly."""
    vectors = client.execute_texts(["a dog on the beach"]).vectors
    np.testing.assert_allclose(vectors, expected("a dog on the beach"), atol=1e-6)


def test_identity_says_it_takes_text(client) -> None:
    identity = client.identity()
    assert (identity.name, identity.type, identity.input, identity.output) == (
        "hashing-text", "encoder", "text", "vector",
    )
    assert identity.dimension == DIMENSION and identity.metric_type == "IP"


def test_texts_get_their_vectors_in_order(client) -> None:
    texts = ["a red car by the sea", "  a snowy mountain\n", "a red car by the sea"]
    result = client.execute_texts(texts)
    np.testing.assert_allclose(
        result.vectors, expected("a red car by the sea", "a snowy mountain",
                                 "a red car by the sea"), atol=1e-6,
    )
    assert result.crops == [] and result.labels == [[], [], []]
    assert result.vectors[0] @ result.vectors[1] < 0.9


def test_texts_reach_run_stripped(server, client) -> None:
    client.execute_texts(["\t stripped text \n"])
    assert server.servicer.operator.seen[-1] == "stripped text"


BAD_REQUESTS = {
    "empty-text": ({"texts": [""]}, ["texts[0]", "empty text"]),
    "blank-text": ({"texts": [" \t\n "]}, ["texts[0]", "empty text"]),
    "second-text-empty": ({"texts": ["a cat", ""]}, ["texts[1]: empty text"]),
    "too-long": (
        {"texts": ["a cat", "x" * (LIMIT + 1)]},
        ["texts[1]", f"{LIMIT + 1:,} characters", f"limit is {LIMIT:,}", "shorten"]),
    "empty-request": ({}, ["empty request", "`texts`"]),
    "too-many-texts": (
        {"texts": ["a cat"] * (MAX_ITEMS + 1)},
        [f"{MAX_ITEMS + 1} texts", f"limit is {MAX_ITEMS}", "split"]),
    "image-data": ({"datas": [png_b64()]}, ["hashing-text encodes texts, not images", "`texts`"]),
    "image-url": ({"urls": ["https://example.com/cat.jpg"]}, ["encodes texts, not images"]),
    "texts-and-image": (
        {"texts": ["a cat"], "datas": [png_b64()]}, ["encodes texts, not images"]),
}


@pytest.mark.parametrize("fields, words", BAD_REQUESTS.values(), ids=BAD_REQUESTS)
def test_bad_request_is_invalid_argument(stub, client, fields, words: list[str]) -> None:
    with pytest.raises(grpc.RpcError) as failed:
        stub.Execute(pb.ExecuteRequest(**fields), timeout=10)
    assert failed.value.code() == grpc.StatusCode.INVALID_ARGUMENT, failed.value
    for word in words:
        assert word in failed.value.details(), failed.value.details()
    assert_serves(client)


def test_error_names_only_the_bad_text(client) -> None:
    with pytest.raises(OperatorCallError) as failed:
        client.execute_texts(["a cat", "", "a dog"])
    assert failed.value.code == "INVALID_ARGUMENT"
    assert failed.value.details.startswith("texts[1]: "), failed.value.details
    assert "texts[0]" not in failed.value.details and "texts[2]" not in failed.value.details


def test_limits_are_inclusive(client) -> None:
    longest = " ".join(["word"] * (LIMIT // 5)).ljust(LIMIT, "s")
    assert len(longest) == LIMIT
    vectors = client.execute_texts([longest] * MAX_ITEMS).vectors
    assert vectors.shape == (MAX_ITEMS, DIMENSION)


# -- image operators refuse texts -----------------------------------------------------------


class HalvesProcessor(Processor):
    name = "halves"

    def run(self, images: list[Image.Image]) -> list[list[Crop]]:
        return [[Crop(image.crop((0, 0, image.width // 2, image.height)),
                      Box(0, 0, image.width // 2, image.height))] for image in images]


@pytest.mark.parametrize("operator", [MeanColourEncoder(), HalvesProcessor()],
                         ids=["encoder", "processor"])
def test_image_operators_refuse_texts_and_keep_serving(serve_operator, operator) -> None:
    server, client = serve_operator(operator)
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = pb_grpc.OperatorStub(channel)
        for fields in ({"texts": ["a cat"]}, {"texts": ["a cat"], "datas": [png_b64()]}):
            with pytest.raises(grpc.RpcError) as failed:
                stub.Execute(pb.ExecuteRequest(**fields), timeout=10)
            assert failed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            details = failed.value.details()
            assert f"{operator.name} takes images, not texts" in details, details
            assert "`urls`, `datas` or `images`" in details
    assert server.servicer.stats.calls == 0  # refused before the model saw anything
    # A request without texts, as every original client sends, is served as before.
    result = client.execute(datas=[png_b64((10, 200, 10))])
    if operator.type == "encoder":
        np.testing.assert_allclose(result.vectors, [[10, 200, 10]], atol=1e-4)
    else:
        assert len(result.crops) == 1 and result.crops[0].box == Box(0, 0, 8, 12)


# -- batching and failing text encoders ------------------------------------------------------


def test_concurrent_text_requests_are_batched(serve_operator) -> None:
    operator = HashingTextEncoder(delay_s=0.025)
    server, client = serve_operator(operator)
    texts = [f"photo number {index} of a garden" for index in range(16)]
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda text: client.execute_texts([text]).vectors, texts))
    for text, vectors in zip(texts, results, strict=True):
        np.testing.assert_allclose(vectors, expected(text), atol=1e-6)
    assert server.servicer.stats.items == sum(operator.batch_sizes) == 16
    assert len(operator.batch_sizes) < 16
    assert server.servicer.stats.largest_batch == max(operator.batch_sizes) > 1


class WrongDimensionTextEncoder(HashingTextEncoder):
    name = "wrong-dimension-text"

    def run(self, texts: list[str]) -> np.ndarray:
        return super().run(texts)[:, :5]


class FlakyTextEncoder(HashingTextEncoder):
    name = "flaky-text"

    def run(self, texts: list[str]) -> np.ndarray:
        if any("boom" in text for text in texts):
            raise RuntimeError("the tokenizer choked")
        return super().run(texts)


def test_vectors_of_the_wrong_shape_are_internal(serve_operator) -> None:
    _server, client = serve_operator(WrongDimensionTextEncoder())
    with pytest.raises(OperatorCallError) as failed:
        client.execute_texts(["a cat", "a dog"])
    assert failed.value.code == "INTERNAL"
    assert "(2, 5)" in failed.value.details and f"(2, {DIMENSION})" in failed.value.details
    assert client.health() == HEALTHY


def test_operator_exception_is_internal_and_server_keeps_serving(serve_operator) -> None:
    _server, client = serve_operator(FlakyTextEncoder())
    with pytest.raises(OperatorCallError) as failed:
        client.execute_texts(["boom goes the model"])
    assert failed.value.code == "INTERNAL"
    assert "flaky-text" in failed.value.details
    assert "RuntimeError: the tokenizer choked" in failed.value.details
    assert_serves(client)


class SlowLoadingTextEncoder(HashingTextEncoder):
    name = "slow-loading-text"

    def __init__(self) -> None:
        super().__init__()
        self.may_finish = threading.Event()

    def load(self) -> None:
        assert self.may_finish.wait(20)


def test_a_loading_text_encoder_is_unavailable(serve_operator) -> None:
    operator = SlowLoadingTextEncoder()
    try:
        server, client = serve_operator(operator, wait_loaded=False)
        with pytest.raises(OperatorCallError) as failed:
            client.execute_texts(["a cat"])
        assert failed.value.code == "UNAVAILABLE" and "loading" in failed.value.details
        operator.may_finish.set()
        assert server.servicer.wait_loaded(10)
        assert_serves(client)
    finally:
        operator.may_finish.set()
