"""The model cache: exported ONNX files, and the export subprocess that fills it.

Exporting needs torch, which the serving side must never import, so a missing model is made
by ``python -m phantoscope.zoo.export`` in a child process (see :mod:`phantoscope.zoo.export`).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

_STDERR_TAIL = 3000


def models_dir() -> Path:
    """The cache folder: ``$PHANTOSCOPE_MODELS``, else ``~/.cache/phantoscope/models``."""
    configured = os.environ.get("PHANTOSCOPE_MODELS")
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "phantoscope" / "models"


def is_url(weights: str) -> bool:
    """Whether ``weights`` names an http(s) URL rather than a local file."""
    return weights.startswith(("http://", "https://"))


def weights_tag(weights: str) -> str:
    """A short hash that tells weights apart: of the file's contents, or of the URL string."""
    digest = hashlib.sha256()
    if is_url(weights):
        digest.update(weights.encode())
    else:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"weights file not found: {path}")
        with path.open("rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()[:12]


def ensure_model(export_name: str, path: Path, weights: str | None = None) -> Path:
    """Return ``path``, first exporting ``export_name`` to it if it does not exist yet.

    The export writes a temporary file and renames it, so a reader never sees half a model
    and concurrent exports of the same model are harmless.
    """
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "phantoscope.zoo.export", export_name, "--out", str(path)]
    if weights is not None:
        command += ["--weights", weights]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0 or not path.is_file():
        tail = result.stderr.strip()[-_STDERR_TAIL:]
        hint = ""
        if "No module named" in tail:
            hint = "\n(exporting needs the 'export' extra: pip install 'phantoscope[export]')"
        raise RuntimeError(
            f"exporting {export_name} to ONNX failed (exit code {result.returncode}):\n{tail}{hint}"
        )
    return path
