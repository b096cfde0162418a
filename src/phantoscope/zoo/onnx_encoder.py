"""Image encoders that run an exported ONNX model in ONNX Runtime (no torch at serving time).

A subclass names its export (see :mod:`phantoscope.modelbuild.export`) and its preprocessing; this
class resizes and centre-crops each image, runs the whole batch in one session call and
returns unit-length vectors. A subclass whose export keeps the ImageNet-1k classifier sets
``labels = IMAGENET_1K``: the same session call then also gives each image's top labels.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import numpy as np
import onnxruntime as ort
from PIL import Image

from phantoscope.operators.base import Encoder, Encoding, l2_normalize
from phantoscope.operators.labels import imagenet_class_ids, top_labels
from phantoscope.zoo.modelcache import (
    FEATURES,
    PROBABILITIES,
    chosen_weights,
    ensure_model,
    export_model,
    models_dir,
    weights_tag,
)
from phantoscope.zoo.runtime import create_session, has_cuda

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# (x - 0.5) / 0.5 == x * 2 - 1: the TensorFlow models' scaling of x in [0, 1] to [-1, 1].
TF_MEAN = (0.5, 0.5, 0.5)
TF_STD = (0.5, 0.5, 0.5)


class OnnxImageEncoder(Encoder):
    """Base of the built-in CNN encoders.

    Subclasses set ``name``, ``dimension``, ``export_name`` and ``weights_id`` (what
    identifies the weights in the cache file name), and may change the normalisation. Those
    whose export has the ImageNet-1k class probabilities set ``labels = IMAGENET_1K``.
    """

    export_name: ClassVar[str]
    weights_id: ClassVar[str]
    metric_type = "IP"
    max_batch_size: ClassVar[int] = 16
    # Served batch on a CPU: a batch of 4 encodes faster per image than one of 16 there
    # (bench/ingest.py: 361 against 301 images/s in the bare session), and the operator's
    # decoding threads keep the cores busy between small batches.
    cpu_batch_size: ClassVar[int] = 4
    # Resize the shorter side to resize_size, then centre-crop image_size x image_size.
    image_size: ClassVar[int] = 224
    resize_size: ClassVar[int] = 256
    min_image_side: ClassVar[int | None] = resize_size
    mean: ClassVar[tuple[float, float, float]] = IMAGENET_MEAN
    std: ClassVar[tuple[float, float, float]] = IMAGENET_STD

    def __init__(self) -> None:
        self._session: ort.InferenceSession | None = None
        self._input_name = ""

    def export_weights(self) -> str | None:
        """The weights handed to the export (None: the ones the export knows itself)."""
        return None

    def model_path(self) -> Path:
        """Where this model's ONNX file lives in the cache."""
        return models_dir() / f"{self.export_name}-{self.weights_id}.onnx"

    def serving_batch_size(self) -> int:
        return self.max_batch_size if has_cuda() else min(self.max_batch_size, self.cpu_batch_size)

    def outputs(self) -> list[str]:
        """The model outputs this encoder reads: the features, then the class probabilities
        when it gives labels."""
        return [FEATURES, PROBABILITIES] if self.labels else [FEATURES]

    def load(self) -> None:
        """Export the model if the cache lacks it, then open an ONNX Runtime session."""
        weights = self.export_weights()
        path = ensure_model(self.export_name, self.model_path(), weights)

        def remake() -> Path:
            return export_model(self.export_name, path, weights)

        self._serve(self._current_session(path, remake))

    def _serve(self, session: ort.InferenceSession) -> None:
        self._session = session
        self._input_name = session.get_inputs()[0].name

    def _current_session(self, path: Path, remake: Callable[[], Path]) -> ort.InferenceSession:
        """A session on ``path``; a file lacking an output this encoder reads (one cached by
        an older release, before labels) is first made again by ``remake``."""
        session = create_session(path)
        if missing := self._missing_outputs(session):
            log.info("%s lacks the outputs %s: making it again", path, missing)
            session = create_session(remake())
            if missing := self._missing_outputs(session):
                raise RuntimeError(f"{path} still lacks the outputs {missing} after remaking it")
        return session

    def _missing_outputs(self, session: ort.InferenceSession) -> list[str]:
        present = {output.name for output in session.get_outputs()}
        return [name for name in self.outputs() if name not in present]

    def prepare_image(self, image: Image.Image) -> np.ndarray:
        """Resize and crop in the request's thread, so the model's thread only infers."""
        return self._pixels(image)

    def _pixels(self, image: Image.Image | np.ndarray) -> np.ndarray:
        """The centre crop at model size, (S, S, 3) uint8 (arrays pass as they are)."""
        if isinstance(image, np.ndarray):
            return image
        return np.asarray(self._resize_crop(image.convert("RGB")))

    def preprocess(self, images: list[Image.Image] | list[np.ndarray]) -> np.ndarray:
        """Resize, centre-crop and normalise: an (N, 3, S, S) float32 array. Takes images,
        or the crops `prepare` made."""
        pixels = np.stack([self._pixels(image) for image in images])  # (N, S, S, 3) uint8
        offsets = np.asarray(self.mean, dtype=np.float32) * 255
        scales = 1 / (np.asarray(self.std, dtype=np.float32) * 255)
        batch = np.empty((len(pixels), 3, *pixels.shape[1:3]), dtype=np.float32)
        # One channel plane at a time, written in place: 8x faster than normalising the
        # (N, S, S, 3) array and then transposing it (0.09 against 0.73 ms an image).
        for channel in range(3):
            plane = batch[:, channel]
            np.subtract(pixels[..., channel], offsets[channel], out=plane, dtype=np.float32)
            plane *= scales[channel]
        return batch

    def _resize_crop(self, image: Image.Image) -> Image.Image:
        # Resizing only the source region the centre crop keeps is the same as resizing the
        # shorter side to resize_size and then cropping, but cheaper on large images.
        width, height = image.size
        side = min(width, height) * self.image_size / self.resize_size
        left, top = (width - side) / 2, (height - side) / 2
        return image.resize(
            (self.image_size, self.image_size),
            Image.Resampling.BILINEAR,
            box=(left, top, left + side, top + side),
        )

    def run(self, images: list[Image.Image] | list[np.ndarray]) -> np.ndarray:
        """Encode a batch (images, or what `prepare` made of them): an (N, dimension) float32
        array of unit-length rows."""
        return np.asarray(self.encode(images).vectors)

    def encode(self, images: list[Image.Image] | list[np.ndarray]) -> Encoding:
        """The vectors of :meth:`run` and, for an encoder with labels, each image's top
        ImageNet-1k labels, from one session call."""
        if not images:
            vectors = np.zeros((0, self.dimension), dtype=np.float32)
            return Encoding(vectors, [] if self.labels else None)
        if self._session is None:
            self.load()
        assert self._session is not None
        outputs = self._session.run(self.outputs(), {self._input_name: self.preprocess(images)})
        vectors = l2_normalize(outputs[0])
        if not self.labels:
            return Encoding(vectors)
        return Encoding(vectors, top_labels(outputs[1], imagenet_class_ids()))


class TorchvisionWeightsEncoder(OnnxImageEncoder):
    """An encoder whose torchvision-format state dict comes from a local file or a URL.

    ``weights`` defaults to ``$PHANTOSCOPE_WEIGHTS``, then to ``default_weights``. The cache
    file name carries a hash of the file's contents (or of the URL), so different weights never
    share a cache entry.
    """

    default_weights: ClassVar[str]

    def __init__(self, *, weights: str | None = None) -> None:
        super().__init__()
        self.weights = chosen_weights(weights, self.default_weights)

    def export_weights(self) -> str | None:
        return self.weights

    def model_path(self) -> Path:
        return models_dir() / f"{self.export_name}-{weights_tag(self.weights)}.onnx"
