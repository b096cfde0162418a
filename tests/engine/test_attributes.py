"""`engine.attributes`: what user attributes may hold, and the messages when they may not."""

from __future__ import annotations

import pytest

from phantoscope.engine.attributes import (
    MAX_ATTRIBUTES_BYTES,
    attributes_size,
    check_attributes,
    merge_attributes,
)
from phantoscope.engine.errors import BadRequestError


def test_valid_attributes_come_back_as_a_copy() -> None:
    given = {"color": "red", "n": 3, "ratio": 0.5, "hdr": False, "tags": ["a", "ünï"],
             "_x": "", "a" * 64: -2**63, "big": 2**63 - 1}
    checked = check_attributes(given)
    assert checked == given
    assert checked["tags"] is not given["tags"]
    assert check_attributes({}) == {}


@pytest.mark.parametrize(("value", "message"), [
    ([], "attributes must be a JSON object, not a list"),
    ("x", "attributes must be a JSON object, not a string"),
    (None, "attributes must be a JSON object, not null"),
    ({"1abc": 1}, "key '1abc' is not a valid attribute key"),
    ({"a-b": 1}, "key 'a-b' is not a valid attribute key"),
    ({"": 1}, "key '' is not a valid attribute key"),
    ({"a" * 65: 1}, "is not a valid attribute key"),
    ({"a.b": 1}, "key 'a.b'"),
    ({5: 1}, "key 5"),
    ({"x": None}, "attributes.x: values must be .* not null"),
    ({"x": {"y": 1}}, "attributes.x: values must be .* not an object"),
    ({"x": float("nan")}, "attributes.x: numbers must be finite"),
    ({"x": float("inf")}, "attributes.x: numbers must be finite"),
    ({"x": 2**63}, "attributes.x: integer .* outside the signed 64-bit range"),
    ({"tags": ["a", 1]}, r"attributes.tags\[1\]: lists may hold only strings, not int"),
    ({"tags": ["a", ["b"]]}, r"attributes.tags\[1\]: lists may hold only strings, not a list"),
    ({"s": "\ud800"}, "attributes.s: the string is not valid Unicode"),
])
def test_invalid_attributes_name_the_key_and_the_rule(value: object, message: str) -> None:
    with pytest.raises(BadRequestError, match=message) as caught:
        check_attributes(value)
    assert caught.value.code == "INVALID_ATTRIBUTES"
    assert caught.value.status == 400


def test_the_size_limit_is_64_kib_of_utf8_json() -> None:
    overhead = attributes_size({"k": ""})
    at_limit = {"k": "x" * (MAX_ATTRIBUTES_BYTES - overhead)}
    assert attributes_size(check_attributes(at_limit)) == MAX_ATTRIBUTES_BYTES
    with pytest.raises(BadRequestError, match=r"65537 bytes as JSON, over the limit of 65536"):
        check_attributes({"k": "x" * (MAX_ATTRIBUTES_BYTES - overhead + 1)})
    # counted in UTF-8 bytes, not characters: "é" is 2 bytes
    with pytest.raises(BadRequestError, match="over the limit"):
        check_attributes({"k": "é" * (MAX_ATTRIBUTES_BYTES // 2)})


def test_merge_sets_replaces_and_removes() -> None:
    current = {"a": 1, "b": "x", "c": ["t"]}
    assert merge_attributes(current, {"b": "y", "c": None, "d": True, "gone": None}) == {
        "a": 1, "b": "y", "d": True}
    assert current == {"a": 1, "b": "x", "c": ["t"]}
    assert merge_attributes(current, {}) == current


def test_merge_checks_the_patch_and_the_result() -> None:
    with pytest.raises(BadRequestError, match="attributes must be a JSON object, not a list"):
        merge_attributes({}, [])
    with pytest.raises(BadRequestError, match="key 'bad key'"):
        merge_attributes({}, {"bad key": None})
    with pytest.raises(BadRequestError, match=r"attributes\.x: values must be"):
        merge_attributes({}, {"x": {"nested": 1}})
    big = {"k": "x" * 40_000}
    with pytest.raises(BadRequestError, match="over the limit"):
        merge_attributes(big, {"j": "y" * 40_000})
