"""CLIP's text tokenizer in plain Python (no torch): texts → (N, 77) token ids.

It tokenizes as OpenAI's CLIP and OpenCLIP's ``SimpleTokenizer`` do for ViT-B/32's text
tower: the text is repaired (ftfy), HTML entities unescaped, whitespace collapsed and
lower-cased; a regular expression splits it into words, numbers one digit at a time and runs of
punctuation; each piece's UTF-8 bytes are spelled in 256 printable symbols and merged by
byte-level BPE (the merges file, ``bpe_simple_vocab_16e6.txt.gz``, that the export copies into
the model cache); ``<start_of_text>`` and ``<end_of_text>`` frame the ids, padded with zeros to
77, and a longer text is cut so that it still ends with ``<end_of_text>``.
"""

from __future__ import annotations

import gzip
import html
from functools import lru_cache
from itertools import pairwise
from pathlib import Path

import ftfy
import numpy as np
import regex

CONTEXT_LENGTH = 77
START = "<start_of_text>"
END = "<end_of_text>"
MERGES_USED = 49152 - 256 - 2
"""How many merges (after the file's header line) the vocabulary of 49,408 ids takes: 256 byte
symbols, the same 256 closing a word, one id per merge, and the two special tokens."""

_WORD_END = "</w>"
_PIECES = regex.compile(
    rf"{START}|{END}|'s|'t|'re|'ve|'m|'ll|'d|[\p{{L}}]+|[\p{{N}}]|[^\s\p{{L}}\p{{N}}]+",
    regex.IGNORECASE,
)


def byte_symbols() -> list[str]:
    """The symbol that spells each byte value: the byte's own character where it is printable
    Latin-1 (33-126, 161-172, 174-255), else one of the characters from U+0100 on, in order."""
    printable = {*range(33, 127), *range(161, 173), *range(174, 256)}
    spare = iter(range(256, 512))
    return [chr(value) if value in printable else chr(next(spare)) for value in range(256)]


def clean(text: str) -> str:
    """Repair the text (ftfy), unescape HTML entities (twice, for double-escaped ones), collapse
    whitespace and lower-case it."""
    text = html.unescape(html.unescape(ftfy.fix_text(text)))
    return " ".join(text.split()).lower()


class ClipTokenizer:
    """Byte-level BPE over the merges file at ``merges_path`` (gzip, one merge a line)."""

    def __init__(self, merges_path: str | Path, context_length: int = CONTEXT_LENGTH) -> None:
        with gzip.open(merges_path, "rt", encoding="utf-8") as f:
            lines = f.read().split("\n")[1 : 1 + MERGES_USED]
        merges = [tuple(line.split()) for line in lines]
        if len(merges) != MERGES_USED or any(len(pair) != 2 for pair in merges):
            raise ValueError(f"{merges_path} is not CLIP's BPE merges file")
        self._symbols = byte_symbols()
        singles = sorted(self._symbols, key=ord)
        vocabulary = [
            *singles, *(symbol + _WORD_END for symbol in singles),
            *("".join(pair) for pair in merges), START, END,
        ]
        self._ids = {token: index for index, token in enumerate(vocabulary)}
        self._ranks = {pair: rank for rank, pair in enumerate(merges)}
        self.start_id = self._ids[START]
        self.end_id = self._ids[END]
        self.context_length = context_length
        self._piece_ids = lru_cache(maxsize=1 << 16)(self._uncached_piece_ids)

    @property
    def vocabulary_size(self) -> int:
        return len(self._ids)

    def encode(self, text: str) -> list[int]:
        """The ids of ``text``, without the start and end tokens."""
        ids: list[int] = []
        for piece in _PIECES.findall(clean(text)):
            ids.extend(self._piece_ids(piece))
        return ids

    def __call__(self, texts: list[str]) -> np.ndarray:
        """An (N, context_length) int64 array: start, ids, end, zeros; a text too long for
        the context is cut and its last id replaced by the end token."""
        tokens = np.zeros((len(texts), self.context_length), dtype=np.int64)
        for row, text in enumerate(texts):
            ids = [self.start_id, *self.encode(text), self.end_id][: self.context_length]
            ids[-1] = self.end_id
            tokens[row, : len(ids)] = ids
        return tokens

    def _uncached_piece_ids(self, piece: str) -> tuple[int, ...]:
        if piece in (START, END):
            return (self._ids[piece],)
        spelled = [self._symbols[value] for value in piece.encode("utf-8")]
        spelled[-1] += _WORD_END
        return tuple(self._ids[symbol] for symbol in self._merged(spelled))

    def _merged(self, symbols: list[str]) -> list[str]:
        """Apply the merges, best ranked first, until no adjacent pair has one."""
        while len(symbols) > 1:
            ranked = [
                (self._ranks[pair], pair)
                for pair in pairwise(symbols)
                if pair in self._ranks
            ]
            if not ranked:
                break
            _, (left, right) = min(ranked)
            merged: list[str] = []
            index = 0
            while index < len(symbols):
                if (
                    index + 1 < len(symbols)
                    and symbols[index] == left
                    and symbols[index + 1] == right
                ):
                    merged.append(left + right)
                    index += 2
                else:
                    merged.append(symbols[index])
                    index += 1
            symbols = merged
        return symbols
