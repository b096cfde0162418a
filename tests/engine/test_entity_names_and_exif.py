"""Entity names as requests give them or as files and URLs suggest them, and EXIF kept at
intake with taken_at as a moment that agrees with its text."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest
from PIL import Image

from phantoscope.engine.entity_names import check_name, default_name, name_from_url
from phantoscope.engine.errors import BadRequestError
from phantoscope.engine.photo_exif import exif_at_intake


@pytest.mark.parametrize("name", ["a", "holidays/2024/beach.jpg", "café \u00e9t\u00e9 \U0001f600",
                                  "n" * 1024, 'quote"d\\name'])
def test_names_within_the_rule_are_kept(name):
    assert check_name(name) == name == default_name(name)


@pytest.mark.parametrize(("value", "says"), [
    ("n" * 1025, "1025 characters"), ("a\nb", "U+000A"), ("a\x00b", "U+0000"),
    ("a\x7fb", "U+007F"), ("a\x85b", "U+0085"), ("a\ud800b", "lone surrogate"),
    (7, "not int"), (["a"], "not list"),
])
def test_names_outside_the_rule_are_refused_when_given_and_dropped_as_defaults(value, says):
    with pytest.raises(BadRequestError) as raised:
        check_name(value, "images[2].name")
    assert raised.value.code == "INVALID_REQUEST"
    assert raised.value.message.startswith("images[2].name: ") and says in raised.value.message
    if isinstance(value, str):
        assert default_name(value) is None


def test_no_name_is_none():
    assert check_name(None) is None and check_name("") is None and default_name(None) is None


@pytest.mark.parametrize(("url", "name"), [
    ("https://example.com/photos/caf%C3%A9%20au%20lait.jpg?size=2#x", "café au lait.jpg"),
    ("https://example.com/a/b.png", "b.png"),
    ("https://example.com/a/", None),
    ("https://example.com", None),
    ("https://example.com/a%00b.jpg", None),
    ("https://example.com/%FF.jpg", "\ufffd.jpg"),
])
def test_a_url_names_its_entity_by_its_last_path_segment(url, name):
    assert name_from_url(url) == name


def _jpeg(taken: str | None, offset: str | None = None) -> bytes:
    exif = Image.Exif()
    if taken:
        details = exif.get_ifd(0x8769)
        details[0x9003] = taken
        if offset:
            details[0x9011] = offset
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), "blue").save(buffer, format="JPEG", exif=exif)
    return buffer.getvalue()


@pytest.mark.parametrize(("taken", "offset", "text", "moment"), [
    ("2024:05:01 12:30:00", "+02:00", "2024-05-01T12:30:00+02:00",
     datetime(2024, 5, 1, 10, 30, tzinfo=UTC)),
    ("2024:05:01 12:30:00", None, "2024-05-01T12:30:00+00:00",
     datetime(2024, 5, 1, 12, 30, tzinfo=UTC)),
    ("2023:12:31 23:00:00", "-05:00", "2023-12-31T23:00:00-05:00",
     datetime(2024, 1, 1, 4, 0, tzinfo=UTC)),
])
def test_taken_at_is_kept_as_text_with_an_offset_and_as_the_same_utc_moment(
        taken, offset, text, moment):
    photo = exif_at_intake(_jpeg(taken, offset))
    assert photo.exif == {"taken_at": text, "width": 40, "height": 30}
    assert photo.taken_at == moment and photo.taken_at.tzinfo is UTC


@pytest.mark.parametrize("taken", [None, "1601:01:01 00:00:00", "0000:00:00 00:00:00"])
def test_no_usable_time_leaves_taken_at_out(taken):
    photo = exif_at_intake(_jpeg(taken))
    assert (photo.exif, photo.taken_at) == ({"width": 40, "height": 30}, None)


def test_bytes_that_are_no_image_have_no_exif():
    photo = exif_at_intake(b"not an image")
    assert (photo.exif, photo.taken_at) == ({}, None)
