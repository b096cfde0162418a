"""Words of a text query -> the ImageNet-1k classes they name, through WordNet 3.0.

The default encoder gives each image its top-5 ImageNet-1k labels (class ids such as
``n02123045``, which are WordNet 3.0 noun synset offsets) with probabilities. A text search
matches its words to those labels with the table ``assets/label_words.json``, derived once
from WordNet by ``scripts/derive_label_words.py``: no WordNet install or download is needed.

A word (or a multiword phrase such as "golden retriever") matches a class when it is one of
the lemmas of the class's own synset (a synonym: "tabby cat" for tabby) or of any synset
above it through hypernyms, up to ``entity`` ("cat", "feline", "mammal", "animal" for tabby).
Every sense WordNet lists counts: "cat" also reaches the big cats (WordNet's "big cat, cat"),
"mouse" the rodent's classes and the computer mouse. A word naming something that sits
below or beside the classes reaches nothing: "beach" (WordNet: a geological formation that
is *part of* a shore) does not reach seashore, whose hypernym is shore; "people" and
"kitten" reach nothing either.

Text is read case-insensitively as runs of letters and digits, apostrophes dropped
("potter's wheel" = "potters wheel"; hyphens and underscores separate words). Phrases are
matched longest first, left to right, before single words; each candidate is also tried in
its base forms the way WordNet's morphy does for nouns: the irregular plurals of ``noun.exc``
("mice" -> "mouse") and the suffix rules (-s, -ses, -xes, -zes, -ches, -shes, -men, -ies)
on its last word ("golden retrievers", "dogs"). Stop words ("a", "on", "photo", ...) are
dropped unless they are inside a matched phrase.

What a match means when searching (the engine scores, this module only matches): an
entity's score for a query is the mean over the query's terms of
``min(1, sum of the entity's label probabilities whose class is in term.classes)``. Words
left in ``unmatched`` take no part in the score.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources

TABLE = "label_words.json"

STOP_WORDS = frozenset({
    "a", "an", "the", "of", "on", "in", "at", "by", "with", "without", "and", "or", "to", "from",
    "for", "into", "onto", "near", "next", "under", "over", "above", "below", "behind", "beside",
    "between", "is", "are", "was", "were", "be", "being", "some", "any", "my", "our", "your",
    "his", "her", "its", "their", "this", "that", "these", "those", "there", "here", "it", "them",
    "me", "us", "very", "while", "who", "which", "what", "photo", "photos", "photograph",
    "photographs", "picture", "pictures", "image", "images", "pic", "pics", "shot", "shots",
    "showing", "shows", "show",
})

# WordNet's morphy for nouns: (suffix, replacement), tried on a form's last word.
_SUFFIX_RULES = (
    ("s", ""), ("ses", "s"), ("xes", "x"), ("zes", "z"), ("ches", "ch"), ("shes", "sh"),
    ("men", "man"), ("ies", "y"),
)
_APOSTROPHES = re.compile("['\u2019\u02bc]")
_WORD = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class TermMatch:
    """A word or phrase of the query, as it was written (lower case), and the classes it
    names directly, through a synonym or as a hypernym."""

    word: str
    classes: frozenset[str]


@dataclass(frozen=True)
class TextMatch:
    """The query's terms in order (each once), and the words that matched nothing."""

    terms: tuple[TermMatch, ...]
    unmatched: tuple[str, ...]


@dataclass(frozen=True)
class _Vocabulary:
    names: dict[str, str]  # class id -> display name
    children: dict[str, tuple[str, ...]]  # synset -> the synsets whose hypernym it is
    synsets: dict[str, tuple[str, ...]]  # normalised lemma -> the synsets it is a lemma of
    exceptions: dict[str, tuple[str, ...]]  # normalised inflected form -> base forms
    longest: int  # words in the longest lemma


def _normal(text: str) -> str:
    """Lower case, apostrophes dropped, words of letters and digits joined by one space."""
    return " ".join(_WORD.findall(_APOSTROPHES.sub("", text.casefold())))


# WordNet's lemmas hold ASCII letters, digits and _ - ' . only: the same as _normal, faster.
_LEMMA_SEPARATORS = str.maketrans({"_": " ", "-": " ", ".": " ", "'": None})


def _normal_lemma(lemma: str) -> str:
    return " ".join(lemma.lower().translate(_LEMMA_SEPARATORS).split())


