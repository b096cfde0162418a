"""Static int8 variants of the built-in CNN encoders, for CPUs.

Each one serves the same model as its fp32 encoder, quantised once in the prepare step (see
:mod:`phantoscope.modelbuild.quantize`, run in a subprocess) and cached beside the fp32 file as
``<fp32 name>-int8-cal<N>.onnx``. Serving only opens that file in ONNX Runtime: no torch, no
onnx. Vectors have the same dimension and metric as the fp32 encoder's, but they are not
the same numbers, so a pipeline's collection must be filled by one variant only.

Measured on this 2-core machine (``bench/int8_quality.py``), EfficientNet-Lite0 and
MobileNetV2 run about twice as fast, at a small cost in retrieval quality.
"""

from __future__ import annotations

from pathlib import Path

from phantoscope.zoo.efficientnet import EfficientNetLite0Encoder
from phantoscope.zoo.mobilenet import MobileNetV2Encoder
from phantoscope.zoo.modelcache import (
    ensure_model,
    ensure_quantized,
    export_model,
    quantize_model,
    quantized_path,
)
from phantoscope.zoo.onnx_encoder import OnnxImageEncoder
from phantoscope.zoo.resnet import ResNet50Encoder
from phantoscope.zoo.vgg import VGG16Encoder


class Int8Variant(OnnxImageEncoder):
    """Put first among the bases of an int8 encoder, before its fp32 encoder class."""

    def fp32_model_path(self) -> Path:
        """The exported fp32 model this one is quantised from."""
        return super().model_path()

    def model_path(self) -> Path:
        return quantized_path(self.fp32_model_path())

    def load(self) -> None:
        """Export and quantise if the cache lacks the files, then open the int8 model; one
        cached before labels is quantised again, from an fp32 model exported again if it is
        as old."""
        weights = self.export_weights()
        fp32 = ensure_model(self.export_name, self.fp32_model_path(), weights)
        cls = type(self)
        encoder = f"{cls.__module__}:{cls.__qualname__}"
        path = ensure_quantized(fp32, self.model_path(), encoder)

        def requantize() -> Path:
            self._current_session(fp32, lambda: export_model(self.export_name, fp32, weights))
            return quantize_model(fp32, path, encoder)

        self._serve(self._current_session(path, requantize))


class EfficientNetLite0Int8Encoder(Int8Variant, EfficientNetLite0Encoder):
    """EfficientNet-Lite0's 1280-d features, static int8."""

    name = "efficientnet-lite0-encoder-int8"


class MobileNetV2Int8Encoder(Int8Variant, MobileNetV2Encoder):
    """MobileNetV2's 1280-d features, static int8."""

    name = "mobilenet-v2-encoder-int8"


class ResNet50Int8Encoder(Int8Variant, ResNet50Encoder):
    """ResNet50's 2048-d features, static int8 (weights as for the fp32 encoder)."""

    name = "resnet50-encoder-int8"


class VGG16Int8Encoder(Int8Variant, VGG16Encoder):
    """VGG16's 512-d max-pooled features, static int8 (weights as for the fp32 encoder)."""

    name = "vgg16-encoder-int8"
