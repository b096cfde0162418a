"""What a watch job's items do beyond an import's: remove the entity of a file gone, and,
when a changed file's new version could not be stored, keep its old entity standing for it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import suppress

from phantoscope.engine.context import Stores
from phantoscope.engine.entities import delete_entity
from phantoscope.engine.errors import NotFoundError
from phantoscope.storage.job_rows import JobRow
from phantoscope.storage.job_store import ClaimedItem
from phantoscope.storage.watch_store import WatchStore


def remove_entities(stores: Stores, job: JobRow, items: Sequence[ClaimedItem]) -> list[int]:
    """Delete the items' entities (vectors, image, rows); the positions done: all of them,
    an entity already gone (deleted by hand, or by an earlier try) being done too."""
    for each in items:
        with suppress(NotFoundError):
            delete_entity(stores, job.application, each.entity_id)
    return [each.position for each in items]


def keep_replaced(stores: Stores, job: JobRow, items: Sequence[ClaimedItem],
                  failed: Mapping[int, str]) -> None:
    """Items replacing an entity that failed left it in place (the upload is all or
    nothing): the watch's file goes on with that entity, so that the file's removal or
    next change reaches it."""
    watches = WatchStore(stores.meta)
    for each in items:
        if each.position in failed and each.replaces is not None:
            watches.keep_entity(job.id, failed=each.entity_id, kept=each.replaces)
