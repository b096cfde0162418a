"""Whether the three stores agree, and repairing where they do not.

Every entity row needs its stored image and all its vectors; every stored vector, and every
image Phantoscope stored (keys ``<application>-<32 hex digits>``), needs an entity row; no
upload may stay half-done. What a crash can leave is found in the upload journal (see
engine/journal.py); the full scan here also finds whatever else went astray. Leftovers younger
than the grace time are left alone: they may belong to an upload still running on another
replica. Vector ids tell their age, images their store's last-modified time.

The scan reads the journal, then the SQL rows, then the vector and object stores: a row
committed after its vectors and image were written is never read before them.
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from dataclasses import dataclass, field

from phantoscope.engine import journal
from phantoscope.engine.context import Stores
from phantoscope.engine.ids import id_time
from phantoscope.storage.meta import PendingUploadRow

DELETE_BATCH = 10_000  # vector ids per delete call


@dataclass(frozen=True)
class InterruptedUpload:
    upload: PendingUploadRow
    objects_written: int  # of the images it named, how many are in the object store
    vectors_written: int


@dataclass(frozen=True)
class BrokenEntity:
    """An entity row that cannot be served: its image or some of its vectors are gone."""

    id: int
    application: str
    bucket: str
    object_key: str
    stored_vectors: dict[str, list[int]]  # what is left of its vectors, by collection
    missing_vectors: bool
    missing_object: bool


@dataclass(frozen=True)
class Problem:
    kind: str
    description: str
    count: int
    examples: list[str]


@dataclass
class Findings:
    interrupted: list[InterruptedUpload] = field(default_factory=list)
    orphan_vectors: dict[str, list[int]] = field(default_factory=dict)  # by collection
    orphan_objects: dict[str, list[str]] = field(default_factory=dict)  # by bucket
    broken: list[BrokenEntity] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.interrupted or self.orphan_vectors or self.orphan_objects
                    or self.broken)

    def problems(self, examples: int) -> list[Problem]:
        """Each kind of problem with its count and up to ``examples`` examples."""
        vectors = [f"{c}: {i}" for c, ids in self.orphan_vectors.items() for i in ids]
        objects = [f"{b}/{k}" for b, keys in self.orphan_objects.items() for k in keys]
        uploads = [
            f"upload {u.upload.id} into {u.upload.application} at "
            f"{u.upload.created_at:%Y-%m-%d %H:%M:%S} UTC: {u.objects_written} of "
            f"{len(u.upload.object_keys)} images and {u.vectors_written} of "
            f"{sum(len(ids) for ids in u.upload.vectors.values())} vectors written"
            for u in self.interrupted
        ]
        no_vectors = [f"{e.application}/{e.id}" for e in self.broken if e.missing_vectors]
        no_object = [f"{e.application}/{e.id} ({e.bucket}/{e.object_key})"
                     for e in self.broken if e.missing_object]
        found = [
            ("interrupted_uploads", "uploads cut short (journal rows older than the grace)",
             uploads),
            ("vectors_without_rows", "vectors no entity row uses", vectors),
            ("images_without_rows", "stored images no entity row uses", objects),
            ("entities_missing_vectors", "entities whose vectors are missing", no_vectors),
            ("entities_missing_images", "entities whose stored image is missing", no_object),
        ]
        return [Problem(kind, description, len(items), items[:examples])
                for kind, description, items in found]


def scan(stores: Stores, grace_s: float) -> Findings:
    """Compare the stores; leftovers younger than ``grace_s`` seconds are not reported."""
    cutoff = time.time() - grace_s
    pending = stores.meta.pending_uploads()
    stale = {row.id for row in journal.interrupted(stores, grace_s)}
    journaled_keys = {(row.bucket, key) for row in pending for key in row.object_keys}
    journaled_ids = {i for row in pending for ids in row.vectors.values() for i in ids}

    buckets = {app.name: app.bucket for app in stores.meta.list_applications()}
    collections = {pipeline.name: pipeline.collection for pipeline in stores.meta.list_pipelines()}
    entity_rows = stores.meta.all_entity_objects()
    vector_rows = stores.meta.all_vector_rows()

    stored_ids = {
        collection: set(stores.vectors.ids(collection))
        if stores.vectors.has_collection(collection) else set()
        for collection in set(collections.values())
    }
    stored_keys = {
        bucket: stores.objects.modified_times(bucket) if stores.objects.bucket_exists(bucket)
        else {}
        for bucket in set(buckets.values())
    }

    findings = Findings()
    for row in pending:
        if row.id in stale:
            findings.interrupted.append(InterruptedUpload(
                row,
                sum(key in stored_keys.get(row.bucket, {}) for key in row.object_keys),
                sum(i in stored_ids.get(collection, set())
                    for collection, ids in row.vectors.items() for i in ids),
            ))

    row_ids = {vector_id for vector_id, _, _ in vector_rows}
    for collection, ids in stored_ids.items():
        orphans = sorted(i for i in ids - row_ids - journaled_ids if id_time(i) <= cutoff)
        if orphans:
            findings.orphan_vectors[collection] = orphans

    _find_orphan_objects(findings, buckets, entity_rows, stored_keys, journaled_keys, cutoff)
    _find_broken(findings, buckets, collections, entity_rows, vector_rows, stored_ids,
                 stored_keys)
    return findings


def _find_orphan_objects(
    findings: Findings, buckets: dict[str, str], entity_rows: list[tuple[int, str, str]],
    stored_keys: dict[str, dict[str, float]], journaled_keys: set[tuple[str, str]],
    cutoff: float,
) -> None:
    used = {(buckets.get(application), key) for _, application, key in entity_rows}
    apps_of: dict[str, list[str]] = defaultdict(list)
    for application, bucket in buckets.items():
        apps_of[bucket].append(application)
    for bucket, times in stored_keys.items():
        # Only keys Phantoscope makes: a bucket may hold other files of its owner's.
        ours = re.compile(
            "(?:" + "|".join(re.escape(app) for app in apps_of[bucket]) + ")-[0-9a-f]{32}")
        orphans = sorted(
            key for key, modified in times.items()
            if modified <= cutoff and (bucket, key) not in used
            and (bucket, key) not in journaled_keys and ours.fullmatch(key)
        )
        if orphans:
            findings.orphan_objects[bucket] = orphans


def _find_broken(
    findings: Findings, buckets: dict[str, str], collections: dict[str, str],
    entity_rows: list[tuple[int, str, str]], vector_rows: list[tuple[int, str, int]],
    stored_ids: dict[str, set[int]], stored_keys: dict[str, dict[str, float]],
) -> None:
    vectors_of: dict[int, list[tuple[str | None, int]]] = defaultdict(list)
    for vector_id, pipeline, entity_id in vector_rows:
        vectors_of[entity_id].append((collections.get(pipeline), vector_id))
    for entity_id, application, key in entity_rows:
        bucket = buckets[application]
        stored: dict[str, list[int]] = defaultdict(list)
        missing_vectors = not vectors_of[entity_id]  # an upload always stores a vector
        for collection, vector_id in vectors_of[entity_id]:
            if collection is not None and vector_id in stored_ids[collection]:
                stored[collection].append(vector_id)
            else:
                missing_vectors = True
        missing_object = key not in stored_keys[bucket]
        if missing_vectors or missing_object:
            findings.broken.append(BrokenEntity(
                entity_id, application, bucket, key, dict(stored), missing_vectors,
                missing_object))


@dataclass(frozen=True)
class Repair:
    uploads: int
    vectors: int
    objects: int
    entities: int


def repair(stores: Stores, findings: Findings) -> Repair:
    """Remove what ``findings`` names: interrupted uploads' leftovers, vectors and images
    without rows, and entities that cannot be served, with whatever is left of them."""
    uploads = journal.repair_uploads(stores, [u.upload for u in findings.interrupted])
    for collection, ids in findings.orphan_vectors.items():
        _delete_vectors(stores, collection, ids)
    for bucket, keys in findings.orphan_objects.items():
        for key in keys:
            stores.objects.delete(bucket, key)
    for entity in findings.broken:
        for collection, ids in entity.stored_vectors.items():
            _delete_vectors(stores, collection, ids)
        if not entity.missing_object:
            stores.objects.delete(entity.bucket, entity.object_key)
    stores.meta.delete_entities([entity.id for entity in findings.broken])
    return Repair(
        uploads=uploads.uploads,
        vectors=sum(len(ids) for ids in findings.orphan_vectors.values()),
        objects=sum(len(keys) for keys in findings.orphan_objects.values()),
        entities=len(findings.broken),
    )


def _delete_vectors(stores: Stores, collection: str, ids: list[int]) -> None:
    for start in range(0, len(ids), DELETE_BATCH):
        stores.vectors.delete(collection, ids[start:start + DELETE_BATCH])
