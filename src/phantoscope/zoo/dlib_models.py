"""Where dlib's face models live: the data files of the ``face_recognition_models`` package.

The package's own ``__init__`` imports ``pkg_resources``, which recent setuptools no longer
ships, so its folder is found without importing it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

FACE_DESCRIPTOR = "dlib_face_recognition_resnet_model_v1.dat"
FIVE_POINT_LANDMARKS = "shape_predictor_5_face_landmarks.dat"
CNN_FACE_DETECTOR = "mmod_human_face_detector.dat"


def model_path(filename: str) -> Path:
    """The path of one of dlib's model files; a clear error if the package is missing."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("dlib's face models are not installed: pip install 'phantoscope[face]'")
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / filename
    if not path.is_file():
        raise RuntimeError(f"dlib model file missing: {path}")
    return path
