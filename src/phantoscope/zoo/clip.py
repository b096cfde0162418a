"""CLIP ViT-B/32 (OpenCLIP's architecture): an image encoder and a text encoder whose 512-d
vectors share one space, so that a pipeline pairing them can be searched by words.

Both serve ONNX files that :mod:`phantoscope.modelbuild.clip` exports from one checkpoint —
``weights=`` or ``$PHANTOSCOPE_WEIGHTS`` (a local file or an http(s) URL), else OpenAI's
``ViT-B-32.pt`` (:data:`OPENAI_WEIGHTS`); LAION's ``laion2b_s34b_b79k``
(:data:`LAION_WEIGHTS`) is the usual other choice. One export writes both towers and CLIP's
BPE merges file into the model cache, so whichever operator loads first makes the other's
files too. Vectors are L2-normalised: their inner product is the cosine of CLIP's embeddings.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import onnxruntime as ort
from PIL import Image

from phantoscope.operators.base import TextEncoder, l2_normalize
from phantoscope.zoo.clip_tokenizer import ClipTokenizer
from phantoscope.zoo.modelcache import (
    FEATURES,
    chosen_weights,
    export_clip,
    models_dir,
    weights_tag,
)
from phantoscope.zoo.onnx_encoder import OnnxImageEncoder
from phantoscope.zoo.runtime import create_session

OPENAI_WEIGHTS = (
    "https://openaipublic.azureedge.net/clip/models/"
    "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af/ViT-B-32.pt"
)
"""OpenAI's ViT-B/32 (a TorchScript archive, fp16), as OpenCLIP's pretrained table names it."""
LAION_WEIGHTS = (
    "https://huggingface.co/laion/CLIP-ViT-B-32-laion2B-s34B-b79K/resolve/main/"
    "open_clip_pytorch_model.bin"
)
"""OpenCLIP's ViT-B/32 trained on LAION-2B (``laion2b_s34b_b79k``), an OpenCLIP state dict."""

EXPORT_NAME = "clip-vit-b-32"
VOCABULARY_FILE = "clip-bpe-simple-vocab-16e6.txt.gz"
"""CLIP's BPE merges, the same for every ViT-B/32 checkpoint: one copy in the cache."""
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGE_INPUT = "images"
TEXT_INPUT = "tokens"


@dataclass(frozen=True)
class ClipFiles:
    """What one export writes into the model cache for one checkpoint."""

    image: Path
    text: Path
    vocabulary: Path

    @classmethod
    def for_weights(cls, weights: str) -> ClipFiles:
        folder, tag = models_dir(), weights_tag(weights)
        return cls(
            image=folder / f"{EXPORT_NAME}-image-{tag}.onnx",
            text=folder / f"{EXPORT_NAME}-text-{tag}.onnx",
            vocabulary=folder / VOCABULARY_FILE,
        )

    def ensure(self, weights: str) -> ClipFiles:
        """These files, first exported from ``weights`` if any is missing."""
        if not all(path.is_file() for path in (self.image, self.text, self.vocabulary)):
            export_clip(weights, self.image, self.text, self.vocabulary)
        return self


class ClipCheckpoint:
    """The weights a CLIP operator serves: ``weights``, else ``$PHANTOSCOPE_WEIGHTS``, else
    OpenAI's; their files are named (the weights hashed) once, when first asked for."""

    def __init__(self, weights: str | None = None) -> None:
        self.weights = chosen_weights(weights, OPENAI_WEIGHTS)
        self._files: ClipFiles | None = None

    def files(self) -> ClipFiles:
        if self._files is None:
            self._files = ClipFiles.for_weights(self.weights)
        return self._files

    def exported(self) -> ClipFiles:
        """The files, first exported if any is missing."""
        return self.files().ensure(self.weights)


class ClipImageEncoder(OnnxImageEncoder):
    """CLIP ViT-B/32's image embedding (``encode_image``), L2-normalised: 512-d.

    Preprocessing is CLIP's: the shorter side resized to 224 (bicubic), the centre 224 x 224
    cropped, normalised with CLIP's mean and standard deviation.
    """

    name = "clip-vit-b-32-image-encoder"
    dimension = 512
    export_name: ClassVar[str] = EXPORT_NAME
    resize_size: ClassVar[int] = 224
    min_image_side: ClassVar[int | None] = 224
    mean: ClassVar[tuple[float, float, float]] = CLIP_MEAN
    std: ClassVar[tuple[float, float, float]] = CLIP_STD

    def __init__(self, *, weights: str | None = None) -> None:
        super().__init__()
        self.checkpoint = ClipCheckpoint(weights)

    def model_path(self) -> Path:
        return self.checkpoint.files().image

    def load(self) -> None:
        self._serve(create_session(self.checkpoint.exported().image))

    def _resize_crop(self, image: Image.Image) -> Image.Image:
        # As torchvision's Resize(224) and CenterCrop(224) do it, so that the pixels are the
        # ones CLIP's own preprocessing gives: the longer side truncated, the offsets rounded
        # half to even.
        width, height = image.size
        size = self.image_size
        if width <= height:
            resized = (size, int(size * height / width))
        else:
            resized = (int(size * width / height), size)
        image = image.resize(resized, Image.Resampling.BICUBIC)
        left = round((resized[0] - size) / 2)
        top = round((resized[1] - size) / 2)
        return image.crop((left, top, left + size, top + size))


class ClipTextEncoder(TextEncoder):
    """CLIP ViT-B/32's text embedding (``encode_text``), L2-normalised: 512-d, in the space of
    :class:`ClipImageEncoder` with the same weights. Texts longer than CLIP's 77 tokens are
    cut (the end token kept), as CLIP's tokenizer does."""

    name = "clip-vit-b-32-text-encoder"
    dimension = 512
    metric_type = "IP"

    def __init__(self, *, weights: str | None = None) -> None:
        self.checkpoint = ClipCheckpoint(weights)
        self._session: ort.InferenceSession | None = None
        self._tokenizer: ClipTokenizer | None = None

    def model_path(self) -> Path:
        return self.checkpoint.files().text

    def load(self) -> None:
        files = self.checkpoint.exported()
        self._tokenizer = ClipTokenizer(files.vocabulary)
        self._session = create_session(files.text)

    def tokenize(self, texts: list[str]) -> np.ndarray:
        """The (N, 77) int64 token ids the text tower takes."""
        if self._tokenizer is None:
            self.load()
        assert self._tokenizer is not None
        return self._tokenizer(texts)

    def run(self, texts: list[str]) -> np.ndarray:  # type: ignore[override]
        """Encode a batch of texts: an (N, 512) float32 array of unit-length rows."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        tokens = self.tokenize(texts)
        assert self._session is not None
        features = self._session.run([FEATURES], {TEXT_INPUT: tokens})[0]
        return l2_normalize(features)