@lru_cache(maxsize=1)
def _vocabulary() -> _Vocabulary:
    table = json.loads(resources.files("phantoscope.assets").joinpath(TABLE).read_text("utf-8"))
    children: dict[str, list[str]] = {}
    for synset, parents in table["hypernyms"].items():
        for parent in parents:
            children.setdefault(parent, []).append(synset)
    synsets: dict[str, list[str]] = {}
    for synset, lemmas in table["synsets"].items():
        for lemma in lemmas:
            synsets.setdefault(_normal_lemma(lemma), []).append(synset)
    return _Vocabulary(
        names={
            class_id: table["synsets"][class_id][0].replace("_", " ")
            for class_id in table["classes"]
        },
        children={synset: tuple(found) for synset, found in children.items()},
        synsets={lemma: tuple(found) for lemma, found in synsets.items()},
        exceptions={
            _normal_lemma(inflected): tuple(_normal_lemma(base) for base in bases)
            for inflected, bases in table["exceptions"].items()
        },
        longest=max(lemma.count(" ") + 1 for lemma in synsets),
    )


@cache
def _classes_below(synset: str) -> frozenset[str]:
    """The classes at or below ``synset`` (worked out once per synset, when first asked)."""
    vocabulary = _vocabulary()
    found = {synset} if synset in vocabulary.names else set()
    return frozenset(found.union(*map(_classes_below, vocabulary.children.get(synset, ()))))


def label_name(class_id: str) -> str:
    """The class's display name: its first WordNet lemma ("golden retriever"); an id that is
    not an ImageNet-1k class comes back unchanged."""
    return _vocabulary().names.get(class_id, class_id)


def _base_forms(phrase: str, vocabulary: _Vocabulary) -> list[str]:
    """``phrase`` and what morphy makes of it: irregular plurals, then the suffix rules on the
    last word (not on words ending in -ss or of two letters or fewer)."""
    forms = [phrase, *vocabulary.exceptions.get(phrase, ())]
    head, _, last = phrase.rpartition(" ")
    prefix = f"{head} " if head else ""
    forms += [prefix + base for base in vocabulary.exceptions.get(last, ()) if head]
    if len(last) > 2 and not last.endswith("ss"):
        forms += [prefix + last[: -len(suffix)] + ending
                  for suffix, ending in _SUFFIX_RULES if last.endswith(suffix)]
    return forms


def _classes(phrase: str, vocabulary: _Vocabulary) -> frozenset[str]:
    return frozenset().union(*(
        _classes_below(synset)
        for form in _base_forms(phrase, vocabulary)
        for synset in vocabulary.synsets.get(form, ())
    ))


def _longest_phrase(
    words: list[str], start: int, vocabulary: _Vocabulary
) -> tuple[int, frozenset[str]]:
    """How many words from ``start`` make the longest phrase that names classes, and those
    classes; ``(1, frozenset())`` when not even the first word does."""
    for size in range(min(vocabulary.longest, len(words) - start), 0, -1):
        phrase = " ".join(words[start:start + size])
        if size == 1 and phrase in STOP_WORDS:
            break
        classes = _classes(phrase, vocabulary)
        if classes:
            return size, classes
    return 1, frozenset()


def match_text(text: str) -> TextMatch:
    """The terms of ``text`` and the classes each reaches; words that reach nothing (stop
    words aside) in ``unmatched``. Never raises on any string."""
    vocabulary = _vocabulary()
    words = _normal(text).split()
    terms: dict[str, TermMatch] = {}
    unmatched: dict[str, None] = {}  # an ordered set
    start = 0
    while start < len(words):
        size, classes = _longest_phrase(words, start, vocabulary)
        phrase = " ".join(words[start:start + size])
        if classes:
            terms.setdefault(phrase, TermMatch(phrase, classes))
        elif phrase not in STOP_WORDS:
            unmatched.setdefault(phrase)
        start += size
    return TextMatch(tuple(terms.values()), tuple(unmatched))


_CLASS_ID = re.compile(r"n\d{8}")


@lru_cache(maxsize=4096)
def label_terms(text: str) -> tuple[frozenset[str], ...]:
    """What a label filter's value asks for: one set of classes per term, each to be held.
    A class id (``"n02123045"``) is itself; words are read as :func:`match_text` reads them.
    ValueError, saying why, for an unknown class id, words with no term, or words that name
    no class."""
    text = text.strip()
    if _CLASS_ID.fullmatch(text):
        if text not in _vocabulary().names:
            raise ValueError(f"{text!r} is not an ImageNet-1k class id")
        return (frozenset({text}),)
    found = match_text(text)
    if found.unmatched:
        raise ValueError(f"no label is named by {', '.join(map(repr, found.unmatched))}: "
                         "use a class id or words such as 'dog', 'tabby', 'vehicle'")
    if not found.terms:
        raise ValueError("give a class id or words that name labels, such as 'dog'")
    return tuple(term.classes for term in found.terms)
