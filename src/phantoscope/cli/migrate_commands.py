"""`phantoscope migrate`: bring the metadata database's schema to the newest revision.

Reads the same PHANTOSCOPE_* settings as the server (``PHANTOSCOPE_META``, or ``meta.db``
under ``PHANTOSCOPE_HOME``) and opens the database directly, as ``phantoscope check`` does.
A server also migrates when it starts; this runs it ahead of time, or shows where it stands.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from phantoscope.cli.output import console, fail


def migrate(
    status_only: Annotated[
        bool, typer.Option("--status", help="Only print the revision and what is pending.")
    ] = False,
) -> None:
    """Upgrade the metadata database to the newest schema revision; print what was applied.

    An empty database is built; one made by an earlier release (before versioned
    migrations) is upgraded in place, keeping every row. Safe while servers sharing the
    database start: they take turns.
    """
    from phantoscope.config import ServerSettings
    from phantoscope.logging_setup import quiet_library_noise
    from phantoscope.storage.meta import MetaStore, MetaStoreError, schema_status

    quiet_library_noise()
    url = ServerSettings().meta_url
    try:
        if status_only:
            status = schema_status(url)
            current = status.current or ("an earlier release's (unversioned)" if status.legacy
                                         else "none (empty database)")
            console.print(f"revision: {escape(current)} (newest: {status.head})",
                          highlight=False)
            if status.up_to_date:
                console.print("[green]up to date[/green]")
            for revision in status.pending:
                console.print(f"pending: {revision.id} {escape(revision.title)}",
                              highlight=False)
            return
        store = MetaStore(url)
        store.close()
    except MetaStoreError as exc:
        raise fail(str(exc), code=2) from None
    migration = store.migration
    if migration.legacy:
        console.print("an earlier release's database: upgraded in place", highlight=False)
    for revision in migration.applied:
        console.print(f"applied: {revision.id} {escape(revision.title)}", highlight=False)
    if not migration.applied:
        console.print("nothing to apply", highlight=False)
    console.print(f"revision: {migration.after}", highlight=False)
