"""Operators served by the test's own process (a real gRPC server on a free port), or by
`phantoscope operator serve inprocess:CLASS` with ``tests/`` on PYTHONPATH."""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from phantoscope.config import OperatorSettings
from phantoscope.operators import Encoder, TextEncoder, l2_normalize
from phantoscope.operators.base import Operator
from phantoscope.operators.server import OperatorServer


class MeanColourEncoder(Encoder):
    """Vector: the image's mean red, green and blue."""

    name = "mean-colour"
    dimension = 3
    metric_type = "L2"

    def run(self, images):
        return np.array([np.asarray(im, dtype=np.float32).mean(axis=(0, 1)) for im in images])


class OriginalTemplateEncoder:
    """An operator written against the original template (serve it through
    :class:`~phantoscope.operators.legacy.LegacyOperator`): base64 strings in, vectors out."""

    name, type, input, output, dimension, metric_type = (
        "original-length", "encoder", "image", "vector", 1, "L2")

    def run(self, images, urls):
        return [[float(len(text))] for text in images]


WORD = re.compile(r"\w+")


def bag_of_words(text: str, dimension: int) -> np.ndarray:
    """The unit vector :class:`HashingTextEncoder` gives ``text``: each word adds +1 or -1
    to one of ``dimension`` slots, both chosen by a stable hash of the word, so texts sharing
    words point the same way."""
    vector = np.zeros(dimension, dtype=np.float32)
    for word in WORD.findall(text.lower()):
        code = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "big")
        vector[code % dimension] += 1.0 if code >> 63 else -1.0
    return l2_normalize(vector[None])[0]


class HashingTextEncoder(TextEncoder):
    """A deterministic hashing bag of words. Records its run() calls' sizes and the texts
    they got; ``delay_s`` stands for a model's work."""

    name = "hashing-text"
    dimension = 64
    metric_type = "IP"

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.batch_sizes: list[int] = []
        self.seen: list[str] = []

    def run(self, texts: list[str]) -> np.ndarray:
        self.batch_sizes.append(len(texts))
        self.seen.extend(texts)
        time.sleep(self.delay_s)
        return np.stack([bag_of_words(text, self.dimension) for text in texts])


@contextmanager
def serve_in_process(operator: Operator) -> Iterator[OperatorServer]:
    """``operator`` served on 127.0.0.1 until the block ends, its model loaded."""
    settings = OperatorSettings(_env_file=None, endpoint="127.0.0.1:0")
    with OperatorServer(operator, settings, host="127.0.0.1", port=0) as server:
        assert server.servicer.wait_loaded(30)
        yield server
