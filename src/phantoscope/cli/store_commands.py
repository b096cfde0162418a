"""`phantoscope check`: do the stores agree? With --repair, make them.

Opens the stores itself, from the same PHANTOSCOPE_* settings as the server, so it works with
the server stopped (Milvus Lite and SQLite allow one process at a time: stop the server
first) or running beside it on a Milvus server, MySQL/PostgreSQL and S3.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from phantoscope.cli.output import console, fail, row, table

if TYPE_CHECKING:  # the stores' modules load only when the command runs
    from phantoscope.engine.consistency import Findings, Repair


def check(
    fix: Annotated[
        bool, typer.Option("--repair", help="Remove what is found.")
    ] = False,
    grace: Annotated[
        float | None,
        typer.Option(
            min=0,
            help="Leave leftovers younger than this many seconds: they may belong to uploads "
            "still running (default: PHANTOSCOPE_REPAIR_GRACE_S, 300).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    examples: Annotated[
        int, typer.Option(min=0, help="Examples shown for each kind of problem.")
    ] = 5,
) -> None:
    """Check that SQL rows, vectors and stored images agree; exit 1 when they do not.

    Finds uploads cut short by a crash, vectors and images no entity uses, and entities whose
    vectors or image are gone. With --repair removes them (an entity that cannot be served is
    deleted with what is left of it) and exits 0 once the stores agree.
    """
    from phantoscope.config import ServerSettings
    from phantoscope.engine.consistency import repair, scan
    from phantoscope.engine.context import Stores
    from phantoscope.logging_setup import quiet_library_noise
    from phantoscope.storage.meta import MetaStoreError
    from phantoscope.storage.objects import ObjectStoreError
    from phantoscope.storage.vectors import VectorStoreError

    quiet_library_noise()  # before the stores open: their libraries' harmless warnings
    settings = ServerSettings()
    grace_s = settings.repair_grace_s if grace is None else grace
    try:
        stores = Stores.open(settings)
        try:
            findings = scan(stores, grace_s)
            repaired = after = None
            if fix and not findings.clean:
                repaired = repair(stores, findings)
                after = scan(stores, grace_s)
        finally:
            stores.close()
    except (MetaStoreError, VectorStoreError, ObjectStoreError) as exc:
        raise fail(str(exc), code=2) from None
    if as_json:
        console.print_json(json.dumps(_report(grace_s, findings, repaired, after, examples)))
    else:
        _show(grace_s, findings, repaired, after, examples)
    final = after if after is not None else findings
    if not final.clean:
        raise typer.Exit(1)


def _report(
    grace_s: float, findings: Findings, repaired: Repair | None, after: Findings | None,
    examples: int,
) -> dict[str, Any]:
    return {
        "grace_s": grace_s,
        "clean": findings.clean,
        "problems": [asdict(problem) for problem in findings.problems(examples)],
        "repaired": asdict(repaired) if repaired is not None else None,
        "clean_after_repair": after.clean if after is not None else None,
        "problems_after_repair": [asdict(problem) for problem in after.problems(examples)]
        if after is not None else None,
    }


def _show(
    grace_s: float, findings: Findings, repaired: Repair | None, after: Findings | None,
    examples: int,
) -> None:
    _print_problems(findings, examples, f"stores checked (grace {grace_s:g} s)")
    if findings.clean:
        console.print("[green]clean[/green]: rows, vectors and stored images agree")
        return
    if repaired is None:
        console.print("problems found: run `phantoscope check --repair` to remove them")
        return
    console.print(
        f"repaired: {repaired.uploads} interrupted upload(s), {repaired.vectors} vector(s) "
        f"and {repaired.objects} image(s) without rows, {repaired.entities} broken "
        "entity(ies) deleted", highlight=False,
    )
    if after is not None and after.clean:
        console.print("[green]clean[/green] after repair")
    elif after is not None:
        _print_problems(after, examples, "still found after repair")


def _print_problems(findings: Findings, examples: int, title: str) -> None:
    shown = table("problem", "found", "examples", title=escape(title))
    for problem in findings.problems(examples):
        more = problem.count - len(problem.examples)
        listed = "\n".join(problem.examples) + (f"\n... and {more} more" if more > 0 else "")
        shown.add_row(*row(problem.description, str(problem.count), listed))
    console.print(shown)
