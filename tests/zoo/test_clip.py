"""CLIP ViT-B/32's two operators against OpenCLIP (torch), with test-made weights.

No CLIP weights can be had here, so the session makes two checkpoints of OpenCLIP's ViT-B/32
with seeded random weights, one in each format users bring: an OpenCLIP state dict (as LAION's
``open_clip_pytorch_model.bin``), given as a file, and a TorchScript archive of fp16 tensors
laid out as OpenAI's ``ViT-B-32.pt``, served from a loopback HTTP server and given as its URL.
Each is exported once, through the operators' own path (the export child process), into a
temporary model cache.

What "equal" means: the operators' unit vectors equal OpenCLIP's L2-normalised
``encode_image``/``encode_text`` within 1e-4 (absolute, per component), and the ONNX towers'
raw features equal OpenCLIP's unnormalised ones within 1e-5 of their largest component
(the raw features of these weights have norms near 20: not tiny).
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
import open_clip
import pytest
import torch
from open_clip.transformer import QuickGELU
from PIL import Image

from api_server import ApiServer
from helpers import folder_server
from inprocess import serve_in_process
from phantoscope.cli.operator_loader import load_operator
from phantoscope.config import OperatorSettings
from phantoscope.operators.rpc_client import OperatorClient
from phantoscope.operators.server import OperatorServer
from phantoscope.zoo.clip import (
    IMAGE_INPUT,
    TEXT_INPUT,
    VOCABULARY_FILE,
    ClipImageEncoder,
    ClipTextEncoder,
)
from phantoscope.zoo.modelcache import FEATURES
from photos import b64, jpeg, photo

# Colour and grey, square, tall and wide.
PHOTO_NAMES = ["coffee", "chelsea", "rocket", "camera", "page"]
SENTENCES = [
    "a photo of a cat",
    "An astronaut in a white spacesuit, holding a flag.",
    "a rocket lifting off from the launch pad at 9:32 a.m.",
    "Le chat dort sur le canapé près de la fenêtre.",
    "dog 🐶 on the beach at sunset!!!",
    "Tom &amp; Jerry",
    "black-and-white portrait of a man with a camera on a tripod",
    "the quick brown fox jumps over the lazy dog " * 10,  # cut at 77 tokens
]
VECTOR_TOLERANCE = 1e-4
FEATURE_TOLERANCE = 1e-5  # times the largest |component| of the reference features
OPENAI_ATTRIBUTES = {"input_resolution": 224, "context_length": 77, "vocab_size": 49408}


def clip_preprocess() -> object:
    """OpenCLIP's own inference transform for ViT-B/32's weights (resize, crop, normalise)."""
    return open_clip.image_transform(
        224, is_train=False, mean=open_clip.OPENAI_DATASET_MEAN, std=open_clip.OPENAI_DATASET_STD
    )


@dataclass
class Expected:
    """A checkpoint, how to name it to the operators, and what OpenCLIP computes with it."""

    weights: str
    path: Path  # the checkpoint file (served at ``weights`` when that is a URL)
    image_features: np.ndarray  # encode_image of OpenCLIP's preprocessed photos, unnormalised
    text_features: np.ndarray  # encode_text of OpenCLIP's tokens, unnormalised
    tokens: np.ndarray
    gelu_text_features: np.ndarray | None = None  # OpenAI's: the same tensors run with GELU

    def __post_init__(self) -> None:
        """The operators, loaded: the first load exports both towers."""
        self.image = ClipImageEncoder(weights=self.weights)
        self.text = ClipTextEncoder(weights=self.weights)
        self.image.load()
        self.text.load()


def l2(features: np.ndarray) -> np.ndarray:
    return features / np.linalg.norm(features, axis=1, keepdims=True)


def seeded_clip(seed: int, *, quick_gelu: bool) -> torch.nn.Module:
    """OpenCLIP's ViT-B/32 with its random initialisation, every tensor then moved a little
    (biases and LayerNorm parameters start at 0 or 1, which would hide a lost one)."""
    torch.manual_seed(seed)
    model = open_clip.create_model("ViT-B-32", force_quick_gelu=quick_gelu)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.02)
    return model.eval()


def reference(model: torch.nn.Module, photos: list[Image.Image]) -> tuple[np.ndarray, ...]:
    preprocess = clip_preprocess()
    tokens = open_clip.get_tokenizer("ViT-B-32")(SENTENCES)
    with torch.no_grad():
        images = torch.stack([preprocess(image) for image in photos])
        return (
            model.encode_image(images).numpy(),
            model.encode_text(tokens).numpy(),
            tokens.numpy(),
        )


class OpenAILayout(torch.nn.Module):
    """A CLIP's tensors under the names OpenAI's archives use (OpenCLIP kept them), with the
    three attributes OpenAI's archives also keep as tensors."""

    def __init__(self, clip: torch.nn.Module) -> None:
        super().__init__()
        for name, child in clip.named_children():
            setattr(self, name, child)
        for name, parameter in clip.named_parameters(recurse=False):
            setattr(self, name, parameter)
        for name, value in OPENAI_ATTRIBUTES.items():
            self.register_buffer(name, torch.tensor(value))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Only the tensors matter: tracing this keeps every one of them in the archive.
        return x * self.logit_scale


