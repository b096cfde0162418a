"""Labels over gRPC: an encoder that gives labels with its vectors, one that gives none, and
encoders that break the labels contract, each served by a real OperatorServer.

The model here is plain numpy (the mean colour, classified as red, green or blue); the
built-in encoders' real ImageNet labels are tested in tests/zoo/test_encoder_labels.py.
"""

from __future__ import annotations

import base64
import io
import threading
import time

import grpc
import numpy as np
import pytest
from PIL import Image

from phantoscope.operators import Crop, Encoder, Encoding, Processor
from phantoscope.operators.labels import (
    IMAGENET_1K,
    Label,
    checked_labels,
    imagenet_class_ids,
    top_labels,
)
from phantoscope.operators.proto import HEALTHY
from phantoscope.operators.proto import omnisearch_pb2 as pb
from phantoscope.operators.proto import omnisearch_pb2_grpc as pb_grpc
from phantoscope.operators.rpc_client import OperatorCallError

COLOURS = ("red", "green", "blue")
TOP = 2


def colour_probabilities(image: Image.Image) -> np.ndarray:
    """Softmax over the image's mean red, green and blue (scaled so they differ clearly)."""
    mean = np.asarray(image.convert("RGB"), dtype=np.float64).reshape(-1, 3).mean(axis=0)
    exp = np.exp((mean - mean.max()) / 32)
    return exp / exp.sum()


def mean_colour(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.float32).reshape(-1, 3).mean(axis=0)


class ColourEncoder(Encoder):
    """Vector: the mean colour. Labels: its two likeliest colour names, from the same pass."""

    name = "colour-namer"
    dimension = 3
    labels = "colours"

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.batch_sizes: list[int] = []

    def run(self, images: list[Image.Image]) -> np.ndarray:
        return np.asarray(self.encode(images).vectors)

    def encode(self, images: list[Image.Image]) -> Encoding:
        self.batch_sizes.append(len(images))
        time.sleep(self.delay_s)  # a model's work: lets concurrent requests pile up
        vectors = np.stack([mean_colour(image) for image in images])
        probabilities = np.stack([colour_probabilities(image) for image in images])
        return Encoding(vectors, top_labels(probabilities, COLOURS, k=TOP))


class PlainEncoder(Encoder):
    """A user's encoder as written before labels existed: run() only."""

    name = "plain"
    dimension = 3

    def run(self, images: list[Image.Image]) -> np.ndarray:
        return np.stack([mean_colour(image) for image in images])


class HalvesProcessor(Processor):
    name = "halves"

    def run(self, images: list[Image.Image]) -> list[list[Crop]]:
        return [[Crop(image), Crop(image)] for image in images]


def png_b64(rgb: tuple[int, int, int]) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (20, 12), rgb).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def expected_labels(rgb: tuple[int, int, int]) -> list[Label]:
    probabilities = colour_probabilities(Image.new("RGB", (2, 2), rgb))
    return top_labels(probabilities[None], COLOURS, k=TOP)[0]


# Sixteen colours whose likeliest two names differ in order or in score.
SHADES = [(250 - 15 * i, 30 + 14 * i, 90 + (i * 53) % 150) for i in range(16)]


def assert_labels_equal(got: list[Label], expected: list[Label]) -> None:
    assert [class_id for class_id, _ in got] == [class_id for class_id, _ in expected]
    np.testing.assert_allclose([s for _, s in got], [s for _, s in expected], rtol=1e-6)


# -- helpers of the SDK ----------------------------------------------------------------------


def test_imagenet_class_ids_are_the_thousand_wnids_in_classifier_order() -> None:
    ids = imagenet_class_ids()
    assert len(ids) == len(set(ids)) == 1000
    assert all(len(i) == 9 and i[0] == "n" and i[1:].isdigit() for i in ids)
    assert ids[0] == "n01440764"  # tench
    assert ids[281] == "n02123045"  # tabby cat
    assert ids[967] == "n07920052"  # espresso


def test_top_labels_are_the_k_most_probable_best_first() -> None:
    rng = np.random.default_rng(7)
    probabilities = rng.dirichlet(np.ones(50), size=6).astype(np.float32)
    ids = [f"c{i}" for i in range(50)]
    labels = top_labels(probabilities, ids, k=4)
    for row, row_labels in zip(probabilities, labels, strict=True):
        best = np.argsort(-row)[:4]
        assert row_labels == [(ids[i], float(row[i])) for i in best]
    assert top_labels(probabilities[:1, :3], ids[:3], k=10)[0] == [
        (ids[i], float(probabilities[0, i])) for i in np.argsort(-probabilities[0, :3])
    ]
    assert top_labels(np.zeros((0, 50)), ids) == []
    with pytest.raises(ValueError, match="do not fit 49 classes"):
        top_labels(probabilities, ids[:49])
    with pytest.raises(ValueError, match="at least 1"):
        top_labels(probabilities, ids, k=0)


