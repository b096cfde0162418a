"""A tiny encoder for fault tests: starts in a second and notes every call it serves.

Served in child processes as `tally:TallyEncoder` (this folder on PYTHONPATH). Environment:
``TALLY_LOG`` a file that gets one line per run() call (before any delay), ``TALLY_DELAY_S``
seconds each call takes, ``TALLY_DIMENSION`` its vector size (default 16).
"""

from __future__ import annotations

import os
import time

import numpy as np
from PIL import Image

from phantoscope.operators.base import Encoder, l2_normalize


class TallyEncoder(Encoder):
    name = "tally-encoder"
    dimension = int(os.environ.get("TALLY_DIMENSION", "16"))
    metric_type = "IP"

    def run(self, images: list[Image.Image]) -> np.ndarray:
        log = os.environ.get("TALLY_LOG")
        if log:
            with open(log, "a") as out:
                out.write(f"{len(images)}\n")
        time.sleep(float(os.environ.get("TALLY_DELAY_S", "0")))
        rows = [
            np.asarray(image.convert("L").resize((self.dimension, 1)), dtype=np.float32).ravel()
            for image in images
        ]
        return l2_normalize(np.stack(rows) + 1.0)
