"""`engine.filters`: parsing and its messages, the expressions it writes, and `matches`.
Whether Milvus selects the same rows is tests/storage/test_filter_expressions.py."""

from __future__ import annotations

import pytest

from phantoscope.engine.errors import BadRequestError
from phantoscope.engine.filters import (
    And,
    Condition,
    Not,
    Or,
    matches,
    milvus_expression,
    parse_filter,
    parse_time,
)

FIELDS = {"name": "name", "taken_at": "taken_at", "width": "width",
          "camera": 'meta["camera"]', "attributes": "attributes"}


def test_parse_builds_the_tree() -> None:
    assert parse_filter({}) == And(())
    assert parse_filter({"name": "a"}) == Condition("name", "eq", "a")
    assert parse_filter({"width": {"gte": 10.0, "ne": 20}}) == And((
        Condition("width", "gte", 10), Not(Condition("width", "eq", 20))))
    assert parse_filter({"or": [{"camera": "x"}, {"not": {"attributes.k": {"exists": True}}}],
                         "attributes.k": {"exists": False}}) == And((
        Or((Condition("camera", "eq", "x"), Not(Condition("attributes.k", "exists", True)))),
        Not(Condition("attributes.k", "exists", True))))
    assert parse_filter({"taken_at": {"gte": "2024-01-01"}}) == Condition(
        "taken_at", "gte", 1704067200)
    assert parse_filter({"attributes.tags": {"in": ["a", 1, True]}}) == Condition(
        "attributes.tags", "in", ("a", 1, True))


@pytest.mark.parametrize(("value", "message"), [
    ([], "filter: a filter is a JSON object, not a list"),
    ({"colour": 1}, "filter.colour: unknown key 'colour'"),
    ({"attributes.9x": 1}, "filter.attributes.9x: '9x' is not a valid attribute key"),
    ({"attributes.": 1}, "is not a valid attribute key"),
    ({"name": {"like": "a%"}}, "filter.name.like: unknown operator 'like'"),
    ({"name": {}}, "filter.name: no operator"),
    ({"name": None}, 'filter.name: null is not a value: use {"exists": false}'),
    ({"name": ["a"]}, r'filter.name: a list is not a value: use {"in": \[...\]}'),
    ({"name": 5}, "filter.name: name takes a string, not a number"),
    ({"width": {"prefix": "1"}}, "filter.width.prefix: prefix applies to strings; width is a "
                                 "number"),
    ({"taken_at": {"prefix": "2024"}}, "filter.taken_at.prefix: prefix applies to strings"),
    ({"attributes.n": {"prefix": 5}}, "filter.attributes.n.prefix: attributes.n takes a "
                                      "string prefix, not a number"),
    ({"width": {"gt": True}}, "filter.width.gt: takes a number, not a boolean"),
    ({"width": "10"}, "filter.width: takes a number, not a string"),
    ({"width": 10.5}, "filter.width: width takes whole numbers, not 10.5"),
    ({"width": 2**63}, "outside the signed 64-bit range"),
    ({"attributes.flag": {"gt": True}}, "filter.attributes.flag.gt: gt takes a number or a "
                                        "string, not a boolean"),
    ({"attributes.x": {"eq": float("nan")}}, "numbers must be finite"),
    ({"attributes.x": {"eq": {"a": 1}}}, "filter.attributes.x.eq: attributes.x takes a "
                                         "string, a number or a boolean, not an object"),
    ({"attributes.x": {"eq": [1]}}, "takes a string, a number or a boolean, not a list"),
    ({"taken_at": "yesterday"}, "filter.taken_at: taken_at takes an ISO 8601 date or time"),
    ({"taken_at": {"gt": 1700000000}}, "filter.taken_at.gt: taken_at takes an ISO 8601 "
                                       "date or time as text, not a number"),
    ({"taken_at": "2024-13-01"}, "taken_at takes an ISO 8601"),
    ({"taken_at": "2024-01-01T00:00:00.5Z"}, "whole seconds: eq/in take no fraction"),
    ({"name": {"in": "a"}}, "filter.name.in: in takes a list of values, not a string"),
    ({"name": {"in": []}}, "filter.name.in: in takes 1 to 1000 values, not 0"),
    ({"name": {"in": ["a"] * 1001}}, "in takes 1 to 1000 values, not 1001"),
    ({"name": {"in": ["a", 1]}}, r"filter.name.in\[1\]: name takes a string, not a number"),
    ({"name": {"exists": 1}}, "filter.name.exists: exists takes true or false, not a number"),
    ({"or": []}, "filter.or: or takes a non-empty list of filters"),
    ({"or": {"name": "a"}}, "filter.or: or takes a non-empty list"),
    ({"or": [{"name": "a"}, 3]}, r"filter.or\[1\]: a filter is a JSON object, not a number"),
    ({"or": [{}]}, r"filter.or\[0\]: an empty filter inside or/not"),
    ({"not": {}}, "filter.not: an empty filter inside or/not"),
    ({"or": [{"name": "a"}] * 1001}, "or takes at most 1000 filters"),
    ({"not": {"or": [{"width": {"gt": "x"}}]}}, r"filter.not.or\[0\].width.gt: takes a number"),
    ({"name": "a\x00b"}, "filter.name: the string holds control character U\\+0000"),
    ({"name": "\ud800"}, "lone surrogate"),
])
def test_invalid_filters_name_where_and_why(value: object, message: str) -> None:
    with pytest.raises(BadRequestError, match=message) as caught:
        parse_filter(value)
    assert caught.value.code == "INVALID_FILTER"
    assert caught.value.status == 400


