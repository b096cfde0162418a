"""A watch job's scan: its folder compared with what the watch saw last, and the job items
that bring the application in step with it.

A new file becomes an import item, a changed one (another size or modification time) an
import item whose entity replaces the file's entity, a file gone a removal of its entity;
each item is then claimed and run like an import job's (:mod:`engine.job_runner`). A file
with an item still open is left to the next scan, so a file never has two items in work.
Only one server scans a folder at a time, and a scan's items are recorded only while its
claim holds (:class:`~phantoscope.storage.watch_store.WatchStore`). A folder that cannot be
read (gone, unmounted, no longer under ``PHANTOSCOPE_IMPORT_ROOTS``) is not taken for
empty: nothing is removed, and the watch looks again at its next scan.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta

from phantoscope.engine.context import Stores
from phantoscope.engine.errors import EngineError
from phantoscope.engine.folder_images import folder_state
from phantoscope.engine.ids import new_ids
from phantoscope.engine.import_sources import checked_folder, import_roots
from phantoscope.storage.job_rows import JobRow
from phantoscope.storage.watch_store import (
    REMOVE,
    NewItem,
    ScanResult,
    WatchedFile,
    WatchStore,
)

log = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def scan_token(worker: str) -> str:
    """A claim token for one scan by ``worker``."""
    return f"{worker}:{uuid.uuid4().hex[:16]}"


def scan_if_due(stores: Stores, job: JobRow, worker: str) -> bool:
    """Scan the watch's folder if its next scan is due and no other server is scanning it;
    whether this call scanned it."""
    settings = stores.settings
    token = scan_token(worker)
    now = _now()
    if not WatchStore(stores.meta).claim_scan(
            job.id, token, scanned_before=now - timedelta(seconds=settings.watch_interval_s),
            stale_before=now - timedelta(seconds=settings.job_lease_s)):
        return False
    scan_claimed(stores, job, token)
    return True


def scan_claimed(stores: Stores, job: JobRow, token: str) -> None:
    """Scan the watch's folder under the claim ``token`` holds, and record what it found."""
    watches = WatchStore(stores.meta)
    try:
        result = _scan(stores, job, watches)
    except BaseException:
        watches.record_scan(job.id, token, None)
        raise
    if not watches.record_scan(job.id, token, result):
        log.warning("watch %d: the scan outlived its claim (PHANTOSCOPE_JOB_LEASE_S); "
                    "another server scans the folder again", job.id)
    elif result is not None and result.items:
        log.info("watch %d: %d changes in %s", job.id, len(result.items), job.source["folder"])


def _scan(stores: Stores, job: JobRow, watches: WatchStore) -> ScanResult | None:
    """The items the folder's changes make; None when the folder cannot be read."""
    try:
        folder = checked_folder(job.source["folder"], import_roots(stores.settings.import_roots))
        files = folder_state(folder)
    except (EngineError, OSError) as exc:
        reason = exc.message if isinstance(exc, EngineError) else str(exc)
        log.warning("watch %d: folder not scanned, nothing removed: %s", job.id, reason)
        return None
    in_work = watches.open_items(job.id)
    seen = {each.item: each for each in watches.seen(job.id)}
    changed = [(item, state) for item, state in files.items() if item not in in_work and (
        item not in seen or (seen[item].size, seen[item].mtime_ns) != (state.size,
                                                                        state.mtime_ns))]
    items: list[NewItem] = []
    now_seen: list[WatchedFile] = []
    for (item, state), entity_id in zip(changed, new_ids(len(changed)), strict=True):
        old = seen.get(item)
        items.append(NewItem(item, entity_id, replaces=old.entity_id if old else None))
        now_seen.append(WatchedFile(item, state.size, state.mtime_ns, entity_id))
    gone = [old for item, old in seen.items() if item not in files and item not in in_work]
    items.extend(NewItem(old.item, old.entity_id, action=REMOVE) for old in gone)
    return ScanResult(items, now_seen, [old.entity_id for old in gone])
