"""The static int8 encoders: they serve, stay close to their fp32 encoders, keep near
duplicates nearest, and never import torch or onnx when serving.

EfficientNet-Lite0 and MobileNetV2 use the real model cache (``$PHANTOSCOPE_MODELS`` or
``~/.cache/phantoscope/models``), so only the first run pays for quantising (about 10 s a
model here, after the fp32 export). ResNet50 runs on a seeded random checkpoint in a
temporary cache, as in test_encoders_torchvision.py.
"""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nearest import assert_edits_are_nearest
from phantoscope.cli.operator_loader import load_operator
from phantoscope.photoset import BASE_PHOTOS
from phantoscope.zoo import BUILTINS
from phantoscope.zoo.efficientnet import EfficientNetLite0Encoder
from phantoscope.zoo.int8 import (
    EfficientNetLite0Int8Encoder,
    Int8Variant,
    MobileNetV2Int8Encoder,
    ResNet50Int8Encoder,
    VGG16Int8Encoder,
)
from phantoscope.zoo.mobilenet import MobileNetV2Encoder
from phantoscope.zoo.modelcache import INT8_TAG, ensure_quantized, weights_tag
from phantoscope.zoo.onnx_encoder import OnnxImageEncoder
from photos import edited_copy, photo

# Measured over the 10 photos and their edited copies: mean cosine 0.983 (EfficientNet-Lite0)
# and 0.987 (MobileNetV2), lowest 0.955 and 0.978; over the harder labelled evaluation set
# (bench/int8_quality.py) the lowest is 0.91.
MIN_MEAN_COSINE = 0.95
MIN_COSINE = 0.85


@pytest.fixture(scope="module")
def photos() -> list[Image.Image]:
    """Photos the int8 models were not calibrated on (the evaluation set's base photos)."""
    return [photo(name) for name in BASE_PHOTOS]


@pytest.fixture(scope="module")
def edits(photos: list[Image.Image]) -> list[Image.Image]:
    return [Image.open(io.BytesIO(edited_copy(image))).convert("RGB") for image in photos]


PAIRS = {
    "efficientnet": (EfficientNetLite0Encoder, EfficientNetLite0Int8Encoder),
    "mobilenet": (MobileNetV2Encoder, MobileNetV2Int8Encoder),
}


@pytest.fixture(scope="module", params=list(PAIRS))
def pair(request: pytest.FixtureRequest) -> tuple[OnnxImageEncoder, OnnxImageEncoder]:
    """(fp32, int8) encoders of one model, loaded."""
    fp32, int8 = (cls() for cls in PAIRS[request.param])
    fp32.load()
    int8.load()
    return fp32, int8


def test_cache_file_names_the_variant(pair: tuple[OnnxImageEncoder, Int8Variant]) -> None:
    fp32, int8 = pair
    path = int8.model_path()
    assert path.is_file()
    assert int8.fp32_model_path() == fp32.model_path()
    assert path.name == f"{fp32.model_path().stem}-{INT8_TAG}.onnx"
    # The trunk shrinks to under a third; the ImageNet-1k classifier head (1280 x 1000 weights
    # and 1000 biases, float32) stays float in both files.
    head = (1280 * 1000 + 1000) * 4
    assert path.stat().st_size - head < (fp32.model_path().stat().st_size - head) / 3
    # The file records how it was made.
    assert int8._session is not None
    metadata = int8._session.get_modelmeta().custom_metadata_map
    assert metadata["phantoscope.quantization"] == INT8_TAG
    assert metadata["phantoscope.source"] == fp32.model_path().name
    assert metadata["phantoscope.calibration"].startswith("96 images from scikit-image")


def test_describes_itself_as_its_fp32_encoder(
    pair: tuple[OnnxImageEncoder, OnnxImageEncoder],
) -> None:
    fp32, int8 = pair
    assert int8.name == f"{fp32.name}-int8"
    assert (int8.type, int8.dimension, int8.metric_type) == ("encoder", 1280, "IP")
    assert (int8.max_batch_size, int8.min_image_side) == (fp32.max_batch_size, 256)


def test_vectors_are_unit_float32_and_batch_equals_singles(
    pair: tuple[OnnxImageEncoder, OnnxImageEncoder], photos: list[Image.Image]
) -> None:
    _, int8 = pair
    batch = int8.run(photos)
    assert batch.shape == (len(photos), 1280)
    assert batch.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    singles = np.concatenate([int8.run([image]) for image in photos])
    np.testing.assert_allclose(batch, singles, rtol=1e-4, atol=1e-5)
    assert int8.run([]).shape == (0, 1280)
    odd = [Image.new("L", (40, 900), 128), Image.new("RGBA", (1, 1), (255, 0, 0, 128))]
    assert np.isfinite(int8.run(odd)).all()


