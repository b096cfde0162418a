"""Searching an application by words, in one of two ways, by the field searched:

- its pipeline has a text encoder (``Pipeline.text_encoder``, of the image encoder's
  embedding space): the words are embedded by it and the image vectors searched with that
  vector (:func:`phantoscope.engine.search.nearest`: scores and filters as for an image
  search). With an image too (a mixed query), the text's and the image's vectors are
  combined first (:mod:`phantoscope.engine.query_mix`).
- otherwise, the labels its images got at ingest (engine.pipeline, engine.entities) matched
  to the words through WordNet (engine.label_words), ranked in SQL. An entity's score is the
  mean over the query's terms of min(1, the sum of its label probabilities whose class the
  term names): in [0, 1], 1 when every term is certain. Words that name no class take no
  part and are reported; a query of such words only finds nothing. Only fields whose
  pipeline has no processors and whose encoder gives labels have labels (a processor
  pipeline's vectors describe crops, not the image). A filter is checked in Python against
  each ranked entity's row, a page of ranked entities at a time, until ``topk`` pass: a
  filter few entities pass costs reads of many.

A field with both searches through its text encoder.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from phantoscope.engine.boundary import entry_point
from phantoscope.engine.catalog import ApplicationPlan, FieldPlan, application_plan
from phantoscope.engine.context import Stores
from phantoscope.engine.entity_records import record_of
from phantoscope.engine.errors import BadRequestError
from phantoscope.engine.filters import Filter, matches
from phantoscope.engine.intake import ImageInput
from phantoscope.engine.label_words import TermMatch, match_text
from phantoscope.engine.model import Application
from phantoscope.engine.pipeline import PipelineVector
from phantoscope.engine.query_mix import (
    EQUAL,
    Weights,
    check_weights,
    invalid_weights,
    mixed_queries,
)
from phantoscope.engine.registry import PAIR_EXAMPLE
from phantoscope.engine.rows import entity_of
from phantoscope.engine.search import Hit, Match, check_topk, image_queries, nearest

__all__ = [
    "BY_LABELS", "BY_TEXT_ENCODER", "MAX_TEXT", "TextHits", "TextQuery", "check_text",
    "plan_text_search", "run_text_search", "text_field", "text_search",
]

MAX_TEXT = 1000  # characters of a text query
PAGE = 200  # ranked entities read at a time when a filter must pass them
BY_LABELS = "labels"
BY_TEXT_ENCODER = "text_encoder"
PAIRED = (f"a pipeline with a text encoder (created with `text_encoder`, e.g. "
          f"{PAIR_EXAMPLE[1]} beside the encoder {PAIR_EXAMPLE[0]})")


@dataclass(frozen=True)
class TextHits:
    """What a text search of ``application`` found, best first, and how it read the words."""

    application: Application
    hits: list[Hit]
    terms: tuple[TermMatch, ...]  # the words and phrases that named classes, in order
    unmatched: tuple[str, ...]  # the words that named none
    matched_by: str = BY_LABELS  # BY_LABELS, or BY_TEXT_ENCODER (no terms, none unmatched)


@dataclass(frozen=True)
class TextQuery:
    """A search by words, checked, and the field it searches."""

    plan: FieldPlan
    text: str
    weights: Weights | None  # a mixed query's (w_text, w_image); None: the words alone

    @property
    def matched_by(self) -> str:
        return BY_LABELS if self.plan.text_encoder is None else BY_TEXT_ENCODER


def check_text(text: object) -> str:
    """The text of a query: a string with a word in it, of at most 1,000 characters."""
    if not isinstance(text, str) or not text.strip():
        raise BadRequestError(
            "INVALID_TEXT", "text: give the words to search for, as a non-empty string")
    if len(text) > MAX_TEXT:
        raise BadRequestError(
            "TEXT_TOO_LONG",
            f"text has {len(text):,} characters; give at most {MAX_TEXT:,} (a few words work "
            "best)")
    return text


def _labelled(plan: FieldPlan) -> bool:
    return not plan.pipeline.processors and bool(plan.encoder.labels)


def _by_words(plan: FieldPlan) -> bool:
    return plan.text_encoder is not None or _labelled(plan)


def _unavailable(plan: FieldPlan) -> BadRequestError:
    pipeline = plan.pipeline
    why = ("it crops the image with processors" if pipeline.processors
           else f"its encoder {plan.encoder.name!r} gives no labels")
    return BadRequestError(
        "TEXT_SEARCH_UNAVAILABLE",
        f"field {plan.field!r} of application {plan.application.name!r} cannot be searched "
        f"by words: its pipeline {pipeline.name!r} has no text encoder, and {why}. Search it "
        f"by image, or search by words a field on {PAIRED}, or on a pipeline without "
        "processors whose encoder gives labels (the default efficientnet-lite0-encoder does)",
    )


def _unmixed(plan: FieldPlan) -> BadRequestError:
    return BadRequestError(
        "TEXT_WITH_IMAGE",
        f"field {plan.field!r} of application {plan.application.name!r} cannot search by "
        f"words and an image at once: its pipeline {plan.pipeline.name!r} has no text "
        f"encoder, and mixed queries need {PAIRED}. Search it by text or by an image, not "
        "both",
    )


def text_field(plan: ApplicationPlan, name: str | None, *, with_image: bool = False
               ) -> FieldPlan:
    """The field a text search means: ``name``, or the application's only field that can take
    it (one with a text encoder or labels; for a mixed query, one with a text encoder)."""
    if name is not None:
        field = plan.field(name)
        if with_image and field.text_encoder is None:
            raise _unmixed(field)
        if not _by_words(field):
            raise _unavailable(field)
        return field
    able = (lambda field: field.text_encoder is not None) if with_image else _by_words
    fields = [field for field in plan.fields.values() if able(field)]
    if len(fields) == 1:
        return fields[0]
    application = plan.application.name
    if fields:
        raise BadRequestError(
            "FIELD_REQUIRED",
            f"application {application!r} has fields searchable by words "
            f"{', '.join(field.field for field in fields)}: say which one (field)",
        )
    if len(plan.fields) == 1:
        only = next(iter(plan.fields.values()))
        raise _unmixed(only) if with_image else _unavailable(only)
    if with_image:
        raise BadRequestError(
            "TEXT_WITH_IMAGE",
            f"no field of application {application!r} has a text encoder (its image fields: "
            f"{', '.join(plan.fields) or 'none'}), and mixed queries need {PAIRED}. Search "
            "by text or by an image, not both",
        )
    raise BadRequestError(
        "TEXT_SEARCH_UNAVAILABLE",
        f"no field of application {application!r} can be searched by words (its image "
        f"fields: {', '.join(plan.fields) or 'none'}): search by image, or add a field on "
        f"{PAIRED}, or on a pipeline whose encoder gives labels (the default "
        "efficientnet-lite0-encoder does)",
    )


@entry_point
def plan_text_search(stores: Stores, app_name: str, field_name: str | None, text: object, *,
                     with_image: bool = False, weights: object = None) -> TextQuery:
    """A search by ``text`` (and an image, when ``with_image``: ``weights`` mixes them,
    equal when None), checked: the text, the weights, and the field it searches."""
    words = check_text(text)
    if weights is not None and not with_image:
        raise invalid_weights("weigh a text and an image: give both, or no weights")
    mix = (EQUAL if weights is None else check_weights(weights)) if with_image else None
    plan = text_field(application_plan(stores, app_name), field_name, with_image=with_image)
    return TextQuery(plan, words, mix)


@entry_point
def run_text_search(stores: Stores, query: TextQuery, topk: int, filter: Filter | None = None,
                    image: ImageInput | None = None) -> TextHits:
    """The entities of the query's application that best match its words (and ``image``,
    for a mixed query), among those ``filter`` selects, best first."""
    check_topk(topk)
    plan = query.plan
    if (image is None) != (query.weights is None):
        raise ValueError("an image goes with a mixed query, and only with one")
    if plan.text_encoder is None:
        matched = match_text(query.text)
        label_sets = [term.classes for term in matched.terms]
        hits = _ranked(stores, plan, label_sets, topk, filter) if label_sets else []
        return TextHits(plan.application, hits, matched.terms, matched.unmatched, BY_LABELS)
    vector = stores.runner.encode_text(plan.text_encoder, query.text)
    if image is None or query.weights is None:
        queries = [PipelineVector(vector, 0, None)]
    else:
        queries = mixed_queries(vector, image_queries(stores, plan, image), query.weights)
    hits = nearest(stores, plan, queries, topk, filter)
    return TextHits(plan.application, hits, (), (), BY_TEXT_ENCODER)


@entry_point
def text_search(stores: Stores, app_name: str, field_name: str | None, text: object,
                topk: int, filter: Filter | None = None) -> TextHits:
    """The entities of the application that best match the words of ``text`` (among those
    ``filter`` selects), best first."""
    check_topk(topk)
    return run_text_search(stores, plan_text_search(stores, app_name, field_name, text), topk,
                           filter)


def _ranked(stores: Stores, plan: FieldPlan, label_sets: Sequence[Collection[str]],
            topk: int, filter: Filter | None) -> list[Hit]:
    application = plan.application.name
    page = topk if filter is None else max(PAGE, 4 * topk)
    hits: list[Hit] = []
    offset = 0
    while True:
        ranked = stores.meta.ranked_by_labels(application, plan.field, label_sets, offset, page)
        rows = stores.meta.entities_by_id(application, [entity for entity, _ in ranked])
        for entity_id, score in ranked:
            row = rows.get(entity_id)  # deleted meanwhile: left out
            if row is None or (filter is not None and not matches(filter, record_of(row))):
                continue
            match = Match(box=None, query_box=None, distance=1.0 - score, score=score)
            hits.append(Hit(entity_of(row), [match]))
            if len(hits) == topk:
                return hits
        if len(ranked) < page:
            return hits
        offset += page
