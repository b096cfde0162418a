"""`ReplicaSet.execute_texts`: texts go to a text encoder's replicas as images do — spread over
the up replicas, retried once on another when one is down, refusals not retried, and counted in
the operator metrics. Real gRPC servers on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from prometheus_client import REGISTRY

from inprocess import HashingTextEncoder, bag_of_words
from phantoscope.config import OperatorSettings
from phantoscope.engine.picture import Picture
from phantoscope.engine.replicas import OperatorPool
from phantoscope.operators.rpc_client import OperatorCallError
from phantoscope.operators.server import OperatorServer

OPERATOR = "text-replicas-test"  # the metrics' label: this module's alone


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, {"operator": OPERATOR, **labels}) or 0.0


def counts() -> dict[str, float]:
    calls = "phantoscope_operator_call_seconds_count"
    return {
        "batches": metric("phantoscope_operator_batch_images_count"),
        "items": metric("phantoscope_operator_batch_images_sum"),
        "ok": metric(calls, outcome="ok"),
        "unavailable": metric(calls, outcome="UNAVAILABLE"),
        "invalid": metric(calls, outcome="INVALID_ARGUMENT"),
    }


def grew(before: dict[str, float]) -> dict[str, float]:
    return {key: value - before[key] for key, value in counts().items() if value != before[key]}


@pytest.fixture
def replicas() -> Iterator[list[tuple[OperatorServer, HashingTextEncoder]]]:
    served = []
    for _ in range(2):
        operator = HashingTextEncoder()
        server = OperatorServer(operator, OperatorSettings(endpoint="127.0.0.1:0"),
                                host="127.0.0.1", port=0)
        server.start()
        assert server.servicer.wait_loaded(10)
        served.append((server, operator))
    yield served
    for server, _ in served:
        server.stop(grace=0)


def test_texts_spread_over_replicas_and_survive_one_going_down(replicas):
    (first, first_op), (second, second_op) = replicas
    endpoints = [f"127.0.0.1:{first.port}", f"127.0.0.1:{second.port}"]
    pool = OperatorPool(timeout_s=5)
    try:
        replica_set = pool.replicas(endpoints)
        texts = ["a red car", "a snowy mountain at dawn"]
        want = np.stack([bag_of_words(text, HashingTextEncoder.dimension) for text in texts])
        before = counts()
        for _ in range(6):
            np.testing.assert_allclose(
                replica_set.execute_texts(OPERATOR, texts).vectors, want, atol=1e-6)
        assert len(first_op.batch_sizes) == len(second_op.batch_sizes) == 3
        assert grew(before) == {"batches": 6, "items": 12, "ok": 6}

        first.stop(grace=0)
        before, served = counts(), len(second_op.batch_sizes)
        for _ in range(4):
            np.testing.assert_allclose(
                replica_set.execute_texts(OPERATOR, texts).vectors, want, atol=1e-6)
        assert len(second_op.batch_sizes) == served + 4
        # The stopped replica failed one call, which went on to the other, then got none.
        assert grew(before) == {"batches": 5, "items": 10, "ok": 4, "unavailable": 1}
        assert replica_set.states() == [
            {"endpoint": endpoints[0], "state": "down"}, {"endpoint": endpoints[1], "state": "up"},
        ]

        before, served = counts(), len(second_op.batch_sizes)
        with pytest.raises(OperatorCallError) as refused:
            replica_set.execute_texts(OPERATOR, ["a cat", "   "])
        assert refused.value.code == "INVALID_ARGUMENT"
        assert refused.value.details == "texts[1]: empty text: give some words"
        with pytest.raises(OperatorCallError) as refused:
            replica_set.execute(OPERATOR, [Picture(b64="aGVsbG8=")])
        assert refused.value.code == "INVALID_ARGUMENT"
        assert "encodes texts, not images" in refused.value.details
        # Refusals are the request's fault: not retried, and the replica stays up.
        assert grew(before) == {"batches": 2, "items": 3, "invalid": 2}
        assert len(second_op.batch_sizes) == served
        assert replica_set.states()[1]["state"] == "up"
    finally:
        pool.close()
