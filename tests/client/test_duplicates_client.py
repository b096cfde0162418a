"""The Python client's duplicates: `duplicate_of` on upload answers (single, batch as files
and as JSON), `reject_duplicates`, listing, resolving and dismissing groups."""

from __future__ import annotations

import io

import pytest

from phantoscope.client import PhantoscopeError, Upload
from phantoscope.duplicate_set import COPY_EDITS
from photos import photo


def _png(name: str) -> bytes:
    buffer = io.BytesIO()
    photo(name).save(buffer, format="PNG")
    return buffer.getvalue()


def test_uploads_groups_resolve_and_dismiss(client, gallery):
    app = gallery.app
    [coffee] = client.upload(app, _png("coffee"), name="coffee.png")
    assert coffee.duplicate_of is None
    [copy] = client.upload(app, COPY_EDITS["jpeg-50"](photo("coffee")).data)
    assert copy.duplicate_of is not None and copy.duplicate_of.id == coffee.id
    assert 0.5 < copy.duplicate_of.score <= 1.0

    with pytest.raises(PhantoscopeError) as refused:
        client.upload(app, COPY_EDITS["mirrored"](photo("coffee")).data, reject_duplicates=True)
    assert (refused.value.status, refused.value.code) == (409, "DUPLICATE")
    assert f"copy of entity {coffee.id} " in refused.value.message or \
        f"copy of entity {copy.id} " in refused.value.message  # the closest of the two

    as_files = client.upload_batch(
        app, [_png("clock"), COPY_EDITS["resized-50"](photo("clock")).data])
    clock, clock_copy = (item.entity for item in as_files.results)
    assert clock.duplicate_of is None and clock_copy.duplicate_of.id == clock.id
    as_json = client.upload_batch(app, [Upload(COPY_EDITS["brighter"](photo("clock")).data,
                                               attributes={"n": 1}),
                                        Upload(_png("horse"), attributes={"n": 2})],
                                  reject_duplicates=True)
    assert as_json.results[0].error.code == "DUPLICATE" and as_json.results[0].entity is None
    assert as_json.results[1].entity.duplicate_of is None

    page = client.duplicates.list(app)
    assert (page.kind, page.total, page.page) == ("copies", 2, 0)
    groups = {group.keep: group for group in client.duplicates.iterate(app, page_size=1)}
    assert set(groups) == {coffee.id, clock.id}
    first = groups[coffee.id]
    assert first.kind == "copies" and first.reason
    assert {member.id for member in first.entities} == {coffee.id, copy.id}
    kept = next(member for member in first.entities if member.id == coffee.id)
    assert (kept.name, kept.width, kept.height, kept.format, kept.score) == \
        ("coffee.png", 600, 400, "PNG", 1.0)
    assert kept.image_url.startswith(client.url)

    done = client.duplicates.resolve(app, first.id, keep=[coffee.id], delete=[copy.id])
    assert (done.group, done.action, done.kept, done.deleted) == \
        (first.id, "resolved", (coffee.id,), (copy.id,))
    dismissed = client.duplicates.dismiss(app, groups[clock.id].id)
    assert dismissed.action == "dismissed" and dismissed.deleted == ()
    assert client.duplicates.list(app).groups == ()
    with pytest.raises(PhantoscopeError) as gone:
        client.duplicates.dismiss(app, "copies-0123456789abcdef")
    assert (gone.value.status, gone.value.code) == (404, "GROUP_NOT_FOUND")


def test_uploads_without_the_copy_check_are_grouped_by_the_listing(client, gallery):
    app = gallery.app
    [moon] = client.upload(app, _png("moon"), name="moon.png", check_duplicates=False)
    batch = client.upload_batch(app, [COPY_EDITS["jpeg-50"](photo("moon")).data,
                                      _png("rocket")], check_duplicates=False)
    copy = batch.results[0].entity
    assert moon.duplicate_of is None and copy.duplicate_of is None  # not looked for
    [group] = client.duplicates.list(app).groups
    assert {member.id for member in group.entities} == {moon.id, copy.id}

    with pytest.raises(PhantoscopeError) as refused:
        client.upload(app, _png("horse"), reject_duplicates=True, check_duplicates=False)
    assert (refused.value.status, refused.value.code) == (400, "INVALID_REQUEST")
    assert client.applications.count(app) == 3
