"""Searching an application by words: the labels its images got at ingest (engine.pipeline,
engine.entities) matched to the words through WordNet (engine.label_words), ranked in SQL.

An entity's score is the mean over the query's terms of min(1, the sum of its label
probabilities whose class the term names): in [0, 1], 1 when every term is certain. Words
that name no class take no part and are reported; a query of such words only finds nothing.

Only fields whose pipeline has no processors and whose encoder gives labels can be searched
by words (a processor pipeline's vectors describe crops, not the image: no labels are kept).
A filter is checked in Python against each ranked entity's row, a page of ranked entities at
a time, until ``topk`` pass: a filter few entities pass costs reads of many.
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
from phantoscope.engine.label_words import TermMatch, match_text
from phantoscope.engine.model import Application
from phantoscope.engine.rows import entity_of
from phantoscope.engine.search import Hit, Match, check_topk

__all__ = ["MAX_TEXT", "TextHits", "check_text", "text_field", "text_search"]

MAX_TEXT = 1000  # characters of a text query
PAGE = 200  # ranked entities read at a time when a filter must pass them


@dataclass(frozen=True)
class TextHits:
    """What a text search of ``application`` found, best first, and how it read the words."""

    application: Application
    hits: list[Hit]
    terms: tuple[TermMatch, ...]  # the words and phrases that named classes, in order
    unmatched: tuple[str, ...]  # the words that named none


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


def _unavailable(plan: FieldPlan) -> BadRequestError:
    pipeline = plan.pipeline
    why = (f"its pipeline {pipeline.name!r} crops the image with processors"
           if pipeline.processors
           else f"the encoder {plan.encoder.name!r} of its pipeline {pipeline.name!r} gives "
                "no labels")
    return BadRequestError(
        "TEXT_SEARCH_UNAVAILABLE",
        f"field {plan.field!r} of application {plan.application.name!r} cannot be searched "
        f"by words: {why}. Search it by image, or search a field whose pipeline has no "
        "processors and an encoder that gives labels (the default efficientnet-lite0-encoder "
        "does)",
    )


def text_field(plan: ApplicationPlan, name: str | None) -> FieldPlan:
    """The field a text search means: ``name``, or the application's only field with labels."""
    if name is not None:
        field = plan.field(name)
        if not _labelled(field):
            raise _unavailable(field)
        return field
    labelled = [field for field in plan.fields.values() if _labelled(field)]
    if len(labelled) == 1:
        return labelled[0]
    if not labelled:
        if len(plan.fields) == 1:
            raise _unavailable(next(iter(plan.fields.values())))
        raise BadRequestError(
            "TEXT_SEARCH_UNAVAILABLE",
            f"no field of application {plan.application.name!r} has labels to search by "
            f"words (its image fields: {', '.join(plan.fields) or 'none'}); search by image, "
            "or add a field whose pipeline's encoder gives labels (the default "
            "efficientnet-lite0-encoder does)",
        )
    raise BadRequestError(
        "FIELD_REQUIRED",
        f"application {plan.application.name!r} has fields with labels "
        f"{', '.join(field.field for field in labelled)}: say which one (field)",
    )


@entry_point
def text_search(stores: Stores, app_name: str, field_name: str | None, text: object,
                topk: int, filter: Filter | None = None) -> TextHits:
    """The entities of the application whose labels best match the words of ``text`` (among
    those ``filter`` selects), best first."""
    check_topk(topk)
    words = check_text(text)
    plan = text_field(application_plan(stores, app_name), field_name)
    matched = match_text(words)
    label_sets = [term.classes for term in matched.terms]
    hits = _ranked(stores, plan, label_sets, topk, filter) if label_sets else []
    return TextHits(plan.application, hits, matched.terms, matched.unmatched)


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
