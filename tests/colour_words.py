"""Operators of one tiny embedding space, for tests that must know every score by hand.

Images and words land in the same 3-d space of colours: an image is its mean colour
(red, green, blue) made unit-length; a text is the sum of the directions its colour words
name (``red`` (1, 0, 0), ``purple`` (1, 0, 1), ...; other words name none) made unit-length.
Both are compared by inner product. :func:`image_vector` and :func:`text_vector` compute the
same vectors in the test, so expected rankings and scores come from numpy, not from the
server.

Also: a labelled variant of the image encoder (every image a tabby cat, n02123045, so that
"cat" finds it through labels), text encoders that do not fit the space (5-d; L2), and a
processor that cuts an image into its left and right halves.
"""

from __future__ import annotations

import io
import re

import numpy as np
from PIL import Image

from phantoscope.operators import Box, Crop, Encoder, Encoding, Processor, TextEncoder
from phantoscope.operators.base import l2_normalize
from phantoscope.operators.labels import IMAGENET_1K

DIMENSION = 3
WORDS = {
    "red": (1, 0, 0), "green": (0, 1, 0), "blue": (0, 0, 1), "yellow": (1, 1, 0),
    "purple": (1, 0, 1), "cyan": (0, 1, 1),
}
TABBY = "n02123045"


def unit(vector: np.ndarray) -> np.ndarray:
    vector = np.asarray(vector, dtype=np.float64)
    norm = np.linalg.norm(vector)
    return vector / norm if norm else vector


def image_vector(rgb: tuple[int, int, int]) -> np.ndarray:
    """The vector of a solid image of colour ``rgb``."""
    return unit(np.array(rgb, dtype=np.float64))


def text_vector(text: str) -> np.ndarray:
    """The vector of ``text``: its colour words' directions summed, made unit-length."""
    total = np.zeros(DIMENSION)
    for word in re.findall(r"[a-z]+", text.lower()):
        total += WORDS.get(word, (0, 0, 0))
    return unit(total)


def solid(rgb: tuple[int, int, int], size: tuple[int, int] = (32, 32)) -> Image.Image:
    return Image.new("RGB", size, rgb)


def halves(left: tuple[int, int, int], right: tuple[int, int, int]) -> Image.Image:
    """An image whose left half is ``left`` and right half ``right`` (32 by 32 pixels each)."""
    image = solid(left, (64, 32))
    image.paste(solid(right, (32, 32)), (32, 0))
    return image


def png(image: Image.Image) -> bytes:
    """PNG bytes: lossless, so that a mean colour is exactly the colour drawn."""
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _mean_colours(images: list[Image.Image]) -> np.ndarray:
    return np.stack([np.asarray(image.convert("RGB"), dtype=np.float64).reshape(-1, 3).mean(0)
                     for image in images])


class ColourEncoder(Encoder):
    name = "colour-encoder"
    dimension = DIMENSION
    metric_type = "IP"

    def run(self, images: list[Image.Image]) -> np.ndarray:
        return l2_normalize(_mean_colours(images))


class LabelledColourEncoder(ColourEncoder):
    """As :class:`ColourEncoder`, and every image labelled a tabby cat."""

    name = "labelled-colour-encoder"
    labels = IMAGENET_1K

    def encode(self, images: list[Image.Image]) -> Encoding:
        return Encoding(self.run(images), [[(TABBY, 0.9)] for _ in images])


class ColourWordsEncoder(TextEncoder):
    name = "colour-words"
    dimension = DIMENSION
    metric_type = "IP"

    def run(self, texts: list[str]) -> np.ndarray:
        return np.stack([text_vector(text) for text in texts]).astype(np.float32)


class WideWordsEncoder(ColourWordsEncoder):
    """A text encoder of another space: 5-d."""

    name = "wide-words"
    dimension = 5

    def run(self, texts: list[str]) -> np.ndarray:
        return np.zeros((len(texts), self.dimension), dtype=np.float32)


class L2WordsEncoder(ColourWordsEncoder):
    """Words in 3-d, but compared by L2 distance."""

    name = "l2-words"
    metric_type = "L2"


class HalvesProcessor(Processor):
    """Two crops of each image: its left half, then its right half."""

    name = "halves"

    def run(self, images: list[Image.Image]) -> list[list[Crop]]:
        crops = []
        for image in images:
            width, height = image.size
            crops.append([
                Crop(image.crop((0, 0, width // 2, height)), Box(0, 0, width // 2, height, 1.0)),
                Crop(image.crop((width // 2, 0, width, height)),
                     Box(width // 2, 0, width, height, 1.0)),
            ])
        return crops
