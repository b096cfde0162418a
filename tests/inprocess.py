"""An operator served by the test's own process (a real gRPC server on a free port)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from phantoscope.config import OperatorSettings
from phantoscope.operators import Encoder
from phantoscope.operators.base import Operator
from phantoscope.operators.server import OperatorServer


class MeanColourEncoder(Encoder):
    """Vector: the image's mean red, green and blue."""

    name = "mean-colour"
    dimension = 3
    metric_type = "L2"

    def run(self, images):
        return np.array([np.asarray(im, dtype=np.float32).mean(axis=(0, 1)) for im in images])


@contextmanager
def serve_in_process(operator: Operator) -> Iterator[OperatorServer]:
    """``operator`` served on 127.0.0.1 until the block ends, its model loaded."""
    settings = OperatorSettings(_env_file=None, endpoint="127.0.0.1:0")
    with OperatorServer(operator, settings, host="127.0.0.1", port=0) as server:
        assert server.servicer.wait_loaded(30)
        yield server