@pytest.mark.parametrize(
    ("labels", "vocabulary", "message"),
    [
        ([[("a", 0.5)]], "", "names no label vocabulary"),
        (None, "colours", "returned none"),
        ([[("a", 0.5)]] * 2, "colours", "labels for 2 images; expected 1"),
        ([[("a", 1.5)]], "colours", r"in \[0, 1\]"),
        ([[("a", -0.1)]], "colours", r"in \[0, 1\]"),
        ([[("a", 0.2), ("b", 0.7)]], "colours", "best first"),
    ],
)
def test_checked_labels_refuses_what_breaks_the_contract(labels, vocabulary, message) -> None:
    with pytest.raises(ValueError, match=message):
        checked_labels(labels, 1, vocabulary)


def test_checked_labels_passes_good_labels_as_plain_lists() -> None:
    assert checked_labels(None, 3, "") is None
    good = (("a", np.float32(0.75)), ("b", 0.25))
    assert checked_labels([good, ()], 2, "colours") == [[("a", 0.75), ("b", 0.25)], []]


# -- served ----------------------------------------------------------------------------------


def test_identity_answers_the_label_vocabulary(serve_operator) -> None:
    _server, client = serve_operator(ColourEncoder())
    assert client.identity().labels == "colours"
    _server, plain = serve_operator(PlainEncoder())
    assert plain.identity().labels == ""


def test_execute_returns_labels_aligned_with_vectors(serve_operator) -> None:
    _server, client = serve_operator(ColourEncoder(), max_batch_size=4)
    shades = SHADES[:11]  # more than a batch: split over three runs
    result = client.execute(datas=[png_b64(rgb) for rgb in shades])
    assert result.vectors.shape == (11, 3)
    assert len(result.labels) == 11
    for rgb, vector, labels in zip(shades, result.vectors, result.labels, strict=True):
        np.testing.assert_allclose(vector, rgb, atol=1e-4)
        assert_labels_equal(labels, expected_labels(rgb))


def test_concurrent_requests_batched_together_keep_their_own_labels(serve_operator) -> None:
    operator = ColourEncoder(delay_s=0.025)
    server, client = serve_operator(operator)
    barrier = threading.Barrier(len(SHADES))
    answers: list[object] = [None] * len(SHADES)

    def call(index: int) -> None:
        barrier.wait()
        answers[index] = client.execute(datas=[png_b64(SHADES[index])])

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(SHADES))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert server.servicer.stats.largest_batch > 1, operator.batch_sizes
    for rgb, answer in zip(SHADES, answers, strict=True):
        assert answer is not None
        np.testing.assert_allclose(answer.vectors[0], rgb, atol=1e-4)
        assert len(answer.labels) == 1
        assert_labels_equal(answer.labels[0], expected_labels(rgb))


def test_encoder_without_labels_answers_none_and_its_reply_is_the_originals(
    serve_operator,
) -> None:
    server, client = serve_operator(PlainEncoder())
    result = client.execute(datas=[png_b64(SHADES[0]), png_b64(SHADES[1])])
    assert result.vectors.shape == (2, 3)
    assert result.labels == [[], []]
    # On the wire: no labels at all, so the reply is what the original protocol sends.
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = pb_grpc.OperatorStub(channel)
        reply = stub.Execute(pb.ExecuteRequest(datas=[png_b64(SHADES[0])]), timeout=10)
        identity = stub.Identity(pb.IdentityRequest(), timeout=10)
    assert [field.name for field, _ in reply.ListFields()] == ["nums", "vectors"]
    assert "labels" not in [field.name for field, _ in identity.ListFields()]


def test_processor_result_has_no_labels(serve_operator) -> None:
    _server, client = serve_operator(HalvesProcessor())
    result = client.execute(datas=[png_b64(SHADES[0])])
    assert len(result.crops) == 2
    assert result.labels == []
    assert client.identity().labels == ""


class SilentLabeller(PlainEncoder):
    """Claims a vocabulary but its encode() (the default) gives no labels."""

    name = "silent-labeller"
    labels = IMAGENET_1K


class ShortLabeller(ColourEncoder):
    """Gives labels for one image fewer than it was given."""

    name = "short-labeller"

    def encode(self, images: list[Image.Image]) -> Encoding:
        encoding = super().encode(images)
        assert encoding.labels is not None
        return Encoding(encoding.vectors, encoding.labels[:-1])


class UndeclaredLabeller(ColourEncoder):
    """Gives labels without naming their vocabulary."""

    name = "undeclared-labeller"
    labels = ""


@pytest.mark.parametrize(
    ("operator", "words"),
    [
        (SilentLabeller(), ["silent-labeller", "'imagenet-1k' labels", "returned none"]),
        (ShortLabeller(), ["short-labeller", "labels for 1 images; expected 2"]),
        (UndeclaredLabeller(), ["undeclared-labeller", "names no label vocabulary"]),
    ],
    ids=["missing", "short", "undeclared"],
)
def test_encoder_breaking_the_labels_contract_is_internal(serve_operator, operator, words):
    _server, client = serve_operator(operator)
    with pytest.raises(OperatorCallError) as caught:
        client.execute(datas=[png_b64(SHADES[0]), png_b64(SHADES[1])])
    assert caught.value.code == "INTERNAL"
    for word in words:
        assert word in caught.value.details, caught.value.details
    assert client.health() == HEALTHY
