"""The environment variables Phantoscope reads, found in its code rather than listed by hand:
the settings classes' fields, the CLI's `envvar` options and the `os.environ` / `os.getenv`
look-ups in src/."""

from __future__ import annotations

import ast
from pathlib import Path

import typer.main
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

import phantoscope
from phantoscope.cli.main import app
from phantoscope.config import OperatorSettings, ServerSettings

SOURCE = Path(phantoscope.__file__).parent


def settings_names(settings: type[BaseSettings]) -> dict[str, str]:
    """Environment variable -> field name, for every field of ``settings``."""
    prefix = settings.model_config.get("env_prefix", "")
    names = {}
    for name, info in settings.model_fields.items():
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            names.update({choice: name for choice in alias.choices if isinstance(choice, str)})
        elif isinstance(alias, str):
            names[alias] = name
        else:
            names[f"{prefix}{name}".upper()] = name
    return names


def cli_names() -> set[str]:
    """Every `envvar` of every option of the `phantoscope` command and its subcommands."""
    names: set[str] = set()
    pending = [typer.main.get_command(app)]
    while pending:
        command = pending.pop()
        for param in command.params:
            envvar = getattr(param, "envvar", None)
            names.update([envvar] if isinstance(envvar, str) else envvar or [])
        pending += getattr(command, "commands", {}).values()  # a group's subcommands
    return names


def _string_constants(tree: ast.Module) -> dict[str, str]:
    """Module-level `NAME = "text"` assignments."""
    constants = {}
    for node in tree.body:
        if (
            isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            constants.update({t.id: node.value.value for t in node.targets
                              if isinstance(t, ast.Name)})
    return constants


def _is_environ(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "environ"


def code_names() -> set[str]:
    """Names looked up with os.environ.get / os.getenv / os.environ[...] / `in os.environ`
    anywhere in the package (a name given as a module constant is resolved)."""
    names: set[str] = set()
    for path in SOURCE.rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        constants = _string_constants(tree)
        for node in ast.walk(tree):
            key: ast.AST | None = None
            if isinstance(node, ast.Call) and node.args and isinstance(node.func, ast.Attribute):
                func = node.func
                if (func.attr == "get" and _is_environ(func.value)) or func.attr == "getenv":
                    key = node.args[0]
            elif isinstance(node, ast.Subscript) and _is_environ(node.value):
                key = node.slice
            elif isinstance(node, ast.Compare) and any(_is_environ(c) for c in node.comparators):
                key = node.left
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                names.add(key.value)
            elif isinstance(key, ast.Name) and key.id in constants:
                names.add(constants[key.id])
    return names


def server_names() -> set[str]:
    """What the API server and the CLI read."""
    return set(settings_names(ServerSettings)) | cli_names() | code_names()


def operator_names() -> set[str]:
    """What an operator process reads."""
    return set(settings_names(OperatorSettings)) | code_names()
