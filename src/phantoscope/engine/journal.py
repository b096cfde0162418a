"""The upload journal: what an upload is about to write, recorded before it writes anything.

An upload commits a journal row naming its object keys and vector ids, then writes the
objects and the vectors, then adds its entity rows and deletes the journal row in one
transaction (the undo of a failed upload deletes it too). A journal row left behind is
therefore an upload cut short (a killed server, a power cut), and names all it may have
written. A repair first claims the rows older than the grace time; a claimed upload can no
longer commit, so an upload that is merely slow, on this or another replica, is never left
with entity rows pointing at what the repair removed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from phantoscope.engine.context import Stores
from phantoscope.engine.ids import new_id
from phantoscope.storage.meta import MetaStoreError, PendingUploadRow
from phantoscope.storage.objects import ObjectStoreError
from phantoscope.storage.vectors import VectorStoreError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JournalRepair:
    """What a journal repair did: interrupted uploads closed, and how many objects and vectors
    they named that no entity row uses (removed, where they had been written)."""

    uploads: int
    objects: int
    vectors: int


def open_upload(
    stores: Stores, application: str, bucket: str, object_keys: Sequence[str],
    vectors: dict[str, list[int]],
) -> int:
    """Record an upload about to write ``object_keys`` and ``vectors`` (ids by collection);
    the journal row's id, to hand to ``MetaStore.add_entities``."""
    row = PendingUploadRow(
        id=new_id(), application=application, bucket=bucket, object_keys=list(object_keys),
        vectors={collection: list(ids) for collection, ids in vectors.items()},
    )
    stores.meta.add(row, "recording an upload in the journal")
    return row.id


def close_failed(stores: Stores, upload: int) -> None:
    """Forget a failed upload whose writes were all undone."""
    stores.meta.delete_pending_uploads([upload])


def interrupted(stores: Stores, grace_s: float) -> list[PendingUploadRow]:
    """Journal rows older than ``grace_s``: uploads taken to be cut short."""
    cutoff = datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=grace_s)
    return stores.meta.pending_uploads(created_before=cutoff)


def repair_interrupted(stores: Stores, grace_s: float) -> JournalRepair:
    """Repair the uploads older than ``grace_s``."""
    return repair_uploads(stores, interrupted(stores, grace_s))


def repair_uploads(stores: Stores, uploads: Sequence[PendingUploadRow]) -> JournalRepair:
    """Claim these journal rows, remove what their uploads wrote that no entity row uses, then
    the rows."""
    claimed = stores.meta.claim_pending_uploads([row.id for row in uploads])
    objects = vectors = 0
    for row in claimed:
        named_ids = [i for ids in row.vectors.values() for i in ids]
        used_keys, used_ids = stores.meta.referenced(row.object_keys, named_ids)
        for key in row.object_keys:
            if key not in used_keys:
                stores.objects.delete(row.bucket, key)
                objects += 1
        for collection, ids in row.vectors.items():
            unused = [i for i in ids if i not in used_ids]
            if unused and stores.vectors.has_collection(collection):
                stores.vectors.delete(collection, unused)
            vectors += len(unused)
        stores.meta.delete_pending_uploads([row.id])
    return JournalRepair(len(claimed), objects, vectors)


def repair_logged(stores: Stores) -> None:
    """Repair interrupted uploads older than the settings' grace, and log what was done. A
    store failing here is logged; the next round or `phantoscope check` tries again."""
    try:
        repaired = repair_interrupted(stores, stores.settings.repair_grace_s)
    except (MetaStoreError, VectorStoreError, ObjectStoreError) as exc:
        log.warning("could not repair interrupted uploads: %s", exc)
        return
    if repaired.uploads:
        log.warning(
            "repaired %d interrupted upload(s): removed what they had written of %d image(s) "
            "and %d vector(s)", repaired.uploads, repaired.objects, repaired.vectors,
        )
