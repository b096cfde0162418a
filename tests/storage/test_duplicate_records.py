"""The duplicate tables through storage.duplicate_records on SQLite, MariaDB and PostgreSQL:
descriptors read back without thumbnails, entities lacking one found, and a decision recorded
with its deletions in one transaction, all or none."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from phantoscope.storage.duplicate_records import DuplicateRecords, EntitiesGoneError
from phantoscope.storage.duplicate_rows import DecisionRow, DescriptorRow
from phantoscope.storage.meta import ApplicationRow, EntityRow, LabelRow, MetaStore, VectorRow

HASHES = {f"hash_{turn}": (-1) ** turn * (2**62 + turn) for turn in range(8)}


def _entity(entity: int, application: str = "album") -> EntityRow:
    row = EntityRow(id=entity, application=application, field="photo", object_key=f"k{entity}",
                    content_type="image/jpeg", sha256="a" * 64, size=10)
    row.vectors = [VectorRow(id=entity * 10, pipeline="pipe")]
    row.labels = [LabelRow(label="n1", application=application, field="photo", score=0.5)]
    return row


def _descriptor(entity: int, application: str = "album") -> DescriptorRow:
    return DescriptorRow(entity_id=entity, application=application, sha256="b" * 64,
                         thumbnail=bytes([entity]) * 4096, width=entity, height=2 * entity,
                         format="JPEG", quality=80, size=1000 + entity, **HASHES)


@pytest.fixture
def records(database):
    _, url = database
    meta = MetaStore(url)
    meta.add(ApplicationRow(name="album", bucket="b"), "adding an application")
    meta.add(ApplicationRow(name="other", bucket="b"), "adding an application")
    # entities 1-3 described in the upload's transaction, 4 and 5 stored before descriptors
    meta.add_entities([*(_entity(each) for each in range(1, 6)),
                       *(_descriptor(each) for each in range(1, 4)),
                       _entity(9, "other"), _descriptor(9, "other")])
    yield DuplicateRecords(meta)
    meta.close()


def test_descriptors_thumbnails_and_the_entities_lacking_one(records):
    found = records.descriptors("album")
    assert [(each.entity_id, each.width, each.height, each.quality, each.size)
            for each in found] == [(1, 1, 2, 80, 1001), (2, 2, 4, 80, 1002), (3, 3, 6, 80, 1003)]
    assert found[0].hashes == tuple(HASHES.values())
    assert [each.entity_id for each in records.descriptors("album", [3, 9, 2])] == [2, 3]
    assert records.descriptor_ids("album") == [1, 2, 3]
    assert records.thumbnails([2, 9, 7]) == {2: bytes([2]) * 4096, 9: bytes([9]) * 4096}
    assert records.missing_descriptors("album", 0, 10) == [(4, "k4"), (5, "k5")]
    assert records.missing_descriptors("album", 4, 10) == [(5, "k5")]
    assert records.whole_vectors("album", [1, 9]) == [(1, "pipe", 10)]
    # a descriptor made after its entity was deleted is skipped, the others kept
    records.meta.delete_entity(5)
    assert records.add_descriptors([_descriptor(4), _descriptor(5)]) == 1
    assert records.missing_descriptors("album", 0, 10) == []


def test_a_decision_deletes_its_entities_with_their_rows_or_nothing(records):
    records.decide(DecisionRow(application="album", kind="copies", action="resolved",
                               members=[1, 2, 3], kept=[1], deleted=[2, 3]), [2, 3])
    assert [e.id for e in records.meta.list_entities("album", 0, 10)] == [1, 4, 5]
    assert records.descriptor_ids("album") == [1]
    with records.meta.session("reading rows") as session:
        assert sorted(session.scalars(select(VectorRow.entity_id))) == [1, 4, 5, 9]
        assert sorted(session.scalars(select(LabelRow.entity_id))) == [1, 4, 5, 9]
    [decision] = records.decisions("album", "copies")
    assert (decision.members, decision.kept, decision.deleted, decision.action) == \
        ([1, 2, 3], [1], [2, 3], "resolved")
    assert records.decisions("album", "similar") == []

    # entity 2 is gone (and 9 is another application's): nothing happens
    with pytest.raises(EntitiesGoneError):
        records.decide(DecisionRow(application="album", kind="similar", action="resolved",
                                   members=[1, 2, 4], kept=[1], deleted=[2, 4]), [2, 4])
    with pytest.raises(EntitiesGoneError):
        records.decide(DecisionRow(application="album", kind="similar", action="resolved",
                                   members=[4, 9], kept=[4], deleted=[9]), [9])
    assert [e.id for e in records.meta.list_entities("album", 0, 10)] == [1, 4, 5]
    assert [e.id for e in records.meta.list_entities("other", 0, 10)] == [9]
    assert records.decisions("album", "similar") == []
