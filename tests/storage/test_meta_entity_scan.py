"""Entity metadata in SQL on SQLite, MariaDB and PostgreSQL: name, attributes, EXIF and
taken_at written and read back (taken_at as the same UTC moment whatever the database or
its session's time zone), read in id order under a narrowing (a name prefix, taken_at
bounds, labels) that never leaves out a row it should keep, and updated."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from phantoscope.storage.meta import (
    ApplicationRow,
    EntityNarrowing,
    EntityRow,
    LabelRow,
    MetaStore,
    VectorRow,
)

NAMES = ["holidays/beach.jpg", "holidays/Beach2.jpg", "holidays%/x.jpg", "holidays_a.jpg",
         "holidaysX.jpg", "HOLIDAYS/caps.jpg", "other/holidays/z.jpg", "h", None,
         "holidays/\U0010ffff.jpg", "naïve/été.jpg", "a!b.jpg", "a!!b.jpg"]
BASE = datetime(2024, 1, 1, tzinfo=UTC)
TABBY, TIGER, ESPRESSO = "n02123045", "n02123159", "n07920052"


def _labels(index: int) -> list[tuple[str, float]]:
    """Entity ``index``'s labels: a sure tabby, an unsure one, an espresso, or none."""
    return [[(TABBY, 0.6), (ESPRESSO, 0.2)], [(TABBY, 0.05)], [(TIGER, 0.3)], []][index % 4]


def _url(kind: str, url: str) -> str:
    """PostgreSQL's session in Tokyo time: a moment must not move with it."""
    return url + "?options=-c%20timezone%3DAsia/Tokyo" if kind == "postgres" else url


@pytest.fixture
def meta(database):
    kind, url = database
    store = MetaStore(_url(kind, url))
    store.add(ApplicationRow(name="app", bucket="b"), "adding an application")
    store.add(ApplicationRow(name="other", bucket="b"), "adding an application")
    rows = []
    for index, name in enumerate(NAMES):
        taken = None if index % 4 == 3 else BASE + timedelta(days=index, seconds=index)
        rows.append(EntityRow(
            id=index + 1, application="app", field="image", object_key=f"k{index}",
            content_type="image/jpeg", sha256="0" * 64, size=1, name=name,
            attributes={"n": index, "tags": ["a", "b"]} if index % 2 else None,
            exif={"camera": "Canon", "width": 10} if index % 3 == 0 else None,
            # written with a zone other than UTC: the moment is what counts
            taken_at=taken.astimezone(timezone(timedelta(hours=-5))) if taken else None,
            vectors=[VectorRow(id=1000 + index, pipeline="p")],
            labels=[LabelRow(label=label, application="app", field="image", score=score)
                    for label, score in _labels(index)]))
    rows.append(EntityRow(id=100, application="other", field="image", object_key="o",
                          content_type="image/jpeg", sha256="0" * 64, size=1,
                          name="holidays/beach.jpg", taken_at=BASE,
                          labels=[LabelRow(label=TABBY, application="other", field="image",
                                           score=0.9)]))
    store.add_entities(rows)
    yield store
    store.close()


def _taken(index: int) -> datetime | None:
    return None if index % 4 == 3 else BASE + timedelta(days=index, seconds=index)


def test_metadata_is_read_back_as_written_and_taken_at_in_utc(meta):
    for index, name in enumerate(NAMES):
        row = meta.get_entity("app", index + 1)
        assert row.name == name
        assert row.attributes == ({"n": index, "tags": ["a", "b"]} if index % 2 else None)
        assert row.exif == ({"camera": "Canon", "width": 10} if index % 3 == 0 else None)
        assert row.taken_at_utc == _taken(index)
        assert row.taken_at_utc is None or row.taken_at_utc.tzinfo is UTC


def _scan_all(meta: MetaStore, narrowing: EntityNarrowing, chunk: int) -> list[int]:
    ids: list[int] = []
    after = 0
    while True:
        rows = meta.scan_entities("app", after, chunk, narrowing)
        ids.extend(row.id for row in rows)
        if len(rows) < chunk:
            return ids
        after = rows[-1].id


@pytest.mark.parametrize("prefix", ["holidays/", "holidays%", "holidays_", "h", "naïve/",
                                    "a!", "a!!", "holidays/\U0010ffff", "zzz"])
def test_a_name_prefix_keeps_every_row_that_starts_with_it(meta, database, prefix):
    got = _scan_all(meta, EntityNarrowing(name_prefix=prefix), chunk=3)
    wanted = [i + 1 for i, name in enumerate(NAMES) if name and name.startswith(prefix)]
    assert got == sorted(got)
    assert set(wanted) <= set(got)  # a narrowing may keep more, never fewer
    if database[0] != "mariadb":  # MariaDB's collation ignores case: a superset there
        assert got == wanted
    else:
        assert all(NAMES[i - 1].lower().startswith(prefix.lower()) for i in got)


@pytest.mark.parametrize("bounds", [
    (("gte", BASE + timedelta(days=2)),),
    (("gt", BASE + timedelta(days=2, seconds=2)), ("lte", BASE + timedelta(days=8, seconds=8))),
    (("lt", BASE + timedelta(days=5)),),
    (("eq", BASE + timedelta(days=4, seconds=4)),),
    # the same bound written in another zone
    (("gte", (BASE + timedelta(days=6)).astimezone(timezone(timedelta(hours=9)))),),
])
def test_taken_at_bounds_select_exactly_the_moments_within(meta, bounds):
    compare = {"eq": lambda a, b: a == b, "gt": lambda a, b: a > b, "gte": lambda a, b: a >= b,
               "lt": lambda a, b: a < b, "lte": lambda a, b: a <= b}
    wanted = [i + 1 for i in range(len(NAMES))
              if _taken(i) is not None and all(compare[op](_taken(i), moment)
                                               for op, moment in bounds)]
    assert wanted
    assert _scan_all(meta, EntityNarrowing(taken_at=bounds), chunk=2) == wanted


@pytest.mark.parametrize("sets", [
    (frozenset({TABBY}),), (frozenset({TABBY, TIGER}),), (frozenset({ESPRESSO}),),
    (frozenset({TABBY, TIGER}), frozenset({ESPRESSO})), (frozenset({"n01440764"}),),
])
def test_labels_select_the_entities_holding_one_of_each_set_sure_enough(meta, sets):
    wanted = [i + 1 for i in range(len(NAMES))
              if all(any(label in classes and score >= 0.1 for label, score in _labels(i))
                     for classes in sets)]
    assert _scan_all(meta, EntityNarrowing(labels=sets, label_min_score=0.1), chunk=2) == \
        wanted


def test_an_update_sets_name_and_attributes_and_keeps_the_rest(meta):
    row = meta.update_entity("app", 2, {"name": "renamed", "attributes": {"k": "v"}})
    assert (row.name, row.attributes, [v.id for v in row.vectors]) == ("renamed", {"k": "v"},
                                                                        [1001])
    again = meta.get_entity("app", 2)
    assert (again.name, again.attributes, again.taken_at_utc) == ("renamed", {"k": "v"},
                                                                   _taken(1))
    assert meta.update_entity("app", 2, {"name": None}).name is None
    assert meta.get_entity("app", 2).attributes == {"k": "v"}
    assert meta.update_entity("other", 2, {"name": "x"}) is None  # not that app's entity
    assert meta.update_entity("app", 999, {"name": "x"}) is None
    with pytest.raises(ValueError):
        meta.update_entity("app", 2, {"sha256": "x"})
