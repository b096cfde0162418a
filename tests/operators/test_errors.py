"""What a served operator answers when things go wrong — and that it keeps serving afterwards.

Every server is a real gRPC server on 127.0.0.1 called through :class:`OperatorClient`.
"""

from __future__ import annotations

import base64
import io
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator

import numpy as np
import pytest
from PIL import Image

from phantoscope.config import OperatorSettings
from phantoscope.operators.base import Box, Crop, Encoder, Processor
from phantoscope.operators.proto import HEALTHY
from phantoscope.operators.rpc_client import OperatorCallError, OperatorClient
from phantoscope.operators.server import OperatorServer

DIMENSION = 8
RED, GREEN, BLUE = (220, 20, 20), (20, 200, 40), (30, 40, 230)


def encode(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def solid(rgb: tuple[int, int, int], size: tuple[int, int] = (16, 12)) -> Image.Image:
    return Image.new("RGB", size, rgb)


def mean_colour_vector(image: Image.Image) -> np.ndarray:
    vector = np.zeros(DIMENSION, dtype=np.float32)
    vector[:3] = np.asarray(image, dtype=np.float32).reshape(-1, 3).mean(axis=0)
    return vector / np.linalg.norm(vector)


class MeanColourEncoder(Encoder):
    name = "mean-colour"
    dimension = DIMENSION

    def run(self, images: list[Image.Image]) -> np.ndarray:
        return np.stack([mean_colour_vector(image) for image in images])


def assert_serves(client: OperatorClient, rgb: tuple[int, int, int] = GREEN) -> None:
    """The server still answers a good request correctly."""
    vectors = client.execute(datas=[b64(encode(solid(rgb)))]).vectors
    np.testing.assert_allclose(vectors, [mean_colour_vector(solid(rgb))], atol=1e-6)


def call_error(call: Callable[[], object]) -> OperatorCallError:
    with pytest.raises(OperatorCallError) as failed:
        call()
    return failed.value


def noise_jpeg() -> bytes:
    rng = np.random.default_rng(0)
    return encode(Image.fromarray(rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)), "JPEG")


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height``."""
    data = bytearray(encode(Image.new("L", (1, 1))))
    chunk = b"IHDR" + struct.pack(">II", width, height) + bytes(data[24:29])
    data[12:29] = chunk
    data[29:33] = struct.pack(">I", zlib.crc32(chunk))
    return bytes(data)


MAX_ITEMS = 4
MAX_PIXELS = 10_000


@pytest.fixture(scope="module")
def client() -> Iterator[OperatorClient]:
    """One mean-colour encoder serving every bad-request test in this module."""
    settings = OperatorSettings(
        endpoint="127.0.0.1:0", max_items_per_request=MAX_ITEMS, max_image_pixels=MAX_PIXELS
    )
    with OperatorServer(MeanColourEncoder(), settings, host="127.0.0.1", port=0) as server:
        assert server.servicer.wait_loaded(10)
        with OperatorClient(f"127.0.0.1:{server.port}", timeout_s=20) as client:
            yield client


TRUNCATED = noise_jpeg()[: len(noise_jpeg()) // 2]
GOOD = b64(encode(solid(RED)))

BAD_REQUESTS = {
    "truncated-jpeg": (
        {"datas": [b64(TRUNCATED)]}, ["datas[0]", "corrupt or truncated"]),
    "text-not-image": (
        {"datas": [b64(b"just some text, not a picture\n" * 4)]},
        ["datas[0]", "not a recognised image format"]),
    "bad-base64": (
        {"datas": ["this is *not* base64!"]}, ["datas[0]", "not valid base64"]),
    "empty-data": ({"datas": [""]}, ["datas[0]", "empty"]),
    "empty-request": ({}, ["empty request", "urls", "datas"]),
    "loopback-url": (
        {"urls": ["http://127.0.0.1:9/cat.jpg"]},
        ["urls[0]", "non-public address", "PHANTOSCOPE_ALLOW_PRIVATE_URLS"]),
    "file-url": ({"urls": ["file:///etc/passwd"]}, ["urls[0]", "unsupported URL scheme"]),
    "malformed-url": ({"urls": ["http://[::1/cat.jpg"]}, ["urls[0]"]),
    "over-pixel-limit": (
        {"datas": [b64(encode(solid(RED, (200, 100))))]},
        ["datas[0]", "200x100", f"{MAX_PIXELS:,} pixels"]),
    "header-bomb": (
        {"datas": [b64(png_claiming(20_000, 20_000))]}, ["datas[0]", "pixels", "limit"]),
    "too-many-items": (
        {"datas": [GOOD] * (MAX_ITEMS + 1)}, [f"{MAX_ITEMS + 1} images", f"limit is {MAX_ITEMS}"]),
    "second-item-bad": ({"datas": [GOOD, "%%%"]}, ["datas[1]", "not valid base64"]),
    "url-before-data": (
        {"urls": ["ftp://example.com/a.jpg"], "datas": [GOOD]}, ["urls[0]", "'ftp'"]),
    "data-after-urls": (
        {"urls": [], "datas": [GOOD, GOOD, b64(TRUNCATED)]}, ["datas[2]", "truncated"]),
}


@pytest.mark.parametrize("request_kwargs, expected", BAD_REQUESTS.values(), ids=BAD_REQUESTS)
def test_bad_request_is_invalid_argument(client, request_kwargs, expected: list[str]) -> None:
    error = call_error(lambda: client.execute(**request_kwargs))
    assert error.code == "INVALID_ARGUMENT", error
    for words in expected:
        assert words in error.details, error.details
    assert_serves(client)


def test_error_names_only_the_bad_item(client) -> None:
    error = call_error(lambda: client.execute(datas=[GOOD, b64(b"GIF89a nope"), GOOD]))
    assert error.code == "INVALID_ARGUMENT"
    assert error.details.startswith("datas[1]: "), error.details
    assert "datas[0]" not in error.details and "datas[2]" not in error.details


def test_client_error_carries_code_and_endpoint(client) -> None:
    error = call_error(lambda: client.execute(datas=["!!"]))
    assert error.method == "Execute"
    assert error.endpoint == client.endpoint
    assert "INVALID_ARGUMENT" in str(error) and "datas[0]" in str(error)


def test_limits_are_inclusive(client) -> None:
    exactly = b64(encode(solid(BLUE, (100, 100))))  # exactly MAX_PIXELS
    vectors = client.execute(datas=[exactly] * MAX_ITEMS).vectors
    assert vectors.shape == (MAX_ITEMS, DIMENSION)


# -- failing operators -----------------------------------------------------------------------


class FlakyEncoder(MeanColourEncoder):
    """Fails on any batch holding a blue image."""

    name = "flaky-encoder"

    def run(self, images: list[Image.Image]) -> np.ndarray:
        if any(mean_colour_vector(image)[2] > 0.9 for image in images):
            raise RuntimeError("blue makes the model sad")
        return super().run(images)


def test_operator_exception_is_internal_and_server_keeps_serving(serve_operator) -> None:
    _server, client = serve_operator(FlakyEncoder())
    for _ in range(2):
        error = call_error(lambda: client.execute(datas=[b64(encode(solid(BLUE)))]))
        assert error.code == "INTERNAL"
        assert "flaky-encoder" in error.details
        assert "RuntimeError: blue makes the model sad" in error.details
        assert_serves(client)


class WrongDimensionEncoder(MeanColourEncoder):
    name = "wrong-dimension"

    def run(self, images: list[Image.Image]) -> np.ndarray:
        return super().run(images)[:, :5]


class WrongCountEncoder(MeanColourEncoder):
    name = "wrong-count"

    def run(self, images: list[Image.Image]) -> np.ndarray:
        return super().run(images)[:1]


class RaggedEncoder(MeanColourEncoder):
    name = "ragged"

    def run(self, images: list[Image.Image]) -> list[list[float]]:
        return [[1.0] * (DIMENSION - index) for index in range(len(images))]


@pytest.mark.parametrize(
    ("operator", "datas", "words"),
    [
        (WrongDimensionEncoder(), 1, ["wrong-dimension", "(1, 5)", "(1, 8)"]),
        (WrongCountEncoder(), 3, ["wrong-count", "(1, 8)", "(3, 8)"]),
        (RaggedEncoder(), 2, ["ragged"]),
    ],
    ids=["dimension", "count", "ragged"],
)
def test_operator_returning_wrong_shape_is_internal(
    serve_operator, operator, datas: int, words: list[str]
) -> None:
    _server, client = serve_operator(operator)
    error = call_error(lambda: client.execute(datas=[GOOD] * datas))
    assert error.code == "INTERNAL", error
    for word in words:
        assert word in error.details, error.details
    assert client.health() == HEALTHY


# -- loading ---------------------------------------------------------------------------------


class SlowLoadingEncoder(MeanColourEncoder):
    name = "slow-loader"

    def __init__(self) -> None:
        self.may_finish = threading.Event()
        self.loads = 0

    def load(self) -> None:
        self.loads += 1
        assert self.may_finish.wait(20)


def test_loading_operator_is_unavailable_until_loaded(serve_operator) -> None:
    operator = SlowLoadingEncoder()
    try:
        server, client = serve_operator(operator, wait_loaded=False)
        assert client.health() == "loading"
        assert client.identity().name == "slow-loader"  # Identity answers while loading
        error = call_error(lambda: client.execute(datas=[GOOD]))
        assert error.code == "UNAVAILABLE"
        assert "loading" in error.details
        operator.may_finish.set()
        assert server.servicer.wait_loaded(10)
        assert client.health() == HEALTHY
        assert_serves(client)
        assert operator.loads == 1
    finally:
        operator.may_finish.set()


class BrokenEncoder(MeanColourEncoder):
    name = "broken"

    def load(self) -> None:
        raise FileNotFoundError("weights.onnx is missing")


def test_operator_failing_to_load_is_unhealthy(serve_operator) -> None:
    server, client = serve_operator(BrokenEncoder(), wait_loaded=False)
    deadline = time.monotonic() + 10
    while client.health() == "loading":
        assert time.monotonic() < deadline, "load() never finished"
        time.sleep(0.01)
    health = client.health()
    assert health.startswith("unhealthy"), health
    assert "FileNotFoundError" in health and "weights.onnx is missing" in health
    error = call_error(lambda: client.execute(datas=[GOOD]))
    assert error.code == "UNAVAILABLE"
    assert "weights.onnx is missing" in error.details
    assert not server.servicer.wait_loaded(0)


# -- URLs ------------------------------------------------------------------------------------


def test_urls_fetched_when_private_urls_allowed(serve_operator, http_server) -> None:
    red_url = http_server.serve_bytes("/red.jpg", encode(solid(RED, (64, 48)), "JPEG"))
    _server, client = serve_operator(MeanColourEncoder(), allow_private_urls=True)
    blue = b64(encode(solid(BLUE)))
    vectors = client.execute(urls=[red_url], datas=[blue]).vectors
    assert vectors.shape == (2, DIMENSION)
    # Items run urls first, then datas.
    np.testing.assert_allclose(vectors[0], mean_colour_vector(solid(RED)), atol=0.02)
    np.testing.assert_allclose(vectors[1], mean_colour_vector(solid(BLUE)), atol=1e-6)
    assert http_server.hits == ["/red.jpg"]

    error = call_error(lambda: client.execute(urls=[red_url, http_server.url("/gone.jpg")]))
    assert error.code == "INVALID_ARGUMENT"
    assert error.details.startswith("urls[1]: ") and "HTTP 404" in error.details
    assert_serves(client)


def test_urls_refused_by_default_never_reach_the_server(serve_operator, http_server) -> None:
    url = http_server.serve_bytes("/red.jpg", encode(solid(RED), "JPEG"))
    _server, client = serve_operator(MeanColourEncoder())
    error = call_error(lambda: client.execute(urls=[url]))
    assert error.code == "INVALID_ARGUMENT" and "non-public" in error.details
    assert http_server.hits == []


def test_fetched_body_over_limit(serve_operator, http_server) -> None:
    url = http_server.serve_bytes("/big.png", encode(solid(RED, (300, 300))))
    _server, client = serve_operator(
        MeanColourEncoder(), allow_private_urls=True, fetch_max_bytes=100
    )
    error = call_error(lambda: client.execute(urls=[url]))
    assert error.code == "INVALID_ARGUMENT"
    assert "urls[0]" in error.details and "limit is 100" in error.details


# -- processors ------------------------------------------------------------------------------


class HalvesProcessor(Processor):
    """Two crops per image: its left and right halves."""

    name = "halves"

    def run(self, images: list[Image.Image]) -> list[list[Crop]]:
        out = []
        for image in images:
            width, height = image.size
            boxes = [Box(0, 0, width // 2, height, 0.75), Box(width // 2, 0, width, height, 0.5)]
            out.append(
                [Crop(image.crop((b.left, b.top, b.right, b.bottom)), b) for b in boxes]
            )
        return out


def halves(size: tuple[int, int], left: tuple, right: tuple) -> Image.Image:
    image = Image.new("RGB", size, right)
    image.paste(left, (0, 0, size[0] // 2, size[1]))
    return image


def decoded_mean(data: str) -> np.ndarray:
    image = Image.open(io.BytesIO(base64.b64decode(data)))
    assert image.format == "JPEG"
    return np.asarray(image.convert("RGB"), dtype=float).reshape(-1, 3).mean(axis=0)


def test_processor_reply_has_crops_with_boxes_and_sources(serve_operator) -> None:
    _server, client = serve_operator(HalvesProcessor())
    first, second = halves((40, 20), RED, GREEN), halves((60, 30), BLUE, RED)
    result = client.execute(datas=[b64(encode(first)), b64(encode(second))])
    assert result.vectors.shape == (0, 0)
    assert [crop.source for crop in result.crops] == [0, 0, 1, 1]
    assert [crop.box for crop in result.crops] == [
        Box(0, 0, 20, 20, 0.75), Box(20, 0, 40, 20, 0.5),
        Box(0, 0, 30, 30, 0.75), Box(30, 0, 60, 30, 0.5),
    ]
    for crop, rgb in zip(result.crops, [RED, GREEN, BLUE, RED], strict=True):
        assert np.abs(decoded_mean(crop.data) - rgb).max() < 12
    sizes = [Image.open(io.BytesIO(base64.b64decode(c.data))).size for c in result.crops]
    assert sizes == [(20, 20), (20, 20), (30, 30), (30, 30)]


class SometimesBoxlessProcessor(Processor):
    """No crops for the first image; one crop without a box for each other image."""

    name = "boxless"

    def run(self, images: list[Image.Image]) -> list[list[Crop]]:
        return [[] if i == 0 else [Crop(image)] for i, image in enumerate(images)]


def test_processor_sources_skip_images_without_crops(serve_operator) -> None:
    _server, client = serve_operator(SometimesBoxlessProcessor())
    result = client.execute(datas=[GOOD, GOOD, GOOD])
    assert [crop.source for crop in result.crops] == [1, 2]
    assert all(crop.box is None for crop in result.crops)
    assert result.vectors.shape == (0, 0)


def test_processor_errors_are_invalid_argument_too(serve_operator) -> None:
    _server, client = serve_operator(HalvesProcessor())
    error = call_error(lambda: client.execute(datas=[GOOD, b64(TRUNCATED)]))
    assert error.code == "INVALID_ARGUMENT" and error.details.startswith("datas[1]: ")
    assert len(client.execute(datas=[GOOD]).crops) == 2


def test_identity_describes_the_operator(serve_operator) -> None:
    _server, client = serve_operator(HalvesProcessor())
    identity = client.identity()
    assert (identity.name, identity.type, identity.input, identity.output) == (
        "halves", "processor", "image", "image",
    )
