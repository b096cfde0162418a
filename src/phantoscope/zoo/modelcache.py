"""The model cache: exported ONNX files, and the export subprocess that fills it.

Exporting needs torch, which the serving side must never import, so a missing model is made
by ``python -m phantoscope.modelbuild.export`` in a child process (see
:mod:`phantoscope.modelbuild.export`).
Static int8 copies of those models are made the same way, by ``python -m
phantoscope.modelbuild.quantize`` (which imports onnx and ``onnxruntime.quantization``).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

_STDERR_TAIL = 3000
_EXPORT_HINT = "exporting needs the 'export' extra: pip install 'phantoscope[export]'"

FEATURES = "features"
"""The output of every exported model: (N, D) pooled features, not yet L2-normalised."""
PROBABILITIES = "probabilities"
"""The second output of models exported with their ImageNet-1k classifier: (N, 1000) class
probabilities. Files cached before it existed lack it; encoders that read it make them again."""

INT8_TAG = "int8-cal2"
"""Names a static int8 model in the cache (``<fp32 stem>-int8-cal2.onnx``): bump the number
whenever :mod:`phantoscope.modelbuild.quantize` changes its calibration set or its recipe, so that
no cached file made the old way is served."""


def models_dir() -> Path:
    """The cache folder: ``$PHANTOSCOPE_MODELS``, else ``~/.cache/phantoscope/models``."""
    configured = os.environ.get("PHANTOSCOPE_MODELS")
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "phantoscope" / "models"


def is_url(weights: str) -> bool:
    """Whether ``weights`` names an http(s) URL rather than a local file."""
    return weights.startswith(("http://", "https://"))


def chosen_weights(weights: str | None, default: str) -> str:
    """The weights an encoder uses: ``weights``, else ``$PHANTOSCOPE_WEIGHTS``, else ``default``;
    a local path made absolute (the export runs in another process)."""
    chosen = weights or os.environ.get("PHANTOSCOPE_WEIGHTS") or default
    return chosen if is_url(chosen) else str(Path(chosen).expanduser().resolve())


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
    return export_model(export_name, path, weights)


def export_model(export_name: str, path: Path, weights: str | None = None) -> Path:
    """Export ``export_name`` to ``path`` (replacing the file there atomically); return it."""
    command = [
        sys.executable, "-m", "phantoscope.modelbuild.export", export_name, "--out", str(path)
    ]
    if weights is not None:
        command += ["--weights", weights]
    _make(command, [path], f"exporting {export_name} to ONNX", _EXPORT_HINT)
    return path


def export_clip(weights: str, image: Path, text: Path, vocabulary: Path) -> None:
    """Export both towers of CLIP ViT-B/32 with ``weights`` to ``image`` and ``text``, and copy
    its BPE merges file to ``vocabulary`` (each replaced atomically)."""
    command = [
        sys.executable, "-m", "phantoscope.modelbuild.clip", "--weights", weights,
        "--image-out", str(image), "--text-out", str(text), "--vocabulary-out", str(vocabulary),
    ]
    _make(command, [image, text, vocabulary], "exporting CLIP ViT-B/32 to ONNX", _EXPORT_HINT)


def quantized_path(fp32_path: Path) -> Path:
    """Where the static int8 copy of the cached fp32 model ``fp32_path`` lives."""
    return fp32_path.with_name(f"{fp32_path.stem}-{INT8_TAG}.onnx")


def ensure_quantized(fp32_path: Path, path: Path, encoder: str) -> Path:
    """Return ``path``, first quantising ``fp32_path`` to it (static int8) if it does not exist.

    ``encoder`` is the ``module:Class`` path of the encoder whose preprocessing the
    calibration images go through. Quantising runs in a child process, like exporting.
    """
    if path.is_file():
        return path
    return quantize_model(fp32_path, path, encoder)


def quantize_model(fp32_path: Path, path: Path, encoder: str) -> Path:
    """Quantise ``fp32_path`` to ``path`` (replacing the file there atomically); return it."""
    command = [
        sys.executable, "-m", "phantoscope.modelbuild.quantize", str(fp32_path),
        "--out", str(path), "--encoder", encoder,
    ]
    hint = (
        "quantising needs onnx (the 'export' extra) and scikit-image, whose sample photos "
        "calibrate it: pip install 'phantoscope[export]' scikit-image"
    )
    _make(command, [path], f"quantising {fp32_path.name} to int8", hint)
    return path


def _make(command: list[str], paths: list[Path], doing: str, missing_module_hint: str) -> None:
    """Run ``command`` (which writes ``paths`` atomically); raise with its stderr if it fails."""
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0 or not all(path.is_file() for path in paths):
        tail = result.stderr.strip()[-_STDERR_TAIL:]
        hint = f"\n({missing_module_hint})" if "No module named" in tail else ""
        raise RuntimeError(f"{doing} failed (exit code {result.returncode}):\n{tail}{hint}")
