"""Commands that talk to a running Phantoscope server over its REST API."""

from __future__ import annotations

import typer


def register(app: typer.Typer, operator_app: typer.Typer) -> None:
    """Add `import`, `search`, `eval`, `app ...`, `pipeline ...` and
    `operator list|show|create|delete`."""
    from phantoscope.commands import images, resources
    from phantoscope.commands.eval_command import eval_command

    app.command("import")(images.import_folder)
    app.command("search")(images.search)
    app.command("eval")(eval_command)
    app.add_typer(resources.app_app, name="app")
    app.add_typer(resources.pipeline_app, name="pipeline")
    operator_app.command("list")(resources.operator_list)
    operator_app.command("show")(resources.operator_show)
    operator_app.command("create")(resources.operator_create)
    operator_app.command("delete")(resources.operator_delete)
