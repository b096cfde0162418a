"""The dlib face operators (face-detector, face-encoder) with their real models.

Faces available offline: the astronaut (Eileen Collins) in ``skimage.data.astronaut``, the
cameraman in ``skimage.data.camera`` (turned half away; a fixed box, since HOG misses him) and
the 100 faces of ``skimage.data.lfw_subset`` (25 x 25 grey crops of other people from LFW).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageOps
from skimage import data

from phantoscope.operators.base import Box
from phantoscope.zoo.face_detector import FaceDetector
from phantoscope.zoo.face_encoder import FaceEncoder

CAMERAMAN_FACE = (165, 95, 275, 215)


def rgb(array: np.ndarray) -> Image.Image:
    return Image.fromarray(array).convert("RGB")


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    operator = FaceDetector()
    operator.load()
    return operator


@pytest.fixture(scope="module")
def encoder() -> FaceEncoder:
    operator = FaceEncoder()
    operator.load()
    return operator


@pytest.fixture(scope="module")
def astronaut() -> Image.Image:
    return rgb(data.astronaut())


@pytest.fixture(scope="module")
def astronaut_box(detector: FaceDetector, astronaut: Image.Image) -> Box:
    (crops,) = detector.run([astronaut])
    assert len(crops) == 1
    return crops[0].box


@pytest.fixture(scope="module")
def other_faces() -> list[Image.Image]:
    """101 faces of people other than the astronaut."""
    lfw = data.lfw_subset()[:100]  # the first 100 are faces, the rest are not
    faces = [
        rgb((face * 255).astype(np.uint8)).resize((100, 100), Image.Resampling.BICUBIC)
        for face in lfw
    ]
    return [*faces, rgb(data.camera()).crop(CAMERAMAN_FACE)]


@pytest.fixture(scope="module")
def other_vectors(encoder: FaceEncoder, other_faces: list[Image.Image]) -> np.ndarray:
    return encoder.run(other_faces)


def edited(image: Image.Image, box: Box) -> Image.Image:
    """The face in box, turned 20 degrees, framed differently, shrunk, recoloured, mirrored."""
    cx, cy = (box.left + box.right) / 2, (box.top + box.bottom) / 2
    turned = image.rotate(20, center=(cx, cy), resample=Image.Resampling.BICUBIC)
    half = 0.6 * (box.right - box.left)
    face = turned.crop(
        (round(cx - half + 8), round(cy - half - 4), round(cx + half + 8), round(cy + half - 4))
    )
    face = face.resize(
        (round(face.width * 0.6), round(face.height * 0.6)), Image.Resampling.LANCZOS
    )
    face = ImageEnhance.Color(face).enhance(0.4)
    face = ImageEnhance.Brightness(face).enhance(1.3)
    red, green, blue = face.split()
    face = Image.merge(
        "RGB",
        (
            red.point(lambda v: min(255, round(v * 1.15))),
            green,
            blue.point(lambda v: round(v * 0.85)),
        ),
    )
    return ImageOps.mirror(face)


# --- face-detector ---------------------------------------------------------------------------


def test_detector_finds_the_astronaut_face(detector: FaceDetector, astronaut: Image.Image):
    (crops,) = detector.run([astronaut])
    assert len(crops) == 1
    crop, box = crops[0].image, crops[0].box
    width, height = astronaut.size
    assert 0 <= box.left < box.right <= width and 0 <= box.top < box.bottom <= height
    # Her face: centre in the upper half, left of the middle; 10-40 % of the image wide.
    assert (box.top + box.bottom) / 2 < height / 2
    assert (box.left + box.right) / 2 < width / 2
    assert 0.1 * width < box.right - box.left < 0.4 * width
    assert box.score > 0
    # The box describes the crop returned.
    assert crop.size == (box.right - box.left, box.bottom - box.top)
    expected = astronaut.crop((box.left, box.top, box.right, box.bottom))
    assert np.array_equal(np.asarray(crop), np.asarray(expected))


@pytest.mark.parametrize("photo", ["coffee", "chelsea", "rocket"])
def test_detector_finds_no_face_where_there_is_none(detector: FaceDetector, photo: str):
    (crops,) = detector.run([rgb(getattr(data, photo)())])
    assert crops == []


def test_detector_clips_boxes_to_the_image(
    detector: FaceDetector, astronaut: Image.Image, astronaut_box: Box
):
    # Cut the photo just beside her face, so that the margin would leave it.
    cut = astronaut.crop((astronaut_box.left + 10, astronaut_box.top + 10, 512, 512))
    (crops,) = detector.run([cut])
    assert len(crops) == 1
    box = crops[0].box
    assert box.left == 0 and box.top == 0
    assert crops[0].image.size == (box.right - box.left, box.bottom - box.top)


def test_detector_batch_and_grey_input(detector: FaceDetector, astronaut: Image.Image):
    grey = astronaut.convert("L")
    results = detector.run([astronaut, rgb(data.coffee()), grey])
    assert [len(crops) for crops in results] == [1, 0, 1]
    assert results[2][0].image.mode == "RGB"
    assert detector.run([]) == []


def test_cnn_detector(astronaut: Image.Image, astronaut_box: Box):
    cnn = FaceDetector(model="cnn")
    cnn.load()
    face, cat, cameraman = cnn.run([astronaut, rgb(data.chelsea()), rgb(data.camera())])
    assert cat == []
    assert len(face) == 1 and len(cameraman) == 1
    a, b = face[0].box, astronaut_box
    overlap = max(0, min(a.right, b.right) - max(a.left, b.left)) * max(
        0, min(a.bottom, b.bottom) - max(a.top, b.top)
    )
    union = (a.right - a.left) * (a.bottom - a.top) + (b.right - b.left) * (b.bottom - b.top)
    assert overlap / (union - overlap) > 0.5
    left, top, right, bottom = CAMERAMAN_FACE
    box = cameraman[0].box
    assert left <= (box.left + box.right) / 2 <= right
    assert top <= (box.top + box.bottom) / 2 <= bottom


def test_detector_rejects_bad_settings():
    with pytest.raises(ValueError):
        FaceDetector(model="mtcnn")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        FaceDetector(margin=-0.1)


# --- face-encoder ----------------------------------------------------------------------------


def test_encoder_matches_an_edited_copy_over_other_faces(
    detector: FaceDetector,
    encoder: FaceEncoder,
    astronaut: Image.Image,
    astronaut_box: Box,
    other_vectors: np.ndarray,
):
    (crops,) = detector.run([astronaut])
    face, copy = encoder.run([crops[0].image, edited(astronaut, astronaut_box)])
    same = float(face @ copy)
    assert same > (face @ other_vectors.T).max()
    assert same > (copy @ other_vectors.T).max()


def test_encoder_finds_the_face_in_a_whole_photo(
    detector: FaceDetector,
    encoder: FaceEncoder,
    astronaut: Image.Image,
    other_vectors: np.ndarray,
):
    (crops,) = detector.run([astronaut])
    face, whole = encoder.run([crops[0].image, astronaut])
    assert float(face @ whole) > (face @ other_vectors.T).max()


def test_encoder_vectors_are_unit_length_and_batch_independent(
    encoder: FaceEncoder, astronaut: Image.Image, other_faces: list[Image.Image]
):
    images = [
        astronaut,
        rgb(data.coffee()),  # no face: the whole image stands in for one
        other_faces[0],
        astronaut.convert("L").crop((150, 50, 300, 200)),
        Image.new("RGB", (7, 3), (90, 60, 30)),
    ]
    batch = encoder.run(images)
    assert batch.shape == (len(images), 128) and batch.dtype == np.float32
    assert np.all(np.isfinite(batch))
    np.testing.assert_allclose(np.linalg.norm(batch, axis=1), 1, atol=1e-5)
    one_by_one = np.concatenate([encoder.run([image]) for image in images])
    np.testing.assert_allclose(batch, one_by_one, atol=1e-5)
    assert encoder.run([]).shape == (0, 128)


def test_operator_identity():
    assert (FaceDetector.name, FaceDetector.type, FaceDetector.min_image_side) == (
        "face-detector",
        "processor",
        None,
    )
    assert (FaceEncoder.name, FaceEncoder.type, FaceEncoder.dimension, FaceEncoder.metric_type) == (
        "face-encoder",
        "encoder",
        128,
        "IP",
    )


def test_face_operators_do_not_import_torch():
    code = textwrap.dedent(
        """
        import sys
        from skimage import data
        from PIL import Image
        from phantoscope.zoo.face_detector import FaceDetector
        from phantoscope.zoo.face_encoder import FaceEncoder

        (crops,) = FaceDetector().run([Image.fromarray(data.astronaut())])
        assert len(crops) == 1
        assert FaceEncoder().run([crops[0].image]).shape == (1, 128)
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "torchvision"))
        assert not loaded, loaded
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
