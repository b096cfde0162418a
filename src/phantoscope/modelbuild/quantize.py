"""Make a static int8 copy of an exported model (QDQ, per-channel weights) for ONNX Runtime.

Usage: ``python -m phantoscope.modelbuild.quantize FP32.onnx --out INT8.onnx
--encoder module:Class``.

Imports onnx and ``onnxruntime.quantization``, which the serving side never loads: the int8
encoders (:mod:`phantoscope.zoo.int8`) run this in a subprocess, once, through
:func:`phantoscope.zoo.modelcache.ensure_quantized`; afterwards they only open the cached file.

The recipe (its quality and speed are measured by ``bench/int8_quality.py``):

- QDQ format; weights int8, symmetric, one scale per output channel; activations uint8,
  asymmetric, one scale per tensor (U8S8, the fast path of ONNX Runtime's x86 kernels);
- weights in 7 bits (``reduce_range``): on x86 CPUs without VNNI (AVX2 only), the U8S8
  kernels add pairs of 8-bit products in 16 bits, which overflow with full-range weights;
  measured on such a CPU (EfficientNet-Lite0, the test photos and their edits), the mean
  fp32/int8 cosine was 0.89 with 8-bit weights, 0.95 with 7 bits;
- the first convolution (three colour channels in, the most sensitive layer) stays float:
  with it, 0.97;
- activation ranges by MinMax calibration, averaged over batches of 8 (``CalibMovingAverage``);
- what follows the last convolution (global pooling, flatten) stays float, so the feature
  vector is not rounded to 256 levels; so does the ImageNet-1k classifier head of the models
  exported with it (Gemm, softmax): quantised, it rounds the features output too, and its
  logits, calibrated on photos it mostly does not recognise, saturate (measured: the cat
  photo's three cat classes at 0.28 each, espresso at 0.45 instead of 0.96). It costs 5 MB
  of float weights in the file and 1.3 million multiply-adds an image;
- calibration images: :data:`CALIBRATION_PHOTOS`, scikit-image sample photos that ship with
  the package (nothing is downloaded), each with seeded crops, flips and colour changes. None
  of them is in the retrieval evaluation set (:data:`phantoscope.photoset.BASE_PHOTOS`)
  or among the photos the tests compare, so quality measured on those is held out.

Dynamic quantisation is not offered: measured here, it makes these CNNs 3-13x slower.
Changing the calibration set or the recipe must bump
:data:`phantoscope.zoo.modelcache.INT8_TAG`, which names the cached files.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process
from PIL import Image, ImageEnhance, ImageOps

from phantoscope.photoset import sample_photo
from phantoscope.zoo.modelcache import INT8_TAG
from phantoscope.zoo.onnx_encoder import OnnxImageEncoder

CALIBRATION_PHOTOS = (
    "brick", "grass", "gravel", "page", "moon", "text", "clock", "horse", "cell",
    "colorwheel", "logo", "microaneurysms",
)
VARIANTS_PER_PHOTO = 8  # the photo itself and 7 edits: 96 images in all
BATCH_SIZE = 8  # calibration batches must all have the same size
# After the last convolution, these activations stay quantised (they are its fused output).
_FUSED_ACTIVATIONS = frozenset({"Relu", "Clip"})


def _variants(photo: Image.Image, rng: np.random.Generator, count: int) -> list[Image.Image]:
    """The photo, then ``count - 1`` random crops (30-100 % of each side), some mirrored,
    with colour, brightness and contrast changed a little."""
    images = [photo]
    width, height = photo.size
    for _ in range(count - 1):
        crop_w = max(16, int(width * rng.uniform(0.3, 1.0)))
        crop_h = max(16, int(height * rng.uniform(0.3, 1.0)))
        left = int(rng.integers(0, width - crop_w + 1))
        top = int(rng.integers(0, height - crop_h + 1))
        image = photo.crop((left, top, left + crop_w, top + crop_h))
        if rng.random() < 0.5:
            image = ImageOps.mirror(image)
        image = ImageEnhance.Color(image).enhance(rng.uniform(0.5, 1.5))
        image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.7, 1.3))
        image = ImageEnhance.Contrast(image).enhance(rng.uniform(0.7, 1.3))
        images.append(image)
    return images


def calibration_images() -> list[Image.Image]:
    """The calibration set: the same images, in the same order, on every run."""
    images: list[Image.Image] = []
    for index, name in enumerate(CALIBRATION_PHOTOS):
        rng = np.random.default_rng(index)
        images += _variants(sample_photo(name), rng, VARIANTS_PER_PHOTO)
    return images


class _Batches(CalibrationDataReader):
    """Feeds preprocessed images to the calibrator in equal batches."""

    def __init__(self, input_name: str, images: np.ndarray) -> None:
        usable = len(images) - len(images) % BATCH_SIZE
        self._batches = [
            {input_name: images[start : start + BATCH_SIZE]}
            for start in range(0, usable, BATCH_SIZE)
        ]
        self._iterator: Iterator[dict[str, np.ndarray]] = iter(self._batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._iterator, None)

    def rewind(self) -> None:
        self._iterator = iter(self._batches)


def _float_nodes(model: onnx.ModelProto) -> list[str]:
    """The nodes left in float: the first convolution, and those after the last one (pooling,
    flatten, classifier head...), activations aside."""
    nodes = list(model.graph.node)
    convs = [i for i, node in enumerate(nodes) if node.op_type == "Conv"]
    if not convs:
        return []
    tail = [
        node.name for node in nodes[convs[-1] + 1 :] if node.op_type not in _FUSED_ACTIVATIONS
    ]
    return [nodes[convs[0]].name, *tail]


def load_encoder(path: str) -> OnnxImageEncoder:
    """An instance of the encoder class ``module:Class`` (for its preprocessing only)."""
    module_name, _, class_name = path.partition(":")
    encoder = getattr(importlib.import_module(module_name), class_name)()
    if not isinstance(encoder, OnnxImageEncoder):
        raise TypeError(f"{path} is not an OnnxImageEncoder")
    return encoder


def quantize(fp32: Path, out: Path, encoder: OnnxImageEncoder) -> None:
    """Write the static int8 copy of ``fp32`` to ``out`` atomically.

    ``encoder`` preprocesses the calibration images exactly as it will preprocess requests.
    """
    images = encoder.preprocess(calibration_images())
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        with tempfile.TemporaryDirectory(prefix="phantoscope-quantize-") as folder:
            prepared = Path(folder) / "prepared.onnx"
            # Shape inference and graph fusions first, as onnxruntime recommends.
            quant_pre_process(str(fp32), str(prepared))
            model = onnx.load(str(prepared))
            quantize_static(
                str(prepared),
                str(tmp),
                _Batches(model.graph.input[0].name, images),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                reduce_range=True,  # 7-bit weights: see the module docstring
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax,
                nodes_to_exclude=_float_nodes(model),
                extra_options={"CalibMovingAverage": True},
            )
        quantized = onnx.load(str(tmp))
        onnx.helper.set_model_props(
            quantized,
            {
                "phantoscope.quantization": INT8_TAG,
                "phantoscope.source": fp32.name,
                "phantoscope.calibration": (
                    f"{len(images)} images from scikit-image: {','.join(CALIBRATION_PHOTOS)}"
                ),
            },
        )
        onnx.save(quantized, str(tmp))
        onnx.checker.check_model(str(tmp))
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m phantoscope.modelbuild.quantize", description=__doc__.splitlines()[0]
    )
    parser.add_argument("model", type=Path, help="the exported fp32 .onnx file")
    parser.add_argument("--out", type=Path, required=True, help="where to write the int8 file")
    parser.add_argument(
        "--encoder", required=True, help="module:Class of the encoder whose preprocessing to use"
    )
    args = parser.parse_args(argv)
    if not args.model.is_file():
        print(f"error: model not found: {args.model}", file=sys.stderr)
        return 1
    quantize(args.model, args.out, load_encoder(args.encoder))
    return 0


if __name__ == "__main__":
    sys.exit(main())
