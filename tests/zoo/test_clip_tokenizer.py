"""Our CLIP tokenizer against OpenCLIP's (the reference) on a few hundred varied texts.

The merges file is the one OpenCLIP ships, which the export copies into the model cache.
"""

from __future__ import annotations

import argparse
import html
import json
import pathlib
import textwrap

import numpy as np
import open_clip
import pytest
from open_clip.tokenizer import default_bpe

from phantoscope.zoo.clip_tokenizer import CONTEXT_LENGTH, ClipTokenizer

SENTENCES = [
    "a photo of a cat sitting on a windowsill",
    "An astronaut in a white spacesuit holding the American flag on the Moon.",
    "Two cups of coffee on a wooden table, seen from above.",
    "A rocket lifting off from launch pad 39A at 9:32 a.m. on July 16, 1969!",
    "black-and-white portrait of a man with a camera on a tripod",
    "A red motorcycle parked in front of a garage door; its mirrors folded.",
    "What's the dog doing? It's chasing the ball... isn't it?",
    "They'll be here soon, I'd say; we've waited, you're late, I'm tired.",
    "Price: $1,299.99 (was €1.499,00) — save 13%!",
    "e-mail me at someone@example.com or visit https://example.org/path?q=1&r=2",
    "C++, C#, F# and .NET; x86_64 vs. arm64; Python 3.11.4",
    "Le chat dort sur le canapé près de la fenêtre.",
    "Der Hund läuft über die Straße, während es regnet.",
    "El niño comió una piña en la playa de Cádiz.",
    "Ông già ngồi câu cá bên bờ sông.",
    "東京タワーの夜景がとてもきれいです。",
    "一只猫坐在窗台上晒太阳。",
    "Собака бежит по снегу в парке.",
    "قطة تجلس على الأريكة",
    "एक कुत्ता समुद्र तट पर दौड़ रहा है",
    "Ελληνικά γράμματα: αβγδε ΑΒΓΔΕ",
    "dog 🐶 on the beach at sunset 🌅🏖️!!!",
    "family photo 👨‍👩‍👧‍👦 at the park, thumbs up 👍🏽",
    "Tom &amp; Jerry &lt;3 &quot;cartoons&quot; &#39;forever&#39; &eacute;t&eacute;",
    "&amp;amp; double-escaped &amp;lt;tag&amp;gt;",
    "   leading and trailing spaces   ",
    "tabs\tand\nnewlines\r\nand   runs    of     spaces",
    "ALL CAPS SHOUTING ABOUT A YELLOW SUBMARINE",
    "MiXeD cAsE tExT wItH nUmBeRs 12345 AND 0.5",
    "mojibake: cafÃ© and naÃ¯ve rÃ©sumÃ©",
    "\ufb01ne ligatures and \uff26\uff35\uff2c\uff2c\uff37\uff29\uff24\uff34\uff28 letters",
    "\u201ccurly quotes\u201d and \u2018single ones\u2019 and «guillemets»",
    "zero\u200bwidth\u200bspaces and a soft\u00adhyphen",
    "<start_of_text> special tokens in text <end_of_text>",
    "x",
    "",
    "1",
    "!!!???...",
    "3.14159265358979323846264338327950288419716939937510",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "pneumonoultramicroscopicsilicovolcanoconiosis",
    "the quick brown fox jumps over the lazy dog " * 12,
    "word " * 200,
    "🙂" * 100,
    "a" * 1000,
    "#hashtag @mention ~tilde ^caret |pipe \\backslash /slash",
    "snake_case_identifier and kebab-case-identifier and CamelCaseIdentifier",
    "Café, crème brûlée, jalapeño, smörgåsbord, Øresund, Łódź, İstanbul",
    "ǅungla Ǆ ǆ and the Kelvin sign K and the Ångström sign Å",
    "a satellite image of a river delta with green fields",
    "close-up of a microscope slide stained pink and purple",
    "the Hubble deep field: thousands of galaxies, each a smudge of light",
    "a coin collection laid out on a black cloth",
    "a brick wall with moss growing between the bricks",
    "a page of printed text, slightly skewed",
]


def _docstring_lines() -> list[str]:
    """Real English with code in it: the standard library's own module docs."""
    modules = [json, html, argparse, textwrap, pathlib]
    return [line for module in modules for line in (module.__doc__ or "").splitlines()]


def _texts() -> list[str]:
    variants = [
        *SENTENCES,
        *(sentence.upper() for sentence in SENTENCES),
        *(html.escape(sentence) for sentence in SENTENCES),
        *("  \t".join(sentence.split(" ")) + " \n" for sentence in SENTENCES),
        *(f"{sentence} 🎉 #{index}" for index, sentence in enumerate(SENTENCES)),
    ]
    return [*variants, *_docstring_lines()]


@pytest.fixture(scope="module")
def ours() -> ClipTokenizer:
    return ClipTokenizer(default_bpe())


def test_tokens_equal_openclip_on_varied_texts(ours: ClipTokenizer) -> None:
    texts = _texts()
    assert len(texts) >= 300
    reference = open_clip.get_tokenizer("ViT-B-32")
    expected = reference(texts).numpy()
    actual = ours(texts)
    assert actual.dtype == np.int64
    assert actual.shape == expected.shape == (len(texts), CONTEXT_LENGTH)
    differing = [texts[row] for row in np.flatnonzero((actual != expected).any(axis=1))]
    assert differing == []
    # The set exercises what it claims to: cut texts, special tokens, many ids.
    assert (actual[:, -1] == ours.end_id).sum() >= 4
    assert len(np.unique(actual)) > 800


def test_framing_padding_and_cutting(ours: ClipTokenizer) -> None:
    assert ours.vocabulary_size == 49408
    assert (ours.start_id, ours.end_id) == (49406, 49407)
    short = ours(["a dog", ""])
    assert short[0, 0] == ours.start_id
    ends = [int(np.flatnonzero(row == ours.end_id)[0]) for row in short]
    assert ends == [3, 1]
    assert not short[0, 4:].any() and not short[1, 2:].any()

    long = ours(["dog " * 100])[0]
    assert long[0] == ours.start_id and long[-1] == ours.end_id
    assert (long[1:-1] == long[1]).all()  # 75 'dog' ids, the rest cut


def test_a_file_that_is_not_the_merges_is_refused(tmp_path: pathlib.Path) -> None:
    import gzip

    wrong = tmp_path / "merges.txt.gz"
    with gzip.open(wrong, "wt", encoding="utf-8") as f:
        f.write("#version: 0.2\na b\n")
    with pytest.raises(ValueError, match="not CLIP's BPE merges file"):
        ClipTokenizer(wrong)
