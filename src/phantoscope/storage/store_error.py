"""The one base of every store's failures, so that callers can catch "a store failed"
without knowing which backend they talk to."""

from __future__ import annotations


class StoreError(RuntimeError):
    """A store (vectors, metadata or objects) could not do what it was asked."""
