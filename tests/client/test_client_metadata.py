"""Names, attributes and EXIF through `phantoscope.client`: given at upload (one image, a
batch, a URL), changed with `entities.update`, and filtered on in searches and listings."""

from __future__ import annotations

import pytest

from image_files import with_exif
from phantoscope.client import Entity, PhantoscopeClient, PhantoscopeError, Upload
from photos import edited_copy, jpeg, photo

CANON = ("Canon", "Canon EOS 5D")


def names(entities: list[Entity]) -> list[str | None]:
    return [entity.name for entity in entities]


def test_names_attributes_exif_and_filters(client: PhantoscopeClient, gallery, tmp_path,
                                           image_host):
    app = gallery.app
    # One image from a file: named by the file, with EXIF read by the server.
    coins_file = tmp_path / "coins.jpg"
    coins_file.write_bytes(with_exif(photo("coins"), "2019:07:14 10:00:00", CANON))
    (coins,) = client.upload(app, coins_file, attributes={"category": "money", "price": 3})
    assert coins.name == "coins.jpg"
    assert coins.attributes == {"category": "money", "price": 3}
    assert coins.exif["camera"] == "Canon EOS 5D"
    assert coins.exif["taken_at"].startswith("2019-07-14T10:00:00")
    assert (coins.exif["width"], coins.exif["height"]) == photo("coins").size
    assert coins.taken_at is not None and coins.taken_at.year == 2019
    # Bytes with a name; a URL named by its last path segment.
    (clock,) = client.upload(app, jpeg(photo("clock")), name="kitchen/clock.jpg")
    assert (clock.name, clock.attributes, clock.taken_at) == ("kitchen/clock.jpg", {}, None)
    assert "camera" not in clock.exif and clock.exif["width"] == photo("clock").width
    (tmp_path / "horse.jpg").write_bytes(jpeg(photo("horse")))
    (horse,) = client.upload(app, f"{image_host}/horse.jpg", attributes={"category": "animals"})
    assert (horse.name, horse.attributes) == ("horse.jpg", {"category": "animals"})

    # A batch sharing attributes goes as multipart parts named by each image's name...
    space = client.upload_batch(app, [
        Upload(with_exif(photo("rocket"), "2024:03:01 09:00:00"), name="space/rocket.jpg"),
        Upload(with_exif(photo("astronaut"), "2024:08:02 18:30:00"), name="space/astronaut.jpg"),
    ], attributes={"category": "space", "tags": ["red", "white"]})
    assert (space.imported, space.failed) == (2, 0)
    rocket, astronaut = (item.entity for item in space.results)
    assert rocket is not None and astronaut is not None
    assert (rocket.name, astronaut.name) == ("space/rocket.jpg", "space/astronaut.jpg")
    assert rocket.attributes == {"category": "space", "tags": ["red", "white"]}
    assert rocket.exif["taken_at"].startswith("2024-03-01T09:00:00")
    # ...one with attributes of their own (and a name no part header carries) as JSON.
    pets = client.upload_batch(app, [
        Upload(jpeg(photo("chelsea")), name='cats/"chelsea".jpg', attributes={"category": "pets"}),
        Upload(jpeg(photo("coffee")), name="coffee.jpg", attributes={"category": "drinks"}),
    ])
    chelsea, coffee = (item.entity for item in pets.results)
    assert chelsea is not None and coffee is not None
    assert (chelsea.name, chelsea.attributes) == ('cats/"chelsea".jpg', {"category": "pets"})
    assert (coffee.name, coffee.attributes) == ("coffee.jpg", {"category": "drinks"})
    assert client.entities.get(app, chelsea.id) == chelsea

    # Search with a filter, as JSON (a URL query) and as multipart (bytes): only matches.
    (tmp_path / "query.jpg").write_bytes(edited_copy(photo("rocket")))
    query = f"{image_host}/query.jpg"
    hits = client.search(app, query, topk=5, filter={"attributes.category": "space"})
    assert [hit.id for hit in hits] == [rocket.id, astronaut.id]
    assert hits[0].name == "space/rocket.jpg" and hits[0].attributes == rocket.attributes
    assert hits[0].exif == rocket.exif
    before_2020 = client.search(app, edited_copy(photo("rocket")), topk=5,
                                filter={"taken_at": {"lt": "2020-01-01"}})
    assert [hit.id for hit in before_2020] == [coins.id]
    hits = client.search(app, edited_copy(photo("rocket")), topk=5, filter={
        "name": {"prefix": "space/"}, "taken_at": {"gte": "2024-06-01"}})
    assert [hit.id for hit in hits] == [astronaut.id]
    assert len(client.search(app, query, topk=10)) == 7  # no filter: everything

    # Listing with a filter: matching entities, by id (ids made in the same millisecond are
    # in no particular order), a page at a time.
    shown = client.entities.list(app, num=10, filter={"attributes.tags": "red"})
    assert [e.id for e in shown] == sorted([rocket.id, astronaut.id])
    listed = client.entities.list(app, num=2, page=1, filter={
        "attributes.category": {"in": ["money", "animals", "pets", "drinks"]}})
    assert [e.id for e in listed] == sorted([coins.id, horse.id, chelsea.id, coffee.id])[2:]
    every = list(client.entities.iterate(app, page_size=1, filter={"camera": {"exists": True}}))
    assert names(every) == ["coins.jpg"]
    assert client.entities.list(app, filter={"attributes.category": "none"}) == []

    # update: a new name and attributes (replaced wholly), seen by gets, lists and searches.
    moved = client.entities.update(app, coins.id, name="money/coins.jpg",
                                   attributes={"category": "coins"})
    assert (moved.name, moved.attributes, moved.exif) == (
        "money/coins.jpg", {"category": "coins"}, coins.exif)
    assert client.entities.get(app, coins.id) == moved
    renamed = client.entities.update(app, coins.id, name="coins-2019.jpg")
    assert (renamed.name, renamed.attributes) == ("coins-2019.jpg", {"category": "coins"})
    assert client.entities.update(app, clock.id, attributes={"room": "kitchen"}).name == \
        "kitchen/clock.jpg"
    hits = client.search(app, query, topk=5, filter={"attributes.category": "coins"})
    assert [(hit.id, hit.name) for hit in hits] == [(coins.id, "coins-2019.jpg")]
    assert client.search(app, query, topk=5, filter={"attributes.category": "money"}) == []
    assert names(client.entities.list(app, filter={"attributes.room": "kitchen"})) == [
        "kitchen/clock.jpg"]
    with pytest.raises(ValueError, match="give name, attributes or both"):
        client.entities.update(app, coins.id)

    # Bad filters and attributes: 400s that name the fault, and nothing changes.
    count = client.applications.count(app)
    with pytest.raises(PhantoscopeError) as bad:
        client.search(app, query, filter={"attributes.category": {"like": "s%"}})
    assert (bad.value.status, bad.value.code) == (400, "INVALID_FILTER")
    assert "like" in bad.value.message
    with pytest.raises(PhantoscopeError) as bad:
        client.search(app, jpeg(photo("moon")), filter={"width": "wide"})
    assert bad.value.code == "INVALID_FILTER" and "width" in bad.value.message
    with pytest.raises(PhantoscopeError) as bad:
        client.entities.list(app, filter={"colour": "red"})
    assert bad.value.code == "INVALID_FILTER" and "colour" in bad.value.message
    with pytest.raises(PhantoscopeError) as bad:
        client.upload(app, jpeg(photo("moon")), attributes={"bad-key": 1})
    assert bad.value.code == "INVALID_ATTRIBUTES" and "bad-key" in bad.value.message
    with pytest.raises(PhantoscopeError) as bad:
        client.entities.update(app, coins.id, attributes={"tags": [1, 2]})
    assert bad.value.code == "INVALID_ATTRIBUTES" and "tags" in bad.value.message
    assert client.applications.count(app) == count
    assert client.entities.get(app, coins.id) == renamed
