#!/usr/bin/env python3
"""Derive ``src/phantoscope/assets/label_words.json`` from WordNet 3.0 (run once by a developer).

Reads Debian's ``wordnet-base`` files (``/usr/share/wordnet``: ``data.noun`` and ``noun.exc``)
and the 1,000 ImageNet-1k class ids (``src/phantoscope/assets/imagenet_wnids.txt``, WordNet
3.0 noun synset offsets). Writes what :mod:`phantoscope.engine.label_words` needs, so that
neither WordNet nor a download is needed at run time:

- ``classes``: the class ids in the classifier's order;
- ``synsets``: for every class synset and every synset above one (its hypernyms, ``@`` and
  ``@i``, up to ``entity``), its lemmas as WordNet spells them (``golden_retriever``);
- ``hypernyms``: for each of those synsets, its direct hypernyms (the module walks them);
- ``exceptions``: the lines of ``noun.exc`` whose base form is one of those lemmas
  (``mice`` -> ``mouse``), the irregular plurals morphy needs.

The output is deterministic (sorted keys, fixed layout): ``tests/engine/test_label_words.py``
regenerates it and checks the shipped file is identical.

    python scripts/derive_label_words.py [--wordnet /usr/share/wordnet] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO / "src" / "phantoscope" / "assets"
WNIDS = ASSETS / "imagenet_wnids.txt"
OUT = ASSETS / "label_words.json"
WORDNET = Path("/usr/share/wordnet")
HYPERNYM_POINTERS = frozenset({"@", "@i"})


def _read_noun_synsets(data_noun: Path) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Every noun synset of ``data.noun``: id -> lemmas, id -> direct hypernym ids.

    A line is: offset lex_filenum ss_type w_cnt(hex) [word lex_id]... p_cnt(dec)
    [symbol offset pos source/target]... | gloss. Ids are ``n`` + the 8-digit offset.
    """
    lemmas: dict[str, list[str]] = {}
    hypernyms: dict[str, list[str]] = {}
    with data_noun.open(encoding="utf-8") as lines:
        for line in lines:
            if line.startswith("  "):  # the licence header
                continue
            fields = line.split(" | ", 1)[0].split()
            synset = "n" + fields[0]
            word_count = int(fields[3], 16)
            lemmas[synset] = fields[4:4 + 2 * word_count:2]
            at = 4 + 2 * word_count
            pointer_count = int(fields[at])
            pointers = fields[at + 1:at + 1 + 4 * pointer_count]
            hypernyms[synset] = [
                "n" + pointers[i + 1] for i in range(0, len(pointers), 4)
                if pointers[i] in HYPERNYM_POINTERS and pointers[i + 2] == "n"
            ]
    return lemmas, hypernyms


def _ancestors_and_self(classes: list[str], hypernyms: dict[str, list[str]]) -> set[str]:
    seen: set[str] = set()
    stack = list(classes)
    while stack:
        synset = stack.pop()
        if synset not in seen:
            seen.add(synset)
            stack.extend(hypernyms[synset])
    return seen


def _normal(lemma: str) -> str:
    """How the module compares words: lower case, ``_`` and ``-`` as spaces."""
    return lemma.lower().replace("_", " ").replace("-", " ")


def _exceptions(noun_exc: Path, vocabulary: set[str]) -> dict[str, list[str]]:
    """``noun.exc`` lines (inflected form, base forms...) whose bases are in the vocabulary."""
    kept: dict[str, list[str]] = {}
    for line in noun_exc.read_text(encoding="utf-8").splitlines():
        inflected, *bases = line.split()
        useful = [base for base in bases if _normal(base) in vocabulary]
        if useful:
            kept[inflected] = useful
    return kept


def derive(wordnet: Path, wnids: Path) -> dict[str, object]:
    classes = wnids.read_text().split()
    lemmas, hypernyms = _read_noun_synsets(wordnet / "data.noun")
    missing = [synset for synset in classes if synset not in lemmas]
    if missing:
        raise SystemExit(f"not WordNet 3.0 noun synsets: {missing[:5]}")
    kept = sorted(_ancestors_and_self(classes, hypernyms))
    vocabulary = {_normal(lemma) for synset in kept for lemma in lemmas[synset]}
    return {
        "source": "WordNet 3.0 (data.noun, noun.exc) and imagenet_wnids.txt, by "
        "scripts/derive_label_words.py",
        "classes": classes,
        "synsets": {synset: lemmas[synset] for synset in kept},
        "hypernyms": {synset: hypernyms[synset] for synset in kept if hypernyms[synset]},
        "exceptions": _exceptions(wordnet / "noun.exc", vocabulary),
    }


def render(table: dict[str, object]) -> str:
    """One entry a line: small, stable and readable in a diff."""
    lines = ["{"]
    items = list(table.items())
    for index, (key, value) in enumerate(items):
        comma = "," if index < len(items) - 1 else ""
        if isinstance(value, dict):
            body = ",\n".join(f"    {json.dumps(name)}: {json.dumps(entry)}"
                               for name, entry in sorted(value.items()))
            lines.append(f"  {json.dumps(key)}: {{\n{body}\n  }}{comma}")
        else:
            lines.append(f"  {json.dumps(key)}: {json.dumps(value)}{comma}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wordnet", type=Path, default=WORDNET,
                        help="folder of WordNet 3.0's database files (Debian's wordnet-base)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    text = render(derive(args.wordnet, WNIDS))
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out} ({len(text.encode()):,} bytes)")


if __name__ == "__main__":
    main()
