"""Serving operators written for the original Phantoscope template, unchanged.

The original ``CustomOperator`` has ``run(images, urls)`` over lists of base64 strings and
URLs, returning vectors (encoders) or base64 crops (processors), and describes itself with
properties. This adapter gives such a class our batching, health and error handling: the
server validates and fetches every item itself, so the wrapped code only ever sees base64
data of images that decode.
"""

from __future__ import annotations

import base64
import inspect
from typing import Any

import numpy as np

from phantoscope.imaging.codec import b64_to_bytes, decode_image
from phantoscope.operators.base import Crop, Operator

# The properties the original template leaves to fill in (each raises NotImplementedError).
PROPERTIES = ("name", "type", "input", "output", "dimension", "metric_type")


class LegacyTemplateError(ValueError):
    """The wrapped class is the template as it came: properties still to fill in."""


def _unfilled(legacy: Any) -> list[str]:
    missing = []
    for prop in PROPERTIES:
        try:
            getattr(legacy, prop)
        except NotImplementedError:
            missing.append(prop)
    return missing


def _where(legacy: Any) -> str:
    try:
        return inspect.getsourcefile(type(legacy)) or "custom_operator.py"
    except TypeError:
        return "custom_operator.py"


class LegacyOperator(Operator):
    """An :class:`Operator` around an instance of an original-template ``CustomOperator``."""

    def __init__(self, legacy: Any) -> None:
        missing = _unfilled(legacy)
        if missing:
            cls = type(legacy).__name__
            names = ", ".join(missing)
            raise LegacyTemplateError(
                f"fill in the {'properties' if len(missing) > 1 else 'property'} {names} of "
                f"{cls} in {_where(legacy)} (as the template left them, they raise "
                "NotImplementedError)"
            )
        self.legacy = legacy
        self.name = str(legacy.name)
        self.type = str(legacy.type)  # type: ignore[assignment]
        if self.type not in ("encoder", "processor"):
            raise LegacyTemplateError(
                f"{type(legacy).__name__}.type in {_where(legacy)} must be 'encoder' or "
                f"'processor', not {self.type!r}"
            )
        self.input = str(legacy.input)
        self.output = str(legacy.output)
        self.dimension = int(legacy.dimension or 0)
        self.metric_type = str(legacy.metric_type)

    def prepare(self, data: bytes, *, max_pixels: int) -> str:
        decode_image(data, max_pixels=max_pixels)  # refuse what the wrapped code would choke on
        return base64.b64encode(data).decode("ascii")

    def run(self, images: list[str]) -> list:
        if self.type == "encoder":
            return self._encode(images)
        return [self._crops(self.legacy.run([image], [])) for image in images]

    def _encode(self, images: list[str]) -> list[np.ndarray]:
        vectors = list(self.legacy.run(images, []))
        if len(vectors) != len(images):
            # The original swallowed per-image failures; find out which image it was.
            vectors = []
            for index, image in enumerate(images):
                produced = list(self.legacy.run([image], []))
                if len(produced) != 1:
                    raise RuntimeError(
                        f"run() gave {len(produced)} vectors for batch item {index}"
                    )
                vectors.extend(produced)
        return [np.asarray(vector, dtype=np.float32).reshape(-1) for vector in vectors]

    @staticmethod
    def _crops(result: Any) -> list[Crop]:
        """Crops for one image, from either a flat list or the original's list per image."""
        result = list(result)
        if result and isinstance(result[0], list | tuple):
            result = [crop for per_image in result for crop in per_image]
        crops = []
        for crop in result:
            text = crop.decode("ascii") if isinstance(crop, bytes) else str(crop)
            crops.append(Crop(image=decode_image(b64_to_bytes(text))))
        return crops
