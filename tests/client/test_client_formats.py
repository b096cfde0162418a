"""The server decodes 16-bit TIFFs, EXIF-rotated JPEGs and PNGs with alpha as they look.

Each file's vector (from a dry run of the pipeline, through the server's intake checks) must
match the vector of a plain 8-bit rendering of the same picture.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from image_files import exif_rotated, png, tiff16, with_alpha
from phantoscope.client import PhantoscopeClient
from photos import jpeg, photo


def vector(client: PhantoscopeClient, pipeline: str, data: bytes) -> np.ndarray:
    (step,) = client.pipelines.test(pipeline, data)
    (found,) = step.vectors
    array = np.asarray(found)
    return array / np.linalg.norm(array)


def grey(name: str) -> Image.Image:
    return photo(name).convert("L")


CASES = {
    "16-bit grey TIFF, little-endian": lambda: (tiff16(grey("camera")), png(grey("camera"))),
    "16-bit RGB TIFF": lambda: (tiff16(photo("astronaut")), png(photo("astronaut"))),
    "16-bit grey TIFF, big-endian": lambda: (
        tiff16(grey("camera"), ">"),
        png(grey("camera")),
    ),
    "EXIF-rotated JPEG": lambda: (exif_rotated(photo("coffee")), jpeg(photo("coffee"))),
    "PNG with alpha": lambda: with_alpha(photo("colorwheel")),
}


@pytest.mark.parametrize("case", list(CASES))
def test_decoded_as_it_looks(case, client, gallery):
    data, looks_like = CASES[case]()
    similarity = float(
        vector(client, gallery.pipeline, data) @ vector(client, gallery.pipeline, looks_like)
    )
    assert similarity > 0.98, f"{case}: cosine {similarity:.4f} with its 8-bit rendering"


def test_exif_rotation_is_applied(client, gallery):
    """Closer to the upright photo than to its pixels as stored (on their side)."""
    image = photo("coffee")
    rotated = vector(client, gallery.pipeline, exif_rotated(image))
    upright = vector(client, gallery.pipeline, jpeg(image))
    sideways = vector(client, gallery.pipeline, jpeg(image.transpose(Image.Transpose.ROTATE_90)))
    assert rotated @ upright > 0.98 and rotated @ upright > rotated @ sideways + 0.05
