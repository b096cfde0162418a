"""`operator test` on a text encoder: its sentences' vectors must be finite, of the claimed
dimension, tell different sentences apart and repeat for the same sentence; an empty text and
an image must be refused with INVALID_ARGUMENT. Each operator is a real gRPC server; the last
tests run the `phantoscope operator serve|test` commands."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager

import grpc
import numpy as np
import pytest

from helpers import REPO, OperatorProcess, run_cli
from inprocess import HashingTextEncoder, serve_in_process
from phantoscope.operators.checkup import SENTENCES, check_operator
from phantoscope.operators.proto import HEALTHY
from phantoscope.operators.proto import omnisearch_pb2 as pb
from phantoscope.operators.proto import omnisearch_pb2_grpc as pb_grpc


def check(server_port: int):
    return check_operator(f"127.0.0.1:{server_port}", wait_s=5, timeout_s=10)


def test_a_good_text_encoder_passes():
    with serve_in_process(HashingTextEncoder()) as server:
        report = check(server.port)
    assert report.ok, report.problems
    assert report.identity.input == "text"
    assert report.result.vectors.shape == (len(SENTENCES), HashingTextEncoder.dimension)
    assert set(report.refusals) == {"an empty text", "an image"}
    assert all(answer.startswith("INVALID_ARGUMENT: ") for answer in report.refusals.values())


class ConstantTextEncoder(HashingTextEncoder):
    name = "constant-text"

    def run(self, texts: list[str]) -> np.ndarray:
        return np.ones((len(texts), self.dimension), dtype=np.float32)


class RandomTextEncoder(HashingTextEncoder):
    name = "random-text"

    def __init__(self) -> None:
        super().__init__()
        self.rng = np.random.default_rng(0)

    def run(self, texts: list[str]) -> np.ndarray:
        return self.rng.standard_normal((len(texts), self.dimension)).astype(np.float32)


class NanTextEncoder(HashingTextEncoder):
    name = "nan-text"

    def run(self, texts: list[str]) -> np.ndarray:
        vectors = super().run(texts)
        vectors[1, 3] = np.nan
        return vectors


@pytest.mark.parametrize(
    ("operator", "says"),
    [
        (ConstantTextEncoder(), "different sentences gave the same vector"),
        (RandomTextEncoder(), "the same sentence ('a photo of a cat asleep on a sofa') gave two "
                              "different vectors"),
        (NanTextEncoder(), "NaN or infinite"),
    ],
    ids=["constant", "random", "nan"],
)
def test_a_text_encoder_that_cannot_search_fails(operator, says):
    with serve_in_process(operator) as server:
        report = check(server.port)
    assert not report.ok
    assert any(says in problem for problem in report.problems), report.problems


class Lenient(pb_grpc.OperatorServicer):
    """A hand-written text encoder that answers everything: images, empty texts, nothing."""

    def __init__(self, dimension: int, claimed: int) -> None:
        self.dimension, self.claimed = dimension, claimed

    def Identity(self, request, context):
        return pb.IdentityReply(name="lenient", type="encoder", input="text", output="vector",
                                dimension=str(self.claimed), metricType="IP")

    def Healthy(self, request, context):
        return pb.HealthyReply(healthy=HEALTHY)

    def Execute(self, request, context):
        items = [*request.texts, *request.datas, *request.urls]
        vectors = [pb.Vector(element=[float(len(item) + i) for i in range(self.dimension)])
                   for item in items]
        return pb.ExecuteReply(nums=len(vectors), vectors=vectors)


@contextmanager
def lenient(dimension: int = 4, claimed: int = 4) -> Iterator[int]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    pb_grpc.add_OperatorServicer_to_server(Lenient(dimension, claimed), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield port
    finally:
        server.stop(0).wait()


def test_a_text_encoder_must_refuse_an_empty_text_and_an_image():
    with lenient() as port:
        report = check(port)
    assert report.refusals == {"an empty text": "accepted", "an image": "accepted"}
    assert report.problems == [  # its vectors are fine: distinct, repeatable, 4-d
        "an empty text was accepted; a text encoder must refuse it with INVALID_ARGUMENT",
        "an image was accepted; a text encoder must refuse it with INVALID_ARGUMENT",
    ]


def test_a_text_encoder_must_give_the_dimension_it_claims():
    with lenient(dimension=4, claimed=6) as port:
        report = check(port)
    assert "vector dimension 4 differs from the 6 Identity claims" in report.problems


# -- the commands ----------------------------------------------------------------------------


def test_serve_and_test_a_text_encoder_class_from_the_command_line():
    """`operator serve module:Class` serves a user's TextEncoder; `operator test` passes it."""
    with OperatorProcess("inprocess:HashingTextEncoder",
                         env={"PYTHONPATH": str(REPO / "tests")}) as served:
        result = run_cli("operator", "test", "-e", served.endpoint)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "name=hashing-text type=encoder input=text output=vector dimension=64" in out
    assert f"vector size: {len(SENTENCES)}; data size: 0" in out and "vector dim: 64" in out
    assert "must refuse an empty text: INVALID_ARGUMENT: texts[0]: empty text" in out
    assert "must refuse an image: INVALID_ARGUMENT: hashing-text encodes texts" in out
    assert out.rstrip().endswith("OK")


def test_operator_test_fails_a_text_encoder_that_takes_images():
    with lenient() as port:
        result = run_cli("operator", "test", "-e", f"127.0.0.1:{port}", "--wait", "5")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "must refuse an image: accepted" in result.stdout
    assert "FAIL an image was accepted; a text encoder must refuse it" in result.stderr
