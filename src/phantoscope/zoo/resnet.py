"""ResNet50 (torchvision), the original Phantoscope tutorial's encoder."""

from __future__ import annotations

from typing import ClassVar

from phantoscope.zoo.onnx_encoder import TorchvisionWeightsEncoder


class ResNet50Encoder(TorchvisionWeightsEncoder):
    """2048-d average-pooled features of ResNet50 (the classifier dropped).

    Weights: ``weights=`` or ``$PHANTOSCOPE_WEIGHTS`` (a local file or http(s) URL of a
    torchvision state dict), else torchvision's ImageNet weights (IMAGENET1K_V1), downloaded
    once when the model is first exported.
    """

    name = "resnet50-encoder"
    dimension = 2048
    export_name: ClassVar[str] = "resnet50"
    default_weights: ClassVar[str] = "https://download.pytorch.org/models/resnet50-0676ba61.pth"
