"""The `phantoscope` command: every sub-command, gathered from the modules that hold them.

- ``operator_commands``: write, serve and check operators (gRPC, no server);
- ``server_commands``: start a server in this process (``up``, ``api``);
- ``resource_commands``, ``image_commands``, ``duplicate_commands``, ``job_commands``,
  ``eval_commands``: talk to a running server over HTTP with :mod:`phantoscope.client`;
- ``store_commands``, ``migrate_commands``: open the stores directly (``check``,
  ``migrate``).
"""

from __future__ import annotations

import typer

from phantoscope.cli import (
    duplicate_commands,
    eval_commands,
    image_commands,
    job_commands,
    migrate_commands,
    operator_commands,
    resource_commands,
    server_commands,
    store_commands,
)
from phantoscope.cli.output import ApiKey, api_key

app = typer.Typer(no_args_is_help=True, help="Phantoscope: search images with images.")


@app.callback()
def main(key: ApiKey = None) -> None:
    """Phantoscope: search images with images."""
    api_key.set(key)  # for the commands that talk to a server (cli.output.connect)


operator_app = operator_commands.operator_app
operator_app.command("list")(resource_commands.operator_list)
operator_app.command("show")(resource_commands.operator_show)
operator_app.command("create")(resource_commands.operator_create)
operator_app.command("delete")(resource_commands.operator_delete)
app.add_typer(operator_app, name="operator")
app.command("up")(server_commands.up)
app.command("api")(server_commands.api)
app.command("import")(image_commands.import_folder)
app.command("search")(image_commands.search)
app.command("duplicates")(duplicate_commands.duplicates)
app.command("eval")(eval_commands.eval_command)
app.command("check")(store_commands.check)
app.command("migrate")(migrate_commands.migrate)
app.add_typer(resource_commands.app_app, name="app")
app.add_typer(resource_commands.pipeline_app, name="pipeline")
app.add_typer(job_commands.jobs_app, name="jobs")

if __name__ == "__main__":
    app()
