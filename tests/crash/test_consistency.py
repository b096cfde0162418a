"""Finding and repairing what interrupted uploads and lost data leave, in real stores.

Each leftover is planted by really writing into the stores (`Planter`), on the embedded
backends and on a Milvus server + PostgreSQL + S3.
"""

from __future__ import annotations

import time

import pytest

from phantoscope.engine import consistency, journal
from phantoscope.storage.meta import UploadAbandonedError

HOUR = 3600.0


def kinds(findings: consistency.Findings) -> dict[str, int]:
    return {problem.kind: problem.count for problem in findings.problems(0) if problem.count}


def test_healthy_stores_are_clean_and_leave_no_journal(stores, planter):
    planter.upload(3)
    planter.upload(1)
    assert stores.meta.pending_uploads() == []
    findings = consistency.scan(stores, grace_s=0)
    assert findings.clean and kinds(findings) == {}
    assert stores.meta.count_entities("photos") == 4


def test_interrupted_upload_is_left_alone_while_young_then_repaired(stores, planter):
    kept = planter.upload(2)
    cut = planter.upload(3, commit=False)
    assert planter.vector_ids() == set(kept.vector_ids + cut.vector_ids)

    young = consistency.scan(stores, grace_s=HOUR)
    assert young.clean  # it may be an upload still running on another replica
    assert journal.repair_interrupted(stores, grace_s=HOUR).uploads == 0
    assert planter.image_keys() == set(kept.keys + cut.keys)

    findings = consistency.scan(stores, grace_s=0)
    assert kinds(findings) == {"interrupted_uploads": 1}  # not counted again as orphans
    (interrupted,) = findings.interrupted
    assert (interrupted.upload.id, interrupted.objects_written,
            interrupted.vectors_written) == (cut.journal, 3, 3)

    repaired = journal.repair_interrupted(stores, grace_s=0)
    assert (repaired.uploads, repaired.objects, repaired.vectors) == (1, 3, 3)
    assert planter.vector_ids() == set(kept.vector_ids)
    assert planter.image_keys() == set(kept.keys)
    assert stores.meta.pending_uploads() == []
    assert consistency.scan(stores, grace_s=0).clean


def test_an_upload_claimed_by_a_repair_can_no_longer_commit(stores, planter):
    slow = planter.upload(1, commit=False)
    assert journal.repair_interrupted(stores, grace_s=0).uploads == 1  # taken for interrupted
    with pytest.raises(UploadAbandonedError, match="taken for interrupted"):
        planter.commit(slow)
    assert stores.meta.count_entities("photos") == 0  # nothing points at what was removed
    planter.upload(1)
    assert stores.meta.count_entities("photos") == 1
    assert consistency.scan(stores, grace_s=0).clean


def test_vectors_and_images_without_rows_are_found_by_age_and_removed(stores, planter):
    kept = planter.upload(2)
    old_vectors = [planter.old_id(HOUR), planter.old_id(2 * HOUR)]
    planter.vector(*old_vectors)
    old_image = planter.image()
    foreign = planter.image("holiday.jpg")  # not a key Phantoscope makes: never touched
    time.sleep(3)  # the image store's clock says these are older than the grace below
    young_vector = planter.old_id(0)
    planter.vector(young_vector)
    young_image = planter.image()

    findings = consistency.scan(stores, grace_s=2)
    assert kinds(findings) == {"vectors_without_rows": 2, "images_without_rows": 1}
    assert findings.orphan_vectors == {planter.collection: sorted(old_vectors)}
    assert findings.orphan_objects == {planter.bucket: [old_image]}
    examples = {p.kind: p.examples for p in findings.problems(1)}
    assert examples["vectors_without_rows"] == [f"{planter.collection}: {min(old_vectors)}"]

    repaired = consistency.repair(stores, findings)
    assert (repaired.vectors, repaired.objects, repaired.entities) == (2, 1, 0)
    assert planter.vector_ids() == {*kept.vector_ids, young_vector}
    assert planter.image_keys() == {*kept.keys, foreign, young_image}

    now = consistency.scan(stores, grace_s=0)  # only the young ones are left
    assert now.orphan_vectors == {planter.collection: [young_vector]}
    assert now.orphan_objects == {planter.bucket: [young_image]}
    consistency.repair(stores, now)
    assert consistency.scan(stores, grace_s=0).clean
    assert stores.meta.count_entities("photos") == 2


def test_entities_whose_vectors_or_image_are_gone_are_deleted_with_what_is_left(
    stores, planter
):
    healthy = planter.upload(1)
    no_vector = planter.upload(1)
    no_image = planter.upload(1)
    stores.vectors.delete(planter.collection, no_vector.vector_ids)
    stores.objects.delete(planter.bucket, no_image.keys[0])

    findings = consistency.scan(stores, grace_s=HOUR)  # no grace for rows: they committed
    assert kinds(findings) == {"entities_missing_vectors": 1, "entities_missing_images": 1}
    broken = {entity.object_key: entity for entity in findings.broken}
    assert broken[no_vector.keys[0]].missing_vectors
    assert not broken[no_vector.keys[0]].missing_object
    assert broken[no_image.keys[0]].stored_vectors == {planter.collection: no_image.vector_ids}

    assert consistency.repair(stores, findings).entities == 2
    assert stores.meta.count_entities("photos") == 1
    assert planter.vector_ids() == set(healthy.vector_ids)
    assert planter.image_keys() == set(healthy.keys)
    assert stores.meta.row_counts()["vectors"] == 1
    assert consistency.scan(stores, grace_s=0).clean
