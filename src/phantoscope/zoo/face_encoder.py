"""Face encoder: dlib's 128-d face descriptor of the face in each image.

Meant for the face detector's crops, it gives a vector for any image: it looks for the largest
frontal face (HOG), falls back to the whole image as the face's box, places dlib's five
landmarks in that box, and describes the aligned 150 x 150 chip they give.
"""

from __future__ import annotations

from typing import ClassVar

import dlib
import numpy as np
from PIL import Image

from phantoscope.operators.base import Encoder, l2_normalize
from phantoscope.zoo.dlib_models import FACE_DESCRIPTOR, FIVE_POINT_LANDMARKS, model_path

# The face is looked for in a copy whose longer side is brought within these bounds: small
# crops are enlarged so a face filling them reaches HOG's ~80-pixel minimum, large images
# are shrunk to keep detection fast.
DETECT_MIN_SIDE = 320
DETECT_MAX_SIDE = 1024
CHIP_SIZE = 150  # what the descriptor network expects
CHIP_PADDING = 0.25  # dlib's default


class FaceEncoder(Encoder):
    """128-d dlib face descriptors, unit length, compared by inner product."""

    name: ClassVar[str] = "face-encoder"
    dimension: ClassVar[int] = 128
    metric_type: ClassVar[str] = "IP"

    def __init__(self) -> None:
        self._detector: dlib.fhog_object_detector | None = None
        self._landmarks: dlib.shape_predictor | None = None
        self._descriptor: dlib.face_recognition_model_v1 | None = None

    def load(self) -> None:
        """Read the detector, the five-point landmark model and the descriptor network."""
        self._detector = dlib.get_frontal_face_detector()
        self._landmarks = dlib.shape_predictor(str(model_path(FIVE_POINT_LANDMARKS)))
        self._descriptor = dlib.face_recognition_model_v1(str(model_path(FACE_DESCRIPTOR)))

    def run(self, images: list[Image.Image]) -> np.ndarray:
        """Encode a batch: an (N, 128) float32 array of unit-length rows."""
        if not images:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if self._descriptor is None:
            self.load()
        assert self._descriptor is not None
        chips = [self._chip(image.convert("RGB")) for image in images]
        return l2_normalize(np.array(self._descriptor.compute_face_descriptor(chips)))

    def _chip(self, image: Image.Image) -> np.ndarray:
        """The face aligned by its landmarks, as dlib's descriptor network expects it."""
        assert self._landmarks is not None
        array = np.asarray(image)
        shape = self._landmarks(array, self._face_box(image))
        return dlib.get_face_chip(array, shape, size=CHIP_SIZE, padding=CHIP_PADDING)

    def _face_box(self, image: Image.Image) -> dlib.rectangle:
        """The largest face HOG finds in the image, else the whole image."""
        assert self._detector is not None
        width, height = image.size
        longer = max(width, height)
        scale = min(max(longer, DETECT_MIN_SIDE), DETECT_MAX_SIDE) / longer
        if scale != 1:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            image = image.resize(size, Image.Resampling.BILINEAR)
        faces = self._detector(np.asarray(image))
        if not faces:
            return dlib.rectangle(0, 0, width - 1, height - 1)
        face = max(faces, key=lambda rect: rect.area())
        return dlib.rectangle(
            round(face.left() / scale),
            round(face.top() / scale),
            round(face.right() / scale),
            round(face.bottom() / scale),
        )