def nested(levels: int) -> dict:
    filter_json: dict = {"name": "a"}
    for _ in range(levels - 1):
        filter_json = {"not": filter_json}
    return filter_json


def test_nesting_is_limited_to_eight_levels() -> None:
    assert parse_filter(nested(8))
    with pytest.raises(BadRequestError, match="filters nest at most 8 levels deep"):
        parse_filter(nested(9))
    deep_or: dict = {"name": "a"}
    for _ in range(8):
        deep_or = {"or": [deep_or]}
    with pytest.raises(BadRequestError, match=r"filter(\.or\[0\]){8}: filters nest at most 8"):
        parse_filter(deep_or)


def test_parse_time() -> None:
    assert parse_time("1970-01-01") == 0
    assert parse_time("1970-01-01T01:00:00+01:00") == 0
    assert parse_time("1970-01-01T00:00:01Z") == 1
    assert parse_time("1970-01-01 00:00:01.250") == 1.25
    assert parse_time("1970-01-01T00:01") == 60
    for bad in ("1970", "01/02/2024", "2024-01-01T25:00:00", "2024-01-01X"):
        with pytest.raises(ValueError):
            parse_time(bad)


def expr(filter_json: dict) -> str:
    return milvus_expression(parse_filter(filter_json), FIELDS)


def test_expressions_quote_user_text_and_never_use_like() -> None:
    assert expr({}) == ""
    assert expr({"name": '" or 1==1 or "'}) == r'(name == "\" or 1==1 or \"")'
    assert expr({"name": "a\\b\n\t\r"}) == r'(name == "a\\b\n\t\r")'
    assert expr({"name": {"prefix": "50%_"}}) == '(name >= "50%_" and name < "50%`")'
    assert expr({"name": {"prefix": "a\U0010ffff"}}) == '(name >= "a\U0010ffff" and name < "b")'
    assert expr({"name": {"prefix": "\U0010ffff"}}) == '(name >= "\U0010ffff")'
    assert expr({"name": {"prefix": "\ud7ff"}}) == '(name >= "\ud7ff" and name < "\ue000")'
    assert "like" not in expr({"attributes.k": {"prefix": "%"}})


def test_expressions_for_columns_and_json_paths() -> None:
    assert expr({"width": {"gt": 10, "lte": 20.0}}) == "((width > 10) and (width <= 20))"
    assert expr({"not": {"width": {"gt": 10}}}) == "(width <= 10)"
    assert expr({"name": {"in": ["a", "b"]}}) == '(name in ["a", "b"])'
    assert expr({"name": {"ne": "a"}}) == '(name != "a")'
    assert expr({"not": {"name": {"in": ["a"]}}}) == '(name not in ["a"])'
    assert expr({"camera": "x"}) == '(meta["camera"] == "x" or json_contains(meta["camera"], "x"))'
    assert expr({"camera": {"ne": "x"}}) == ('((exists meta["camera"]) and meta["camera"] != "x" '
                                             'and (not json_contains(meta["camera"], "x")))')
    assert expr({"attributes.n": {"in": [1, 2.5, True]}}) == (
        '(attributes["n"] == 1 or attributes["n"] == 2.5 or attributes["n"] == true)')
    assert expr({"attributes.k": {"exists": False}}) == '(not (exists attributes["k"]))'
    assert expr({"name": {"exists": True}}) == '(name >= "")'
    assert expr({"width": {"exists": False}}) == "(width > 0 and width < 0)"
    assert expr({"taken_at": {"gt": "1970-01-01T00:00:00.5Z"}}) == "(taken_at > 0)"
    assert expr({"taken_at": {"gte": "1970-01-01T00:00:00.5Z"}}) == "(taken_at >= 1)"
    assert expr({"not": {"or": [{"width": 1}, {"name": "a"}]}}) == (
        '((width != 1) and (name != "a"))')


