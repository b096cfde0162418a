"""Export CLIP ViT-B/32 (OpenCLIP's architecture) to ONNX: both towers, and the BPE merges file
the text encoder's tokenizer reads.

Usage: ``python -m phantoscope.modelbuild.clip --weights FILE_OR_URL --image-out PATH
--text-out PATH --vocabulary-out PATH``.

The serving side runs this in a subprocess (:meth:`phantoscope.zoo.clip.ClipFiles.ensure`).
The image tower takes ``images`` (N, 3, 224, 224) float32 and the text tower ``tokens``
(N, 77) int64; each gives ``features`` (N, 512): ``encode_image`` / ``encode_text``, not yet
L2-normalised. The batch axis is dynamic. A URL is downloaded once for both towers.

Two checkpoint formats load:

- OpenAI's (``ViT-B-32.pt``): a TorchScript archive of fp16 tensors, read with
  ``torch.jit.load`` as OpenAI's and OpenCLIP's loaders read it (which runs the archive's
  TorchScript: give weights from a source you trust). It is built with QuickGELU, the
  activation OpenAI trained with.
- A state dict as OpenCLIP saves it (LAION's ``open_clip_pytorch_model.bin``), or a training
  checkpoint holding one under ``state_dict``: read with ``torch.load(weights_only=True)`` and
  built as OpenCLIP's ``ViT-B-32`` (GELU), the activation of its LAION and DataComp weights.
  OpenAI's weights re-saved as a plain state dict would need QuickGELU, which nothing in the
  file says: give OpenAI's own archive instead.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from phantoscope.modelbuild.export import (
    ExportError,
    load_exactly,
    local_file,
    read_state,
    write_onnx,
)
from phantoscope.zoo.clip import IMAGE_INPUT, TEXT_INPUT
from phantoscope.zoo.clip_tokenizer import CONTEXT_LENGTH
from phantoscope.zoo.modelcache import FEATURES

ARCHITECTURE = "ViT-B-32"
IMAGE_SIZE = 224
# Attributes OpenAI's archives keep among their tensors; no weights.
_OPENAI_ATTRIBUTES = ("input_resolution", "context_length", "vocab_size")


@dataclass
class Checkpoint:
    state: dict[str, torch.Tensor]
    quick_gelu: bool


def is_torchscript(path: Path) -> bool:
    """Whether ``path`` is a TorchScript archive (a zip with a ``constants.pkl`` record)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.rsplit("/", 1)[-1] == "constants.pkl" for name in archive.namelist())


def read_checkpoint(path: Path, weights: str) -> Checkpoint:
    """The float32 tensors of the checkpoint at ``path`` (read from ``weights``), and whether
    the model they fit uses QuickGELU (OpenAI's archives)."""
    if is_torchscript(path):
        try:
            archive = torch.jit.load(str(path), map_location="cpu")
        except Exception as exc:
            raise ExportError(
                f"could not read the TorchScript archive {weights} ({type(exc).__name__}: {exc})"
            ) from exc
        state: object = {
            key: value for key, value in archive.state_dict().items()
            if key not in _OPENAI_ATTRIBUTES
        }
        quick_gelu = True
    else:
        state = read_state(path, weights)
        if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
            state = state["state_dict"]
        quick_gelu = False
    if not isinstance(state, dict) or not state:
        raise ExportError(f"weights {weights} hold no CLIP state dict")
    if all(key.startswith("module.") for key in state):  # saved from DistributedDataParallel
        state = {key.removeprefix("module."): value for key, value in state.items()}
    tensors = {
        key: value.float() if torch.is_floating_point(value) else value
        for key, value in state.items()
    }
    return Checkpoint(tensors, quick_gelu)


def build_clip(checkpoint: Checkpoint, weights: str) -> nn.Module:
    """OpenCLIP's ViT-B/32 holding the checkpoint's tensors, in eval mode."""
    import open_clip

    model = open_clip.create_model(ARCHITECTURE, force_quick_gelu=checkpoint.quick_gelu)
    load_exactly(model, checkpoint.state, weights, f"CLIP {ARCHITECTURE}")
    return model.eval()


class ImageTower(nn.Module):
    def __init__(self, clip: nn.Module) -> None:
        super().__init__()
        self.clip = clip

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.clip.encode_image(images)


class TextTower(nn.Module):
    def __init__(self, clip: nn.Module) -> None:
        super().__init__()
        self.clip = clip

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.clip.encode_text(tokens)


def copy_vocabulary(out: Path) -> None:
    """Copy OpenCLIP's BPE merges file to ``out`` atomically."""
    from open_clip.tokenizer import default_bpe

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        shutil.copyfile(default_bpe(), tmp)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def export(weights: str, image_out: Path, text_out: Path, vocabulary_out: Path) -> None:
    """Export both towers of the CLIP in ``weights`` and copy the merges file."""
    with local_file(weights) as path:
        checkpoint = read_checkpoint(path, weights)
    clip = build_clip(checkpoint, weights)
    # MultiheadAttention's fused inference path is an operator ONNX lacks.
    torch.backends.mha.set_fastpath_enabled(False)
    copy_vocabulary(vocabulary_out)
    images = torch.zeros(1, 3, IMAGE_SIZE, IMAGE_SIZE)
    write_onnx(ImageTower(clip), IMAGE_INPUT, images, [FEATURES], image_out)
    tokens = torch.zeros(1, CONTEXT_LENGTH, dtype=torch.int64)
    write_onnx(TextTower(clip), TEXT_INPUT, tokens, [FEATURES], text_out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m phantoscope.modelbuild.clip", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--weights", required=True, help="a checkpoint: local file or URL")
    parser.add_argument("--image-out", type=Path, required=True, help="the image tower's .onnx")
    parser.add_argument("--text-out", type=Path, required=True, help="the text tower's .onnx")
    parser.add_argument("--vocabulary-out", type=Path, required=True, help="the merges file")
    args = parser.parse_args(argv)
    try:
        with torch.no_grad():
            export(args.weights, args.image_out, args.text_out, args.vocabulary_out)
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
