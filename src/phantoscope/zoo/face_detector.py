"""Face detector: dlib's HOG frontal-face detector (its CNN detector on request).

HOG is the default: measured on a 2-core CPU it takes 14 ms for a 512 x 512 image against
1 s for the CNN, and both find the astronaut's face and nothing in photos without faces. The
CNN also finds faces turned half away (the cameraman) and HOG does not; choose it where that
matters more than 70 times the time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, Literal

import dlib
import numpy as np
from PIL import Image

from phantoscope.operators.base import Box, Crop, Processor
from phantoscope.zoo.dlib_models import CNN_FACE_DETECTOR, model_path

# One face: dlib's box (right and bottom inclusive) and the detector's score.
Detection = tuple[dlib.rectangle, float]


class FaceDetector(Processor):
    """Crops each face found, best score first.

    ``upsample`` doubles the image that many times before detecting: HOG finds faces of about
    80 pixels and up, each doubling halves that and costs four times the time. ``margin`` is
    the fraction of the face's width and height added on each side of its crop (clipped to
    the image); each crop's ``Box`` is the crop's own region and carries the detector's score
    (HOG: the SVM's margin; CNN: its confidence). ``hog_threshold`` drops HOG detections
    scoring below it: JPEG artefacts on the astronaut's suit score 0.002-0.1, her face 1.5.
    """

    name: ClassVar[str] = "face-detector"
    min_image_side: ClassVar[int | None] = None

    def __init__(
        self,
        *,
        model: Literal["hog", "cnn"] = "hog",
        upsample: int = 0,
        margin: float = 0.2,
        hog_threshold: float = 0.3,
    ) -> None:
        if model not in ("hog", "cnn"):
            raise ValueError(f"model must be 'hog' or 'cnn', not {model!r}")
        if upsample < 0 or margin < 0:
            raise ValueError("upsample and margin must not be negative")
        self.model = model
        self.upsample = upsample
        self.margin = margin
        self.hog_threshold = hog_threshold
        self._detect: Callable[[np.ndarray], list[Detection]] | None = None

    def load(self) -> None:
        """Build the chosen dlib detector."""
        if self.model == "hog":
            hog = dlib.get_frontal_face_detector()

            def detect(array: np.ndarray) -> list[Detection]:
                rects, scores, _ = hog.run(array, self.upsample, self.hog_threshold)
                return list(zip(rects, scores, strict=True))
        else:
            cnn = dlib.cnn_face_detection_model_v1(str(model_path(CNN_FACE_DETECTOR)))

            def detect(array: np.ndarray) -> list[Detection]:
                return [(found.rect, found.confidence) for found in cnn(array, self.upsample)]

        self._detect = detect

    def run(self, images: list[Image.Image]) -> list[list[Crop]]:
        """For each image, its faces as crops, best score first."""
        if self._detect is None:
            self.load()
        assert self._detect is not None
        results = []
        for image in images:
            image = image.convert("RGB")
            detections = sorted(self._detect(np.asarray(image)), key=lambda d: -d[1])
            boxes = [self._box(rect, score, image.size) for rect, score in detections]
            results.append(
                [Crop(image.crop((b.left, b.top, b.right, b.bottom)), b) for b in boxes if b]
            )
        return results

    def _box(self, rect: dlib.rectangle, score: float, size: tuple[int, int]) -> Box | None:
        """The face's region grown by the margin and clipped to the image (None if empty)."""
        width, height = size
        grow_x = round(self.margin * rect.width())
        grow_y = round(self.margin * rect.height())
        box = Box(
            left=max(0, rect.left() - grow_x),
            top=max(0, rect.top() - grow_y),
            right=min(width, rect.right() + 1 + grow_x),
            bottom=min(height, rect.bottom() + 1 + grow_y),
            score=float(score),
        )
        return box if box.right > box.left and box.bottom > box.top else None
