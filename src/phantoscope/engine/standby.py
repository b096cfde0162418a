"""An image field's standby pipelines: pipelines other than its own whose vectors every
image of the field also gets, so that the field can switch to one without a search missing
an image.

A pipeline is put on standby by a reindex job (``job``: the job embedding the images held
before it started; uploads from then on are embedded with it as they are stored). A switch
makes it the field's pipeline and puts the pipeline switched away from on standby until
``kept_until`` (the switch grace): switching back before then needs no reindex. A pipeline
whose time is over, or whose job was cancelled or failed, is being removed (``sweep_since``):
uploads no longer get its vectors and the sweeper (``engine.standby_sweep``) deletes those
it has; then it leaves the field.

Kept in the field's ``value`` as ``{"standby": {PIPELINE: {"job": ID} | {"kept_until": T} |
{"sweep_since": T}}}`` (T in ISO 8601, UTC).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

KEY = "standby"


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Standby:
    pipeline: str
    job: int | None = None  # the reindex job filling it
    kept_until: datetime | None = None  # switched away from: removed from this time on
    sweep_since: datetime | None = None  # being removed: uploads no longer get its vectors

    @property
    def embedded(self) -> bool:
        """Whether uploads get its vectors."""
        return self.sweep_since is None


def _moment(text: object) -> datetime | None:
    return datetime.fromisoformat(text) if isinstance(text, str) else None


def standby_of(value: Any) -> dict[str, Standby]:
    """The standby pipelines a field's ``value`` holds, by name."""
    entries = value.get(KEY) if isinstance(value, Mapping) else None
    if not isinstance(entries, Mapping):
        return {}
    return {name: Standby(name, int(entry["job"]) if "job" in entry else None,
                          _moment(entry.get("kept_until")), _moment(entry.get("sweep_since")))
            for name, entry in entries.items() if isinstance(entry, Mapping)}


def value_of(entries: Mapping[str, Standby]) -> dict[str, Any] | None:
    """A field's ``value`` holding these standby pipelines (None: none)."""
    if not entries:
        return None
    stored: dict[str, dict[str, Any]] = {}
    for name, entry in sorted(entries.items()):
        if entry.sweep_since is not None:
            stored[name] = {"sweep_since": entry.sweep_since.isoformat()}
        elif entry.kept_until is not None:
            stored[name] = {"kept_until": entry.kept_until.isoformat()}
        else:
            stored[name] = {"job": entry.job}
    return {KEY: stored}


def replaced(value: Any, entry: Standby) -> dict[str, Any] | None:
    """``value`` with ``entry`` in place of its pipeline's entry."""
    return value_of({**standby_of(value), entry.pipeline: entry})


def without(value: Any, pipeline: str) -> dict[str, Any] | None:
    """``value`` without ``pipeline``'s entry."""
    entries = standby_of(value)
    entries.pop(pipeline, None)
    return value_of(entries)
