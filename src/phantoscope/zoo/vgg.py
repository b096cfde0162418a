"""VGG16 (torchvision), as in the original Phantoscope: global max pooling, 512-d."""

from __future__ import annotations

from typing import ClassVar

from phantoscope.zoo.onnx_encoder import TorchvisionWeightsEncoder


class VGG16Encoder(TorchvisionWeightsEncoder):
    """512-d features: VGG16's convolutional trunk followed by global max pooling.

    Weights: ``weights=`` or ``$PHANTOSCOPE_WEIGHTS`` (a local file or http(s) URL of a
    torchvision state dict), else torchvision's ImageNet weights, downloaded once when the
    model is first exported.
    """

    name = "vgg16-encoder"
    dimension = 512
    export_name: ClassVar[str] = "vgg16"
    default_weights: ClassVar[str] = "https://download.pytorch.org/models/vgg16-397923af.pth"