def test_expression_fields_are_checked() -> None:
    with pytest.raises(BadRequestError, match="filter: height cannot be filtered here"):
        expr({"height": 1})
    with pytest.raises(ValueError, match="not a column name or a JSON path"):
        milvus_expression(parse_filter({"name": "a"}), {"name": "name or 1==1"})


RECORD = {"name": "IMG_1.jpg", "camera": None, "width": 40, "taken_at": "2024-05-01T12:00:00Z",
          "attributes": {"n": 1, "s": "1", "flag": True, "tags": ["cat", "dog"]}}


@pytest.mark.parametrize(("filter_json", "expected"), [
    ({}, True),
    ({"name": {"prefix": "IMG_"}}, True),
    ({"attributes.n": 1.0}, True),
    ({"attributes.n": "1"}, False),
    ({"attributes.s": 1}, False),
    ({"attributes.flag": 1}, False),
    ({"attributes.n": True}, False),
    ({"attributes.tags": "cat"}, True),
    ({"attributes.tags": {"in": ["bird", "dog"]}}, True),
    ({"attributes.tags": {"ne": "cat"}}, False),
    ({"attributes.tags": {"gt": "a"}}, False),
    ({"not": {"attributes.tags": {"gt": "a"}}}, False),  # unknown either way
    ({"attributes.s": {"gt": 0}}, False),
    ({"not": {"attributes.s": {"gt": 0}}}, False),
    ({"attributes.n": {"prefix": "1"}}, False),
    ({"not": {"attributes.n": {"prefix": "1"}}}, False),
    ({"camera": "x"}, False),
    ({"camera": {"ne": "x"}}, False),
    ({"not": {"camera": "x"}}, False),
    ({"camera": {"exists": False}}, True),
    ({"or": [{"camera": "x"}, {"width": 40}]}, True),
    ({"not": {"or": [{"camera": "x"}, {"width": 41}]}}, False),
    ({"not": {"camera": "x", "width": 41}}, True),  # false AND unknown is false
    ({"taken_at": {"gte": "2024-05-01T14:00:00+02:00"}}, True),
    ({"taken_at": {"gt": "2024-05-01T14:00:00+02:00"}}, False),
    ({"attributes.missing": {"exists": True}}, False),
])
def test_matches_is_three_valued(filter_json: dict, expected: bool) -> None:
    assert matches(parse_filter(filter_json), RECORD) is expected


TABBY, GOLDEN_RETRIEVER, ESPRESSO = "n02123045", "n02099601", "n07920052"


@pytest.mark.parametrize(("filter_json", "labels", "expected"), [
    ({"labels": "cat"}, {TABBY}, True),
    ({"labels": "Cats"}, {TABBY}, True),
    ({"labels": "animal"}, {GOLDEN_RETRIEVER}, True),
    ({"labels": "dog"}, {TABBY}, False),
    ({"labels": TABBY}, {TABBY}, True),
    ({"labels": "tabby"}, {"n02123159"}, False),  # a tiger cat is not a tabby
    ({"labels": "dog and espresso"}, {GOLDEN_RETRIEVER}, False),  # each term must be held
    ({"labels": "dog and espresso"}, {GOLDEN_RETRIEVER, ESPRESSO}, True),
    ({"labels": {"in": ["dog", "espresso"]}}, {ESPRESSO}, True),
    ({"labels": {"ne": "dog"}}, {ESPRESSO}, True),
    ({"labels": {"ne": "dog"}}, set(), True),  # labels, none sure enough
    ({"labels": {"ne": "dog"}}, None, False),  # no labels at all: unknown
    ({"not": {"labels": "dog"}}, None, False),
    ({"labels": {"exists": True}}, set(), True),
    ({"labels": {"exists": False}}, None, True),
])
def test_labels_match_words_and_class_ids(filter_json: dict, labels: set | None,
                                          expected: bool) -> None:
    record = {**RECORD, "labels": None if labels is None else frozenset(labels)}
    assert matches(parse_filter(filter_json), record) is expected


@pytest.mark.parametrize(("value", "message"), [
    ({"labels": "xyzzy"}, "filter.labels: no label is named by 'xyzzy'"),
    ({"labels": "the"}, "filter.labels: give a class id or words"),
    ({"labels": "n99999999"}, "filter.labels: 'n99999999' is not an ImageNet-1k class id"),
    ({"labels": {"prefix": "do"}}, "filter.labels.prefix: labels takes eq, ne, in, exists"),
    ({"labels": {"in": ["dog", 3]}}, r"filter.labels.in\[1\]: labels takes a class id or words"),
])
def test_invalid_label_filters_say_what_to_give(value: object, message: str) -> None:
    with pytest.raises(BadRequestError, match=message):
        parse_filter(value)


def test_no_vector_store_expression_holds_labels() -> None:
    with pytest.raises(BadRequestError, match="labels cannot be filtered here"):
        milvus_expression(parse_filter({"labels": "dog"}), FIELDS)
