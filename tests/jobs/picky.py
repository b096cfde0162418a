"""An encoder that fails on some images: served as `picky:PickyEncoder` (this folder on
PYTHONPATH). Images 33 pixels wide make it raise, as a model that crashes on one input."""

from __future__ import annotations

import numpy as np
from PIL import Image

from phantoscope.operators.base import Encoder

POISON_WIDTH = 33


class PickyEncoder(Encoder):
    name = "picky-encoder"
    dimension = 3
    metric_type = "L2"

    def run(self, images: list[Image.Image]) -> np.ndarray:
        if any(image.width == POISON_WIDTH for image in images):
            raise RuntimeError("the model crashed on this image")
        return np.array([np.asarray(image.convert("RGB"), dtype=np.float32).mean(axis=(0, 1))
                         for image in images])
