"""Mixed queries: words and an image searched as one vector, as rclip combines them.

The text's vector and the image's are each made unit-length, weighted (``[w_text, w_image]``,
equal by default), summed, and the sum made unit-length again; a pipeline with processors
gives one image vector per region, and each is combined with the text's. ``[1, 0]`` is the
text alone, ``[0, 1]`` the image alone, as unit vectors.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import numpy as np

from phantoscope.engine.errors import BadRequestError
from phantoscope.engine.pipeline import PipelineVector

__all__ = ["EQUAL", "Weights", "check_weights", "mixed_queries", "weights_from_text"]

Weights = tuple[float, float]  # (w_text, w_image)
EQUAL: Weights = (1.0, 1.0)
TINY = 1e-12  # a norm below this is taken for zero
WHAT = ('give weights as [w_text, w_image]: two numbers >= 0, not both 0 (e.g. [0.3, 0.7]; '
        'in a form "0.3,0.7")')


def invalid_weights(why: str) -> BadRequestError:
    return BadRequestError("INVALID_WEIGHTS", f"weights {why}: {WHAT}")


def _shown(value: object) -> str:
    return json.dumps(value, default=str)[:60]


def check_weights(weights: object) -> Weights:
    """``[w_text, w_image]`` as given in a request, checked."""
    if not isinstance(weights, list | tuple) or len(weights) != 2:
        raise invalid_weights(f"is {_shown(weights)}, not a list of two")
    if not all(isinstance(w, int | float) and not isinstance(w, bool) for w in weights):
        raise invalid_weights("must be numbers")
    try:
        text, image = float(weights[0]), float(weights[1])
    except OverflowError:  # an integer too large for a float
        text = image = math.inf
    if not (math.isfinite(text) and math.isfinite(image)) or text < 0 or image < 0:
        raise invalid_weights(f"{_shown(weights)} are not both finite and >= 0")
    if text == 0 and image == 0:
        raise invalid_weights("are both 0")
    return text, image


def weights_from_text(text: object) -> Weights:
    """A form's ``weights``: ``0.3,0.7``, or JSON ``[0.3, 0.7]``, checked."""
    if not isinstance(text, str):
        raise invalid_weights("must be text in a form")
    try:
        return check_weights(json.loads(text))
    except ValueError:
        pass  # not JSON: numbers separated by a comma
    try:
        parts = [float(part) for part in text.split(",")]
    except ValueError:
        raise invalid_weights(f"{text[:60]!r} are not numbers") from None
    return check_weights(parts)


def _unit(vector: np.ndarray) -> np.ndarray:
    vector = np.asarray(vector, dtype=np.float64)
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > TINY else vector


def mixed_queries(text: np.ndarray, images: Sequence[PipelineVector], weights: Weights
                  ) -> list[PipelineVector]:
    """Each image query vector combined with the text's: unit(w_t·unit(t) + w_i·unit(i)), with
    the image query's lineage (its region of the query image)."""
    w_text, w_image = weights
    unit_text = _unit(text)
    queries = []
    for image in images:
        combined = w_text * unit_text + w_image * _unit(image.vector)
        norm = float(np.linalg.norm(combined))
        if norm <= TINY:
            raise invalid_weights(f"{[w_text, w_image]} make a query of zero length (the text "
                                  "and the image cancel out, or the one weighted has no vector)")
        queries.append(PipelineVector((combined / norm).astype(np.float32), image.source,
                                      image.box))
    return queries
