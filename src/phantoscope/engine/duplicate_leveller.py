"""Keeping this process's duplicate listings ready: for each application a listing here has
found the pairs of, a thread takes in what was stored since (an import's images, stored
without a copy check, and other processes' uploads) and, once nothing new has come for
:data:`IDLE_S`, judges it, so that the next listing has little left to do. It waits for the
pause because judging during an import would take back the CPU the import saved."""

from __future__ import annotations

import time

from phantoscope.engine.catalog import application_plan
from phantoscope.engine.context import Stores
from phantoscope.engine.duplicate_index import caught_up, synced
from phantoscope.engine.errors import NotFoundError
from phantoscope.engine.upkeep import Upkeep
from phantoscope.metrics import JUDGED_IN_BACKGROUND

TICK_S = 1.0  # how often it looks
IDLE_S = 5.0  # how long an application's new entities must have stopped coming


def level_once(stores: Stores, waiting: dict[str, tuple[int, float]],
               idle_s: float = IDLE_S) -> int:
    """One look at every listed application: what was stored since is taken in, and an
    application whose count of entities to judge has not moved for ``idle_s`` is brought
    level. ``waiting`` carries each application's count and since when it stood, from one
    look to the next. How many entities it judged."""
    judged = 0
    listed = stores.duplicates.listed()
    for gone in set(waiting) - set(listed):
        del waiting[gone]
    for name in listed:
        try:
            plan = application_plan(stores, name)
        except NotFoundError:
            stores.duplicates.drop(name)
            waiting.pop(name, None)
            continue
        index = caught_up(stores, plan, at_once=True)
        with index.lock:
            unjudged, pending = len(index.unjudged), len(index.pending)
        now = time.monotonic()
        if not unjudged and not pending:
            waiting.pop(name, None)
            continue
        count, since = waiting.get(name, (-1, now))
        if count != unjudged + pending:
            waiting[name] = (unjudged + pending, now)
        elif now - since >= idle_s:
            synced(stores, plan)
            JUDGED_IN_BACKGROUND.inc(unjudged)
            judged += unjudged
            waiting.pop(name, None)
    return judged


def duplicate_leveller(stores: Stores) -> Upkeep:
    """A thread calling :func:`level_once` every ``TICK_S``."""
    waiting: dict[str, tuple[int, float]] = {}
    return Upkeep("duplicate-leveller", TICK_S, lambda: level_once(stores, waiting),
                  "could not judge the duplicates of what was stored lately")