@pytest.fixture(scope="session")
def clip_photos() -> list[Image.Image]:
    return [photo(name) for name in PHOTO_NAMES]


@pytest.fixture(scope="session")
def clip_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """A folder of checkpoints and the loopback URL serving it, with a temporary model cache
    for the whole session."""
    folder = tmp_path_factory.mktemp("clip-weights")
    models = tmp_path_factory.mktemp("clip-models")
    with folder_server(folder) as url, pytest.MonkeyPatch.context() as patch:
        patch.setenv("PHANTOSCOPE_MODELS", str(models))
        patch.delenv("PHANTOSCOPE_WEIGHTS", raising=False)
        yield folder, url
    for path in [*folder.iterdir(), *models.iterdir()]:  # ~2 GB: not for pytest's kept folders
        path.unlink()


@pytest.fixture(scope="session")
def openclip_checkpoint(
    clip_folder: tuple[Path, str], clip_photos: list[Image.Image]
) -> Expected:
    """An OpenCLIP state dict (GELU), given by its path, exported once."""
    folder, _ = clip_folder
    model = seeded_clip(0, quick_gelu=False)
    path = folder / "open_clip_pytorch_model.bin"
    torch.save(model.state_dict(), path)
    return Expected(str(path), path, *reference(model, clip_photos))


@pytest.fixture(scope="session")
def openai_checkpoint(
    clip_folder: tuple[Path, str], clip_photos: list[Image.Image]
) -> Expected:
    """A TorchScript archive of fp16 tensors in OpenAI's layout, given by its URL, exported
    once; the reference is OpenCLIP's own loader of OpenAI archives (QuickGELU)."""
    folder, base_url = clip_folder
    layout = OpenAILayout(seeded_clip(1, quick_gelu=True)).half()
    path = folder / "ViT-B-32.pt"
    with torch.no_grad():
        torch.jit.trace(layout, torch.ones(1, dtype=torch.half)).save(str(path))
    del layout
    model = open_clip.load_openai_model(str(path), precision="fp32", device="cpu").eval()
    expected = reference(model, clip_photos)
    for block in model.transformer.resblocks:
        assert isinstance(block.mlp.gelu, QuickGELU)
        block.mlp.gelu = torch.nn.GELU()
    with torch.no_grad():
        gelu = model.encode_text(torch.from_numpy(expected[2])).numpy()
    return Expected(f"{base_url}/ViT-B-32.pt", path, *expected, gelu_text_features=gelu)


@pytest.fixture(scope="session", params=["openclip", "openai"])
def checkpoint(request: pytest.FixtureRequest) -> Expected:
    return request.getfixturevalue(f"{request.param}_checkpoint")


