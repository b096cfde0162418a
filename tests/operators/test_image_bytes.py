"""Image files as bytes (`ExecuteRequest.images`, issue 20): our operator server announces it
in `Identity`, reads them as it reads base64 `datas`, and answers the same; items are named
`images[i]` after the urls and datas. Real gRPC servers on 127.0.0.1."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from inprocess import (
    HashingTextEncoder,
    MeanColourEncoder,
    OriginalTemplateEncoder,
    serve_in_process,
)
from phantoscope.operators import Box, Crop, Processor
from phantoscope.operators.legacy import LegacyOperator
from phantoscope.operators.proto import omnisearch_pb2 as pb
from phantoscope.operators.rpc_client import (
    OperatorCallError,
    OperatorClient,
    encoded_execute_request,
)
from photos import b64, jpeg, photo


class CornerProcessor(Processor):
    """One crop an image: its top-left quarter."""

    name = "corner"

    def run(self, images):
        return [[Crop(im.crop((0, 0, im.width // 2, im.height // 2)),
                      Box(0, 0, im.width // 2, im.height // 2))] for im in images]


@pytest.fixture(scope="module")
def files() -> list[bytes]:
    png = io.BytesIO()
    photo("coins").convert("RGB").save(png, format="PNG")
    return [jpeg(photo("chelsea")), png.getvalue(), jpeg(photo("rocket"))]


def client_of(server) -> OperatorClient:
    return OperatorClient(f"127.0.0.1:{server.port}")


def test_encoder_reads_bytes_as_it_reads_base64_and_says_so(files):
    with serve_in_process(MeanColourEncoder()) as server, client_of(server) as client:
        assert client.identity().image_bytes is True
        by_bytes = client.execute(images=files)
        by_base64 = client.execute(datas=[b64(f) for f in files])
        # Items run urls, then datas, then images: one of each form, in that order.
        mixed = client.execute(datas=[b64(files[0])], images=files[1:])
    expected = [np.asarray(Image.open(io.BytesIO(f)).convert("RGB"), np.float32).mean((0, 1))
                for f in files]
    np.testing.assert_allclose(by_bytes.vectors, expected, rtol=1e-5)
    np.testing.assert_array_equal(by_bytes.vectors, by_base64.vectors)
    np.testing.assert_array_equal(mixed.vectors, by_base64.vectors)


def test_processor_crops_the_same_from_bytes(files):
    with serve_in_process(CornerProcessor()) as server, client_of(server) as client:
        assert client.identity().image_bytes is True
        by_bytes = client.execute(images=files[:2])
        by_base64 = client.execute(datas=[b64(f) for f in files[:2]])
    assert [c.data for c in by_bytes.crops] == [c.data for c in by_base64.crops]
    assert [(c.box, c.source) for c in by_bytes.crops] == [(c.box, c.source)
                                                           for c in by_base64.crops]


def test_original_template_operator_gets_base64_of_the_bytes_sent(files):
    """Served by our server, an original-template operator takes bytes too: its run() sees
    the base64 text of the very file sent."""
    with serve_in_process(LegacyOperator(OriginalTemplateEncoder())) as server, \
            client_of(server) as client:
        assert client.identity().image_bytes is True
        vectors = client.execute(images=files).vectors
    assert vectors[:, 0].tolist() == [len(b64(f)) for f in files]


def test_bad_bytes_are_refused_naming_the_item(files):
    with serve_in_process(MeanColourEncoder()) as server, client_of(server) as client:
        with pytest.raises(OperatorCallError) as refused:
            client.execute(datas=[b64(files[0])], images=[files[1], b"not an image"])
        with pytest.raises(OperatorCallError) as empty:
            client.execute(images=[b""])
    assert refused.value.code == "INVALID_ARGUMENT"
    assert refused.value.details.startswith("images[1]: "), refused.value.details
    assert empty.value.code == "INVALID_ARGUMENT"
    assert empty.value.details.startswith("images[0]: "), empty.value.details


def test_text_encoder_announces_no_bytes_and_refuses_images(files):
    with serve_in_process(HashingTextEncoder()) as server, client_of(server) as client:
        assert client.identity().image_bytes is False
        with pytest.raises(OperatorCallError) as refused:
            client.execute(images=files[:1])
    assert refused.value.code == "INVALID_ARGUMENT"
    assert "encodes texts, not images" in refused.value.details


@pytest.mark.parametrize("sizes", [(), (0,), (1, 127, 128, 16_383, 16_384, 2_500_000)])
def test_an_encoded_request_reads_back_as_the_message_would(sizes):
    """`encoded_execute_request` writes the images in the wire format: the operator reads
    the same message as one built and serialized by protobuf, lengths on 1 to 4 bytes."""
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, size, dtype=np.uint8).tobytes() for size in sizes]
    rest = pb.ExecuteRequest(urls=["http://x/a.jpg"], datas=[b64(b"x")], thumbnails=True)
    encoded = encoded_execute_request(rest, images)
    built = pb.ExecuteRequest(urls=["http://x/a.jpg"], datas=[b64(b"x")], thumbnails=True,
                              images=images)
    assert pb.ExecuteRequest.FromString(encoded) == built
