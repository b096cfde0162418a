"""Filtered listing reads SQL narrowed by what the filter's top level says of the name and
taken_at, and selects exactly the entities ``matches`` selects, in id order, page by page;
a filter from request JSON or JSON text is checked (INVALID_FILTER), ``{}`` is no filter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from phantoscope.engine import entity_filters
from phantoscope.engine.entity_filters import (
    matching_entities,
    matching_vector_ids,
    narrowing_of,
    request_filter,
    request_filter_text,
)
from phantoscope.engine.entity_records import record_of
from phantoscope.engine.errors import BadRequestError
from phantoscope.engine.filters import matches, parse_filter
from phantoscope.storage.meta import ApplicationRow, EntityRow, MetaStore, VectorRow

BASE = datetime(2024, 1, 1, tzinfo=UTC)
COUNT = 60


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    meta = MetaStore(f"sqlite:///{tmp_path_factory.mktemp('meta') / 'meta.db'}")
    meta.add(ApplicationRow(name="app", bucket="b"), "adding an application")
    meta.add(ApplicationRow(name="other", bucket="b"), "adding an application")
    rows = [EntityRow(
        id=i + 1, application="app", field="image", object_key=f"k{i}",
        content_type="image/jpeg", sha256="0" * 64, size=1,
        name=None if i % 7 == 0 else f"{['trip', 'shop', 'trip/x'][i % 3]}/{i:03d}.jpg",
        attributes={"category": ["shoes", "hats"][i % 2], "price": i, "tags": ["red"] * (i % 3)},
        exif={"camera": "Canon EOS 5D", "width": 100 + i} if i % 5 else {},
        taken_at=BASE + timedelta(days=i) if i % 4 else None,
        vectors=[VectorRow(id=1000 + i, pipeline="p"), VectorRow(id=5000 + i, pipeline="q")],
    ) for i in range(COUNT)]
    rows.append(EntityRow(id=999, application="other", field="image", object_key="o",
                          content_type="image/jpeg", sha256="0" * 64, size=1,
                          name="trip/000.jpg", attributes={"category": "shoes"}))
    meta.add_entities(rows)
    yield SimpleNamespace(meta=meta)
    meta.close()


FILTERS = [
    {"attributes.category": "shoes"},
    {"name": {"prefix": "trip/"}},
    {"name": {"prefix": "trip/"}, "taken_at": {"gte": "2024-01-10", "lt": "2024-02-01"}},
    {"name": "shop/004.jpg"},
    {"taken_at": {"gt": "2024-01-05T00:00:00+02:00"}, "attributes.price": {"lt": 30}},
    {"or": [{"attributes.tags": "red"}, {"camera": {"exists": False}}]},
    {"not": {"name": {"prefix": "trip"}}},
    {"name": {"exists": False}},
    {"attributes.price": {"in": [1, 2, 3, 40, 41]}, "width": {"gte": 100}},
    {"name": {"prefix": "trip/x/"}, "not": {"taken_at": {"exists": True}}},
]


@pytest.mark.parametrize("value", FILTERS, ids=[str(f) for f in FILTERS])
def test_listing_selects_what_matches_selects_in_pages(stores, value, monkeypatch):
    monkeypatch.setattr(entity_filters, "CHUNK", 7)  # many chunks
    parsed = parse_filter(value)
    wanted = [row.id for row in stores.meta.list_entities("app", 0, 1000)
              if matches(parsed, record_of(row))]
    assert wanted
    pages = [[row.id for row in matching_entities(stores, "app", parsed, offset, 4)]
             for offset in range(0, len(wanted) + 4, 4)]
    assert [i for page in pages for i in page] == wanted and pages[-1] == []
    vectors = matching_vector_ids(stores, "app", "q", parsed)
    assert vectors == [5000 + i - 1 for i in wanted]


def test_the_top_level_name_and_time_conditions_narrow_the_sql():
    narrowing = narrowing_of(parse_filter(
        {"name": {"prefix": "trip/"}, "taken_at": {"gte": "2024-01-10", "lt": "2024-02-01"},
         "attributes.x": 1, "or": [{"name": {"prefix": "zzz"}}, {"width": 3}]}))
    assert narrowing.name_prefix == "trip/"
    assert narrowing.taken_at == (("gte", datetime(2024, 1, 10, tzinfo=UTC)),
                                  ("lt", datetime(2024, 2, 1, tzinfo=UTC)))
    assert narrowing_of(parse_filter({"or": [{"name": "a"}, {"name": "b"}]})).name_prefix is None
    assert narrowing_of(parse_filter({"not": {"taken_at": {"gt": "2024-01-01"}}})).taken_at == ()


@pytest.mark.parametrize(("value", "where"), [
    ({"colour": "red"}, "filter.colour"),
    ({"width": {"near": 3}}, "filter.width.near"),
    ([1], "filter"),
    ("text", "filter"),
])
def test_a_bad_filter_is_invalid_filter_naming_where(value, where):
    with pytest.raises(BadRequestError) as raised:
        request_filter(value)
    assert raised.value.code == "INVALID_FILTER" and raised.value.message.startswith(where)


def test_filters_as_text():
    assert request_filter_text(None) is None and request_filter_text("") is None
    assert request_filter_text("{}") is None and request_filter({}) is None
    assert request_filter_text('{"width": 3}') == parse_filter({"width": 3})
    for text in ("{", "[1", "not json", '{"width": {"gt": "x"}}'):
        with pytest.raises(BadRequestError) as raised:
            request_filter_text(text)
        assert raised.value.code == "INVALID_FILTER"
