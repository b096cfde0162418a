"""Removing the vectors of standby pipelines a field no longer keeps: a pipeline switched
away from once its grace is over, and one whose reindex job was cancelled or failed.

Each server sweeps in a thread of its own. A pipeline to remove is first marked being removed
(uploads stop embedding with it from the next catalog read on); then its vectors of the field
are deleted, a thousand at a time, in every sweep until none is left and the mark is older
than :data:`SETTLE_S` (an upload planned before the mark may still add some); then it leaves
the field. Every step is conditional on the field being as the sweep read it.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from phantoscope.engine.context import Stores
from phantoscope.engine.standby import Standby, now, replaced, standby_of, without
from phantoscope.engine.upkeep import Upkeep
from phantoscope.storage.reindex_store import ImageField, ReindexStore

log = logging.getLogger(__name__)

SETTLE_S = 60.0
ENDED_BADLY = ("cancelled", "failed")


def _due(entry: Standby, states: dict[int, str]) -> bool:
    if entry.sweep_since is not None:
        return False
    if entry.kept_until is not None:
        return entry.kept_until <= now()
    return entry.job is not None and states.get(entry.job, "cancelled") in ENDED_BADLY


def sweep_once(stores: Stores) -> int:
    """One sweep over every image field; how many vectors it deleted."""
    store = ReindexStore(stores.meta)
    deleted = 0
    for seen in store.image_fields():
        entries = standby_of(seen.value)
        if not entries:
            continue
        jobs = [entry.job for entry in entries.values() if entry.job is not None]
        states = store.job_states(jobs) if jobs else {}
        for entry in entries.values():
            if _due(entry, states):
                store.set_field(seen, seen.pipeline,
                                replaced(seen.value, Standby(entry.pipeline, sweep_since=now())))
                break  # the field changed: read again in the next sweep
            if entry.sweep_since is not None:
                deleted += _sweep(stores, seen, entry)
    return deleted


def _sweep(stores: Stores, seen: ImageField, entry: Standby) -> int:
    store = ReindexStore(stores.meta)
    ids = store.pipeline_vectors(seen.application, seen.name, entry.pipeline)
    if ids:  # rows first: a vector left without its row is `phantoscope check --repair`'s
        store.delete_vector_rows(ids)
        pipeline = stores.meta.get_pipeline(entry.pipeline)
        if pipeline is not None:
            stores.vectors.delete(pipeline.collection, ids)
        log.info("removed %d vectors of pipeline %s from field %s of %s", len(ids),
                 entry.pipeline, seen.name, seen.application)
    elif now() - entry.sweep_since > timedelta(seconds=SETTLE_S):  # type: ignore[operator]
        store.set_field(seen, seen.pipeline, without(seen.value, entry.pipeline))
    return len(ids)


def standby_sweeper(stores: Stores) -> Upkeep:
    """A thread sweeping every ``settings.job_poll_s`` seconds."""
    return Upkeep("standby-sweeper", stores.settings.job_poll_s, lambda: sweep_once(stores),
                  "could not remove the vectors of retired pipelines")
