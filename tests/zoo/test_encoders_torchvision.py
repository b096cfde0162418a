"""ResNet50 and VGG16: weights from a local file or a URL, checked against torch.

No ImageNet weights can be fetched here, so each test session writes a seeded random
checkpoint, serves it from a loopback HTTP server, and exports into a temporary model cache
(the URL's port changes every run; the real cache would only collect stale entries).
"""

from __future__ import annotations

import re
import shutil
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from skimage import data

from helpers import folder_server
from phantoscope.operators.base import l2_normalize
from phantoscope.zoo.onnx_encoder import TorchvisionWeightsEncoder
from phantoscope.zoo.resnet import ResNet50Encoder
from phantoscope.zoo.vgg import VGG16Encoder


@pytest.fixture(scope="session")
def weights_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """A folder and the http:// URL that serves it."""
    folder = tmp_path_factory.mktemp("weights")
    with folder_server(folder) as url:
        yield folder, url


@dataclass
class Checkpoint:
    encoder_class: type[TorchvisionWeightsEncoder]
    path: Path
    url: str
    reference: Callable[[torch.Tensor], torch.Tensor]  # images -> pooled features


def resnet50_reference() -> tuple[torch.nn.Module, Callable[[torch.Tensor], torch.Tensor]]:
    model = torchvision.models.resnet50().eval()
    trunk = torch.nn.Sequential(*list(model.children())[:-1])  # everything up to avgpool
    return model, lambda x: trunk(x).flatten(1)


def vgg16_reference() -> tuple[torch.nn.Module, Callable[[torch.Tensor], torch.Tensor]]:
    model = torchvision.models.vgg16().eval()
    return model, lambda x: model.features(x).amax(dim=(2, 3))


CASES = {
    "resnet50": (ResNet50Encoder, resnet50_reference),
    "vgg16": (VGG16Encoder, vgg16_reference),
}


@pytest.fixture(scope="session", params=list(CASES))
def checkpoint(
    request: pytest.FixtureRequest,
    weights_server: tuple[Path, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Checkpoint]:
    """A seeded random checkpoint on disk and over HTTP, with a temporary model cache."""
    name = request.param
    encoder_class, build_reference = CASES[name]
    folder, base_url = weights_server
    torch.manual_seed(0)
    model, reference = build_reference()
    path = folder / f"{name}.pth"
    torch.save(model.state_dict(), path)
    models = tmp_path_factory.mktemp(f"models-{name}")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PHANTOSCOPE_MODELS", str(models))
        yield Checkpoint(encoder_class, path, f"{base_url}/{name}.pth", reference)
    path.unlink()  # VGG16's is 528 MB: do not leave it in pytest's kept temp folders
    shutil.rmtree(models)


@pytest.fixture(scope="session")
def photos() -> list[Image.Image]:
    return [Image.fromarray(load()) for load in (data.chelsea, data.coffee, data.rocket)]


def test_path_and_url_load_the_same_weights(
    checkpoint: Checkpoint, photos: list[Image.Image]
) -> None:
    by_path = checkpoint.encoder_class(weights=str(checkpoint.path))
    by_url = checkpoint.encoder_class(weights=checkpoint.url)
    by_path.load()
    by_url.load()
    assert by_path.model_path() != by_url.model_path()
    assert by_path.model_path().is_file() and by_url.model_path().is_file()

    vectors = by_path.run(photos)
    dimension = {ResNet50Encoder: 2048, VGG16Encoder: 512}[checkpoint.encoder_class]
    assert by_path.dimension == dimension
    assert vectors.shape == (len(photos), dimension)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(by_url.run(photos), vectors, atol=1e-6)

    # The ONNX model computes what torch computes with the same checkpoint.
    with torch.no_grad():
        expected = checkpoint.reference(torch.from_numpy(by_path.preprocess(photos)))
    assert np.abs(vectors - l2_normalize(expected.numpy())).max() < 1e-4


def test_weights_for_another_model_are_refused(checkpoint: Checkpoint) -> None:
    other = VGG16Encoder if checkpoint.encoder_class is ResNet50Encoder else ResNet50Encoder
    with pytest.raises(RuntimeError, match=f"do not fit {other.export_name}"):
        other(weights=str(checkpoint.path)).load()


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.pth"
    with pytest.raises(FileNotFoundError, match="weights file not found"):
        ResNet50Encoder(weights=str(missing)).load()


def test_not_a_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError, match="could not read weights"):
        ResNet50Encoder(weights=str(garbage)).load()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("where", ["missing file", "closed port"])
def test_unreachable_url_is_a_clear_error(
    where: str, weights_server: tuple[Path, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PHANTOSCOPE_MODELS", str(tmp_path))
    _, base_url = weights_server
    url = {
        "missing file": f"{base_url}/missing.pth",
        "closed port": f"http://127.0.0.1:{_closed_port()}/resnet50.pth",
    }[where]
    with pytest.raises(RuntimeError, match=re.escape(f"could not download weights from {url}")):
        ResNet50Encoder(weights=url).load()
    assert list(tmp_path.iterdir()) == []  # no half-written model left behind


def test_weights_default_to_env_then_torchvision(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PHANTOSCOPE_WEIGHTS", raising=False)
    assert ResNet50Encoder().weights == ResNet50Encoder.default_weights
    assert VGG16Encoder().weights.startswith("https://download.pytorch.org/models/vgg16-")
    monkeypatch.setenv("PHANTOSCOPE_WEIGHTS", "https://example.org/mine.pth")
    assert VGG16Encoder().weights == "https://example.org/mine.pth"
    assert VGG16Encoder(weights="https://example.org/other.pth").weights.endswith("other.pth")