def test_vectors_are_close_to_fp32(
    pair: tuple[OnnxImageEncoder, OnnxImageEncoder],
    photos: list[Image.Image],
    edits: list[Image.Image],
) -> None:
    fp32, int8 = pair
    images = photos + edits
    cosine = (fp32.run(images) * int8.run(images)).sum(axis=1)
    assert cosine.mean() >= MIN_MEAN_COSINE, cosine.round(3)
    assert cosine.min() >= MIN_COSINE, cosine.round(3)


def test_near_duplicates_are_nearest(
    pair: tuple[OnnxImageEncoder, OnnxImageEncoder],
    photos: list[Image.Image],
    edits: list[Image.Image],
) -> None:
    _, int8 = pair
    assert_edits_are_nearest(int8.run(photos), int8.run(edits), BASE_PHOTOS)


def test_serving_imports_neither_torch_nor_onnx(
    pair: tuple[OnnxImageEncoder, OnnxImageEncoder],
) -> None:
    _, int8 = pair  # the cached int8 model exists, so serving only opens it
    cls = type(int8)
    script = textwrap.dedent(
        f"""
        import sys
        from PIL import Image
        from phantoscope.cli.operator_loader import load_operator
        encoder = load_operator({int8.name!r})
        assert type(encoder).__name__ == {cls.__name__!r}
        encoder.load()
        assert encoder.run([Image.new("RGB", (320, 240), "red")]).shape == (1, 1280)
        heavy = {{"torch", "torchvision", "efficientnet_lite_pytorch", "onnx", "skimage"}}
        print(sorted(m for m in sys.modules
                     if m.split(".")[0] in heavy or m.startswith("onnxruntime.quantization")))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_builtins_name_the_int8_variants() -> None:
    for name in (
        "efficientnet-lite0-encoder-int8", "mobilenet-v2-encoder-int8",
        "resnet50-encoder-int8", "vgg16-encoder-int8",
    ):
        encoder = load_operator(name)  # builds, does not load
        assert isinstance(encoder, Int8Variant)
        assert encoder.name == name
        fp32 = load_operator(name.removesuffix("-int8"))
        assert (encoder.dimension, encoder.metric_type) == (fp32.dimension, fp32.metric_type)
        assert isinstance(encoder, type(fp32))
    assert all(path.startswith("phantoscope.zoo.") for path in BUILTINS.values())


def test_torchvision_int8_file_names_carry_the_weights(tmp_path: Path) -> None:
    weights = tmp_path / "weights.pth"
    weights.write_bytes(b"not really a checkpoint")
    tag = weights_tag(str(weights))
    assert VGG16Int8Encoder(weights=str(weights)).model_path().name == (
        f"vgg16-{tag}-{INT8_TAG}.onnx"
    )
    url = "https://example.invalid/resnet50.pth"
    assert ResNet50Int8Encoder(weights=url).model_path().name == (
        f"resnet50-{weights_tag(url)}-{INT8_TAG}.onnx"
    )


def test_calibration_set_is_fixed_and_held_out() -> None:
    from phantoscope.modelbuild.quantize import CALIBRATION_PHOTOS, calibration_images

    assert not set(CALIBRATION_PHOTOS) & set(BASE_PHOTOS)
    first, second = calibration_images(), calibration_images()
    assert len(first) == 96
    assert all(
        a.size == b.size and a.tobytes() == b.tobytes() for a, b in zip(first, second, strict=True)
    )


def test_resnet50_int8_from_a_local_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, photos: list[Image.Image]
) -> None:
    """The torchvision-weights path end to end: export, quantise, serve (random weights)."""
    torch = pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    monkeypatch.setenv("PHANTOSCOPE_MODELS", str(tmp_path / "models"))
    torch.manual_seed(0)
    weights = tmp_path / "resnet50.pth"
    torch.save(torchvision.models.resnet50().state_dict(), weights)
    fp32 = load_operator("resnet50-encoder", weights=str(weights))
    int8 = load_operator("resnet50-encoder-int8", weights=str(weights))
    int8.load()
    assert int8.model_path().name == f"resnet50-{weights_tag(str(weights))}-{INT8_TAG}.onnx"
    assert int8.model_path().is_file() and fp32.model_path().is_file()
    vectors = int8.run(photos[:4])
    assert vectors.shape == (4, 2048)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert (fp32.run(photos[:4]) * vectors).sum(axis=1).min() >= MIN_COSINE


def test_a_failed_quantisation_says_why(
    tmp_path: Path, pair: tuple[OnnxImageEncoder, Int8Variant]
) -> None:
    fp32, _ = pair
    out = tmp_path / "int8.onnx"
    with pytest.raises(RuntimeError, match=r"quantising .* to int8 failed[\s\S]*scikit-image"):
        ensure_quantized(fp32.model_path(), out, "no_such_module:Encoder")
    assert list(tmp_path.iterdir()) == []
