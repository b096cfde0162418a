"""The command line's `--attr`, `--where`, `--since`, `--until` and `--name-prefix` words, as
the API's attributes and search filters."""

from __future__ import annotations

import pytest

from phantoscope.cli.filter_options import build_filter, check_time, parse_attributes, parse_value


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("true", True), ("false", False), ("42", 42), ("-7", -7), ("+3", 3), ("0", 0),
        ("1.5", 1.5), ("-0.25", -0.25), ("2e3", 2000.0), ("1.5E-2", 0.015),
        # everything else stays text
        ("True", "True"), ("yes", "yes"), ("007", "007"), ("1.", "1."), (".5", ".5"),
        ("1e999", "1e999"), ("nan", "nan"), ("inf", "inf"), ("1_000", "1_000"),
        ("", ""), (" 42", " 42"), ("shoes", "shoes"), ("a=b", "a=b"),
    ],
)
def test_values_are_booleans_numbers_or_text(text, value):
    parsed = parse_value(text)
    assert parsed == value and type(parsed) is type(value)


def test_attributes_from_assignments():
    assert parse_attributes([]) == {}
    assert parse_attributes(["category=shoes", "count=3", "sale=true", "note=a=b", "x="]) == {
        "category": "shoes", "count": 3, "sale": True, "note": "a=b", "x": ""}
    # A key given again collects its values as a list of text.
    assert parse_attributes(["tag=red", "tag=2", "size=9"]) == {"tag": ["red", "2"], "size": 9}


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("category", "expected key=value, not 'category'"),
        ("=shoes", "expected key=value, not '=shoes'"),
        ("1st=a", "'1st' is not a valid attribute key"),
        ("my-key=a", "'my-key' is not a valid attribute key"),
        ("attributes.x=a", "'attributes.x' is not a valid attribute key"),
        (f"{'k' * 65}=a", f"'{'k' * 65}' is not a valid attribute key"),
    ],
)
def test_bad_assignments_name_what_is_wrong(assignment, message):
    with pytest.raises(ValueError, match="^" + message.replace(".", r"\.")):
        parse_attributes(["ok=1", assignment])


def test_filters_from_options():
    assert build_filter() is None
    assert build_filter(["category=shoes"]) == {"attributes.category": "shoes"}
    assert build_filter(["category=shoes", "size=42", "sale=true", "width=640"]) == {
        "attributes.category": "shoes", "attributes.size": 42, "attributes.sale": True,
        "width": 640}
    # name, camera, labels take the text as it is; attributes.<key> reaches an attribute
    assert build_filter(["name=2024", "camera=true", "attributes.name=x", "labels=golden "
                         "retriever"]) == {"name": "2024", "camera": "true",
                                           "attributes.name": "x", "labels": "golden retriever"}
    assert build_filter(["labels=dog", "labels=n02123045"]) == {
        "labels": {"in": ["dog", "n02123045"]}}
    # the same key again: any of the values
    assert build_filter(["tag=red", "tag=blue", "attributes.tag=3"]) == {
        "attributes.tag": {"in": ["red", "blue", 3]}}
    assert build_filter(since="2024-01-01", until="2025-01-01T00:00:00+02:00") == {
        "taken_at": {"gte": "2024-01-01", "lt": "2025-01-01T00:00:00+02:00"}}
    assert build_filter(until="2024-06-01 12:00") == {"taken_at": {"lt": "2024-06-01 12:00"}}
    assert build_filter(name_prefix="holidays/") == {"name": {"prefix": "holidays/"}}
    assert build_filter(["name=a/b.jpg", "name=c.jpg"], name_prefix="a/") == {
        "name": {"in": ["a/b.jpg", "c.jpg"], "prefix": "a/"}}
    assert build_filter(["name=x"], name_prefix="") == {"name": {"eq": "x", "prefix": ""}}


@pytest.mark.parametrize(
    ("wheres", "message"),
    [
        (["width=wide"], "width takes a whole number of pixels, not 'wide'"),
        (["height=1.5"], "height takes a whole number of pixels, not '1.5'"),
        (["width=true"], "width takes a whole number of pixels, not 'true'"),
        (["9lives=1"], "'9lives' is not a valid attribute key"),
        (["shoes"], "expected key=value, not 'shoes'"),
    ],
)
def test_bad_wheres_name_what_is_wrong(wheres, message):
    with pytest.raises(ValueError, match="^" + message.replace(".", r"\.")):
        build_filter(wheres)


@pytest.mark.parametrize("text", ["2024-01-01", "2024-02-29T23:59:59Z", "2024-05-01T12:30",
                                  "2024-05-01T12:30:00.123+0200", " 2024-05-01 "])
def test_times_the_api_takes(text):
    assert check_time(text) == text.strip()


@pytest.mark.parametrize("text", ["2024", "yesterday", "2024-13-01", "2023-02-29", "20240101",
                                  "2024-05-01T25", "2024-05-01T12:30:00 CEST"])
def test_times_the_api_refuses(text):
    with pytest.raises(ValueError, match="expected an ISO 8601 date or time"):
        check_time(text)
    with pytest.raises(ValueError):
        build_filter(since=text)
