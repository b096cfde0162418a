"""Thumbnails from the encoder (`ExecuteRequest.thumbnails`, issue 20): our operator server
announces them for image encoders and, when asked, answers each image's 64 x 64 grey
thumbnail made from the very image it decoded for the model; operators that cannot give them
say so and answer none. Real gRPC servers on 127.0.0.1."""

from __future__ import annotations

import io
from typing import ClassVar

import numpy as np
import pytest
from PIL import Image

from inprocess import (
    HashingTextEncoder,
    MeanColourEncoder,
    OriginalTemplateEncoder,
    serve_in_process,
)
from phantoscope.imaging.codec import decode_image
from phantoscope.imaging.phash import THUMBNAIL, thumbnail
from phantoscope.operators import Box, Crop, Processor
from phantoscope.operators.legacy import LegacyOperator
from phantoscope.operators.rpc_client import OperatorCallError, OperatorClient
from phantoscope.zoo.onnx_encoder import OnnxImageEncoder
from photos import b64, jpeg, photo

MAX_PIXELS = 10**8


class DraftedMeanColourEncoder(MeanColourEncoder):
    """Mean colour of JPEGs decoded at a reduced scale, down to 224 pixels a side."""

    min_image_side: ClassVar[int | None] = 224


class CornerProcessor(Processor):
    name = "corner"

    def run(self, images):
        return [[Crop(im.crop((0, 0, 8, 8)), Box(0, 0, 8, 8))] for im in images]


@pytest.fixture(scope="module")
def files() -> list[bytes]:
    """A 1024 x 1024 JPEG (decoded at a quarter scale at 224, an eighth at 128), a PNG, a JPEG
    turned by EXIF, and a small JPEG."""
    large = photo("astronaut").resize((1024, 1024))
    png = io.BytesIO()
    photo("coins").convert("RGB").save(png, format="PNG")
    turned = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6
    photo("chelsea").save(turned, format="JPEG", exif=exif.tobytes())
    return [jpeg(large), png.getvalue(), turned.getvalue(), jpeg(photo("rocket"))]


def grey(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype=np.uint8).reshape(THUMBNAIL, THUMBNAIL)


def test_encoder_answers_the_thumbnail_of_the_image_it_decoded(files):
    operator = DraftedMeanColourEncoder()
    with serve_in_process(operator) as server, \
            OperatorClient(f"127.0.0.1:{server.port}") as client:
        assert client.identity().thumbnails is True
        asked = client.execute(images=files, thumbnails=True)
        by_base64 = client.execute(datas=[b64(f) for f in files], thumbnails=True)
        plain = client.execute(images=files)
    decoded = [decode_image(f, min_side=224, max_pixels=MAX_PIXELS) for f in files]
    assert len(asked.thumbnails) == len(files)
    for made, image in zip(asked.thumbnails, decoded, strict=True):
        np.testing.assert_array_equal(grey(made), thumbnail(image))
    assert by_base64.thumbnails == asked.thumbnails
    assert plain.thumbnails == []  # not asked: the reply is the original protocol's
    # the vectors are the model's, whether thumbnails were asked or not
    np.testing.assert_array_equal(asked.vectors, plain.vectors)
    np.testing.assert_allclose(
        asked.vectors, [np.asarray(image, np.float32).mean((0, 1)) for image in decoded],
        rtol=1e-5)
    # the large JPEG was decoded at a quarter scale, not at the API's eighth
    assert decoded[0].size == (256, 256)
    assert decode_image(files[0], min_side=2 * THUMBNAIL).size == (128, 128)


def test_onnx_encoders_prepare_the_image_they_make_the_thumbnail_of(files):
    """The built-in encoders resize in prepare_image: prepare and prepare_with_thumbnail give
    the model the same pixels."""

    class Resizing(OnnxImageEncoder):
        name, dimension = "resizing", 1

    operator = Resizing()
    assert operator.gives_thumbnails()
    for data in files:
        prepared, thumb = operator.prepare_with_thumbnail(data, max_pixels=MAX_PIXELS)
        np.testing.assert_array_equal(prepared, operator.prepare(data, max_pixels=MAX_PIXELS))
        assert prepared.shape == (224, 224, 3)
        np.testing.assert_array_equal(
            thumb, thumbnail(decode_image(data, min_side=256, max_pixels=MAX_PIXELS)))


@pytest.mark.parametrize("operator", [
    CornerProcessor(), LegacyOperator(OriginalTemplateEncoder())], ids=["processor", "legacy"])
def test_operators_without_thumbnails_say_so_and_answer_none(files, operator):
    with serve_in_process(operator) as server, \
            OperatorClient(f"127.0.0.1:{server.port}") as client:
        assert client.identity().thumbnails is False
        result = client.execute(images=files[:2], thumbnails=True)
    assert result.thumbnails == []
    assert len(result.vectors) or result.crops


def test_text_encoder_gives_no_thumbnails():
    with serve_in_process(HashingTextEncoder()) as server, \
            OperatorClient(f"127.0.0.1:{server.port}") as client:
        assert client.identity().thumbnails is False


def test_bad_item_is_refused_naming_it_when_thumbnails_are_asked(files):
    with serve_in_process(DraftedMeanColourEncoder()) as server, \
            OperatorClient(f"127.0.0.1:{server.port}") as client, \
            pytest.raises(OperatorCallError) as refused:
        client.execute(datas=[b64(files[0])], images=[b"not an image"], thumbnails=True)
    assert refused.value.code == "INVALID_ARGUMENT"
    assert refused.value.details.startswith("images[0]: "), refused.value.details