def features_close(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.shape == expected.shape
    scale = np.abs(expected).max()
    assert scale > 0.1  # meaningful features, not near zero
    assert np.abs(actual - expected).max() <= FEATURE_TOLERANCE * scale


def test_image_tower_equals_openclip(checkpoint: Expected, clip_photos: list[Image.Image]) -> None:
    encoder = checkpoint.image
    # CLIP's preprocessing, in numpy and Pillow: the same pixels as OpenCLIP's transform.
    preprocess = clip_preprocess()
    batch = encoder.preprocess(clip_photos)
    expected_batch = torch.stack([preprocess(image) for image in clip_photos]).numpy()
    assert np.abs(batch - expected_batch).max() < 1e-5

    session = ort.InferenceSession(str(encoder.model_path()), providers=["CPUExecutionProvider"])
    features = session.run([FEATURES], {IMAGE_INPUT: batch})[0]
    features_close(features, checkpoint.image_features)

    vectors = encoder.run(clip_photos)
    assert vectors.shape == (len(clip_photos), 512) and vectors.dtype == np.float32
    assert np.abs(vectors - l2(checkpoint.image_features)).max() < VECTOR_TOLERANCE


def test_text_tower_equals_openclip(checkpoint: Expected) -> None:
    encoder = checkpoint.text
    tokens = encoder.tokenize(SENTENCES)
    np.testing.assert_array_equal(tokens, checkpoint.tokens)

    session = ort.InferenceSession(str(encoder.model_path()), providers=["CPUExecutionProvider"])
    features = session.run([FEATURES], {TEXT_INPUT: tokens})[0]
    features_close(features, checkpoint.text_features)

    vectors = encoder.run(SENTENCES)
    assert vectors.shape == (len(SENTENCES), 512) and vectors.dtype == np.float32
    assert np.abs(vectors - l2(checkpoint.text_features)).max() < VECTOR_TOLERANCE
    # One at a time or in a batch: the same vectors (padding does not leak into a text).
    single = np.concatenate([encoder.run([sentence]) for sentence in SENTENCES[:2]])
    assert np.abs(single - vectors[:2]).max() < 1e-5


def test_openai_archives_run_quick_gelu(openai_checkpoint: Expected) -> None:
    """The activation matters beyond the tolerance: the same tensors under GELU give other
    vectors, so the checks above tell OpenAI's archive was built as OpenAI's model."""
    assert openai_checkpoint.gelu_text_features is not None
    gelu, quick = l2(openai_checkpoint.gelu_text_features), l2(openai_checkpoint.text_features)
    assert np.abs(gelu - quick).max() > 10 * VECTOR_TOLERANCE


def test_each_checkpoint_has_its_own_files(
    openclip_checkpoint: Expected, openai_checkpoint: Expected
) -> None:
    by_file = openclip_checkpoint.image.checkpoint.files()
    by_url = openai_checkpoint.text.checkpoint.files()
    assert by_file == openclip_checkpoint.text.checkpoint.files()
    assert by_file.image != by_url.image and by_file.text != by_url.text
    # The merges file is the same for every ViT-B/32: one copy, beside the towers.
    assert by_file.vocabulary == by_url.vocabulary
    assert by_file.vocabulary.name == VOCABULARY_FILE
    assert by_file.vocabulary.parent == by_file.text.parent
    for path in (by_file.image, by_file.text, by_url.image, by_url.text, by_url.vocabulary):
        assert path.is_file()


def test_builtins_serve_from_jpeg_bytes(openclip_checkpoint: Expected) -> None:
    """What `phantoscope operator serve NAME --weights FILE` builds, used as the server uses
    it: identity, load, prepare (decoding) then run."""
    image_operator = load_operator(
        "clip-vit-b-32-image-encoder", weights=openclip_checkpoint.weights
    )
    text_operator = load_operator(
        "clip-vit-b-32-text-encoder", weights=openclip_checkpoint.weights
    )
    assert isinstance(image_operator, ClipImageEncoder)
    assert isinstance(text_operator, ClipTextEncoder)
    for operator, kind in ((image_operator, "image"), (text_operator, "text")):
        assert (operator.type, operator.input, operator.output) == ("encoder", kind, "vector")
        assert (operator.dimension, operator.metric_type) == (512, "IP")
        operator.load()

    names = PHOTO_NAMES[:3]
    prepared = [image_operator.prepare(jpeg(photo(name)), max_pixels=50_000_000) for name in names]
    vectors = np.asarray(image_operator.encode(prepared).vectors)
    direct = l2(openclip_checkpoint.image_features[[PHOTO_NAMES.index(n) for n in names]])
    # JPEG and decoding change the pixels a little: each photo still nearest its own vector.
    similarity = vectors @ direct.T
    assert (similarity.argmax(axis=1) == np.arange(len(names))).all()
    assert similarity.diagonal().min() > 0.97

    texts = text_operator.run(["a photo of a cat", "a photo of a cat", "a rocket"])
    np.testing.assert_allclose(np.linalg.norm(texts, axis=1), 1.0, atol=1e-5)
    assert np.abs(texts[0] - texts[1]).max() < 1e-6
    assert text_operator.run([]).shape == (0, 512)
    with pytest.raises(TypeError, match="encodes texts"):
        text_operator.prepare(jpeg(photo("chelsea")), max_pixels=50_000_000)


def test_serving_never_imports_torch(openclip_checkpoint: Expected) -> None:
    script = textwrap.dedent(
        f"""
        import sys
        from PIL import Image
        from phantoscope.zoo.clip import ClipImageEncoder, ClipTextEncoder
        weights = {openclip_checkpoint.weights!r}
        assert ClipImageEncoder(weights=weights).run([Image.new("RGB", (300, 200))]).shape \\
            == (1, 512)
        assert ClipTextEncoder(weights=weights).run(["a red square"]).shape == (1, 512)
        heavy = {{"torch", "torchvision", "open_clip", "onnx"}}
        print(sorted(m for m in sys.modules if m.split(".")[0] in heavy))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.fixture
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    models = tmp_path / "models"
    monkeypatch.setenv("PHANTOSCOPE_MODELS", str(models))
    return models


def test_weights_of_another_model_are_refused(tmp_path: Path, empty_cache: Path) -> None:
    other = tmp_path / "other.pth"
    torch.save(torch.nn.Linear(4, 2).state_dict(), other)
    with pytest.raises(RuntimeError, match="do not fit CLIP ViT-B-32: 302 missing"):
        ClipTextEncoder(weights=str(other)).load()
    assert not any(empty_cache.iterdir())  # nothing half-made left in the cache


def test_a_file_that_is_no_checkpoint_is_refused(tmp_path: Path, empty_cache: Path) -> None:
    garbage = tmp_path / "ViT-B-32.pt"
    garbage.write_bytes(b"not a checkpoint" * 100)
    with pytest.raises(RuntimeError, match="could not read weights"):
        ClipImageEncoder(weights=str(garbage)).load()
    assert not any(empty_cache.iterdir())


def test_text_encoder_served_over_grpc(openclip_checkpoint: Expected) -> None:
    """`operator serve clip-vit-b-32-text-encoder --weights FILE` as a real gRPC server: its
    identity says text, and Execute's texts come back as the in-process vectors."""
    operator = load_operator("clip-vit-b-32-text-encoder", weights=openclip_checkpoint.weights)
    settings = OperatorSettings(endpoint="127.0.0.1:0")
    with OperatorServer(operator, settings, host="127.0.0.1", port=0) as served:
        assert served.servicer.wait_loaded(60)
        with OperatorClient(f"127.0.0.1:{served.port}", timeout_s=60) as client:
            identity = client.identity()
            assert (identity.name, identity.type, identity.input) == (
                "clip-vit-b-32-text-encoder", "encoder", "text"
            )
            assert (identity.dimension, identity.metric_type) == (512, "IP")
            vectors = client.execute_texts(SENTENCES).vectors
    np.testing.assert_allclose(vectors, openclip_checkpoint.text.run(SENTENCES), atol=1e-6)


def test_text_search_end_to_end_on_a_real_server(
    openclip_checkpoint: Expected, tmp_path: Path
) -> None:
    """The two built-ins served over gRPC, registered with a real API server (Milvus Lite,
    SQLite, folder), paired in one pipeline; photos uploaded as JPEG; a text query and a
    mixed text + image query rank the photos as the operators' own vectors say they should."""
    image_operator, text_operator = openclip_checkpoint.image, openclip_checkpoint.text
    photos = {name: jpeg(photo(name)) for name in PHOTO_NAMES}
    with contextlib.ExitStack() as stack:
        image_port = stack.enter_context(serve_in_process(image_operator)).port
        text_port = stack.enter_context(serve_in_process(text_operator)).port
        server = ApiServer(tmp_path, {}).start()
        stack.callback(server.stop)
        api = server.client
        for name, port in (("clip-image", image_port), ("clip-text", text_port)):
            answer = api.post("/v1/operator/regist",
                              json={"endpoint": f"127.0.0.1:{port}", "name": name})
            assert answer.status_code == 200, answer.text
        answer = api.post("/v1/pipeline/clip", json={"encoder": "clip-image",
                                                      "text_encoder": "clip-text"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["_text_encoder"] == "clip-text"
        answer = api.post("/v1/application/photos", json={
            "fields": {"photo": {"type": "object", "pipeline": "clip"}}})
        assert answer.status_code == 200, answer.text
        for name, data in photos.items():
            answer = api.post("/v1/application/photos/upload", json={
                "fields": {"photo": {"data": b64(data)}}, "name": name})
            assert answer.status_code == 200, answer.text

        stored = {name: np.asarray(image_operator.encode(
            [image_operator.prepare(data, max_pixels=50_000_000)]).vectors)[0]
            for name, data in photos.items()}
        query_text = "a photo of a cat"
        text_vector = text_operator.run([query_text])[0]
        chelsea = stored["chelsea"]
        mixed = l2((0.5 * text_vector + 0.5 * chelsea)[None])[0]
        for body, query in (
            ({"text": query_text, "topk": 3}, text_vector),
            ({"text": query_text, "image": {"data": b64(photos["chelsea"])},
              "weights": [0.5, 0.5], "topk": 3}, mixed),
        ):
            answer = api.post("/v1/application/photos/search", json=body)
            assert answer.status_code == 200, answer.text
            result = answer.json()
            assert result["matched_by"] == "text_encoder"
            expected = {name: float(query @ vector) for name, vector in stored.items()}
            hits = [(hit["name"], hit["score"]) for hit in result["hits"]]
            assert len(hits) == 3
            for name, score in hits:
                assert score == pytest.approx(expected[name], abs=1e-4)
            assert [score for _, score in hits] == sorted(
                (score for _, score in hits), reverse=True)
            third = sorted(expected.values(), reverse=True)[2]
            assert all(expected[name] >= third - 1e-4 for name, _ in hits)
            missed = [name for name, score in expected.items()
                      if score > third + 1e-4 and name not in dict(hits)]
            assert not missed
