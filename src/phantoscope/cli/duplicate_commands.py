"""`phantoscope duplicates APP`: the application's groups of copies (or similar shots) as a
table or JSON; with --delete-extras, keep each group's suggested copy and delete the rest."""

from __future__ import annotations

import json
from enum import Enum
from typing import Annotated, Any

import typer

from phantoscope.cli.output import Url, connect, console, fail, row, table
from phantoscope.client import DEFAULT_URL, DuplicateGroup, PhantoscopeError


class Kind(str, Enum):
    copies = "copies"
    similar = "similar"


def _group_json(group: DuplicateGroup) -> dict[str, Any]:
    return {"id": group.id, "kind": group.kind, "keep": group.keep, "reason": group.reason,
            "entities": [{"_id": each.id, "name": each.name, "score": each.score,
                          "width": each.width, "height": each.height, "bytes": each.size,
                          "format": each.format, "quality": each.quality,
                          "taken_at": each.taken_at, "_image_url": each.image_url}
                         for each in group.entities]}


def _compression(format: str, quality: int | None) -> str:
    return f"{format} q{quality}" if quality is not None else format


def _show(groups: list[DuplicateGroup], kind: str) -> None:
    if not groups:
        console.print(f"no groups of {kind}", highlight=False)
        return
    shown = table("group", "id", "name", "keep", "score", "size", "format", "bytes")
    for group in groups:
        for at, each in enumerate(group.entities):
            shown.add_row(*row(
                group.id if at == 0 else "", str(each.id), each.name or "",
                "keep" if each.id == group.keep else "", f"{each.score:.4f}",
                f"{each.width}x{each.height}", _compression(each.format, each.quality),
                f"{each.size:,}"))
    console.print(shown)
    for group in groups:
        console.print(f"{group.id}: keep {group.keep}, {group.reason}", highlight=False)
    extras = sum(len(group.entities) - 1 for group in groups)
    console.print(f"{len(groups)} groups, {extras} extra copies", highlight=False)


def duplicates(
    app: Annotated[str, typer.Argument(help="The application.", show_default=False)],
    kind: Annotated[Kind, typer.Option(
        "--kind", help="copies: the same picture re-encoded, resized, cropped a little, "
        "turned; similar: shots of one scene.")] = Kind.copies,
    as_json: Annotated[bool, typer.Option("--json", help="Print the groups as JSON.")] = False,
    delete_extras: Annotated[bool, typer.Option(
        "--delete-extras", help="Keep each group's suggested copy and delete the others "
        "(asks first).")] = False,
    yes: Annotated[bool, typer.Option(
        "--yes", "-y", help="With --delete-extras: do not ask.")] = False,
    url: Url = DEFAULT_URL,
) -> None:
    """The application's groups of duplicates, each with the copy to keep and why.

    A group resolved or dismissed (here, in the web page or over the API) is not shown
    again.
    """
    if yes and not delete_extras:
        raise fail("--yes confirms --delete-extras: give both", 2)
    with connect(url) as client:
        groups = list(client.duplicates.iterate(app, kind.value))
        if as_json:
            typer.echo(json.dumps([_group_json(group) for group in groups]))
        else:
            _show(groups, kind.value)
        if not delete_extras or not groups:
            return
        extras = sum(len(group.entities) - 1 for group in groups)
        if not yes and not typer.confirm(
                f"delete {extras} images of {len(groups)} groups, keeping each group's "
                "suggested copy?", err=True):
            raise fail("nothing deleted", 1)
        deleted, changed = 0, []
        for group in groups:
            others = [each.id for each in group.entities if each.id != group.keep]
            try:
                done = client.duplicates.resolve(app, group.id, keep=[group.keep],
                                                 delete=others)
            except PhantoscopeError as exc:
                if exc.code != "GROUP_CHANGED":
                    raise
                changed.append(group.id)
                continue
            deleted += len(done.deleted)
    console.print(f"deleted {deleted} images", highlight=False)
    if changed:
        raise fail(f"{len(changed)} groups changed since they were listed and were left "
                   f"as they are: {', '.join(changed)}; run the command again")
