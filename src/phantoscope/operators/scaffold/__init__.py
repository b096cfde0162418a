"""`phantoscope operator new`: a ready-to-serve operator folder, in the original's layout."""

from __future__ import annotations

import re
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from phantoscope import __version__
from phantoscope.operators.scaffold.sdk_wheel import build_sdk_wheel, wheel_name

TEMPLATE_SUFFIX = ".tmpl"
OPERATOR_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
KINDS = ("encoder", "processor", "text-encoder")
WHEELS = "wheels"  # the folder, in each scaffold, holding the SDK's wheel


class ScaffoldError(ValueError):
    """The folder cannot be created as asked; the message says why."""


def _templates(folder: Traversable, prefix: Path = Path()) -> list[tuple[Path, Traversable]]:
    found = []
    for entry in folder.iterdir():
        if entry.is_dir():
            found += _templates(entry, prefix / entry.name)
        elif entry.name.endswith(TEMPLATE_SUFFIX):
            found.append((prefix / entry.name.removesuffix(TEMPLATE_SUFFIX), entry))
    return found


def create_operator(target: Path, kind: str, *, force: bool = False) -> list[Path]:
    """Write a new operator named after ``target``'s last part into ``target``."""
    name = target.name
    if kind not in KINDS:
        raise ScaffoldError(f"type must be one of {', '.join(KINDS)}, not {kind!r}")
    if not OPERATOR_NAME.match(name):
        raise ScaffoldError(
            f"{name!r} is not a usable operator name: use 1-63 letters, digits, '-', '_' "
            "or '.', starting with a letter or digit"
        )
    if target.exists() and any(target.iterdir()) and not force:
        raise ScaffoldError(f"{target} exists and is not empty (use --force to overwrite)")
    root = resources.files(__name__)
    values = {"{{name}}": name, "{{version}}": __version__,
              "{{sdk_wheel}}": f"./{WHEELS}/{wheel_name()}"}
    # A kind's own template of a common file (its test, say) replaces the common one.
    templates = dict(_templates(root / "common")) | dict(_templates(root / kind))
    written = []
    for relative, template in templates.items():
        text = template.read_text(encoding="utf-8")
        for placeholder, value in values.items():
            text = text.replace(placeholder, value)
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        if path.suffix == ".sh":
            path.chmod(0o755)
        written.append(path)
    # The SDK is on no registry: requirements.txt installs this copy by relative path.
    written.append(build_sdk_wheel(target / WHEELS))
    return written
