"""Finding the operator a `phantoscope operator serve TARGET` names.

TARGET is a folder holding a ``custom_operator.py`` — made by `phantoscope operator new`, or
by the original Phantoscope template (served through :class:`LegacyOperator`) —, such a
folder and the class to serve when the file defines several (`FOLDER:Class`: an image encoder
and its text encoder, say), a built-in name (see :data:`phantoscope.zoo.BUILTINS`) or a
`module:Class` path. A folder that exists
always wins: a scaffold named after a built-in (`operator new resnet50-encoder`) is served
as the folder, never as the built-in.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
from pathlib import Path
from typing import Any

from phantoscope.operators.base import Operator
from phantoscope.operators.legacy import LegacyOperator, LegacyTemplateError
from phantoscope.zoo import BUILTINS

OPERATOR_FILE = "custom_operator.py"
LEGACY_CLASS = "CustomOperator"


class TargetError(ValueError):
    """TARGET names nothing that can be served; the message says what was looked for."""


def import_object(path: str) -> Any:
    """Import ``package.module:Name``."""
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise TargetError(f"{path!r} is not of the form module:Class")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise TargetError(f"cannot import {module_name!r}: {exc}") from None
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise TargetError(f"module {module_name!r} has no {attribute!r}") from None


def _instantiate(cls: Any, options: dict[str, Any]) -> Operator:
    if inspect.isclass(cls) and issubclass(cls, Operator):
        return cls(**options)
    if options:
        raise TargetError(f"{cls!r} takes no options, got {sorted(options)}")
    return _legacy(cls)


def _legacy(cls: Any) -> Operator:
    try:
        return LegacyOperator(cls())
    except LegacyTemplateError as exc:
        raise TargetError(str(exc)) from None


def _load_folder(folder: Path, class_name: str | None = None) -> Operator:
    """Import a folder's custom_operator.py the way `python server.py` in it would, and build
    its operator (the one named ``class_name``, if given)."""
    shown = str(folder)
    folder = folder.resolve()
    source = folder / OPERATOR_FILE
    folder_text = str(folder)
    if folder_text not in sys.path:
        sys.path.insert(0, folder_text)  # lets it import its neighbours (utils.py, rpc/...)
    os.chdir(folder)  # the original template finds its model under ./data
    spec = importlib.util.spec_from_file_location("custom_operator", source)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["custom_operator"] = module
    spec.loader.exec_module(module)
    ours = [
        value for value in vars(module).values()
        if inspect.isclass(value) and issubclass(value, Operator)
        and value.__module__ == module.__name__ and not inspect.isabstract(value)
    ]
    names = sorted(cls.__name__ for cls in ours)
    if class_name is not None:
        chosen = [cls for cls in ours if cls.__name__ == class_name]
        if not chosen:
            raise TargetError(
                f"{source} defines no operator class {class_name!r} "
                f"(it defines: {', '.join(names) or 'none'})"
            )
        return chosen[0]()
    if len(ours) == 1:
        return ours[0]()
    if len(ours) > 1:
        raise TargetError(
            f"{source} defines several operators ({', '.join(names)}); serve one as "
            f"FOLDER:Class, e.g. {shown}:{names[0]}"
        )
    legacy = getattr(module, LEGACY_CLASS, None)
    if legacy is None:
        raise TargetError(
            f"{source} defines neither an Operator subclass nor a {LEGACY_CLASS} class"
        )
    return _legacy(legacy)


def _looks_like_path(target: str) -> bool:
    return os.sep in target or (os.altsep or os.sep) in target or target in (".", "..")


def _no_options(folder: str, options: dict[str, Any]) -> None:
    if options:
        shadowed = f" (it shadows the built-in {folder!r})" if folder in BUILTINS else ""
        raise TargetError(
            f"folder {folder!r}{shadowed} takes no options such as "
            f"{', '.join('--' + key for key in sorted(options))}: they are for built-ins"
        )


def load_operator(target: str, **options: Any) -> Operator:
    """Build the operator TARGET names; ``options`` go to a built-in's constructor.

    An existing folder comes first, so a path the user made is never shadowed by a built-in
    of the same name; a folder without ``custom_operator.py`` is an error only when TARGET
    is no built-in name or is written as a path (``./x``, ``x/``, ``/abs/x``).
    """
    folder = Path(target)
    if folder.is_dir():
        if (folder / OPERATOR_FILE).is_file():
            _no_options(target, options)
            return _load_folder(folder)
        if target not in BUILTINS or _looks_like_path(target):
            raise TargetError(f"folder {target!r} has no {OPERATOR_FILE}")
    folder_text, _, class_name = target.rpartition(":")
    if folder_text and (Path(folder_text) / OPERATOR_FILE).is_file():
        _no_options(folder_text, options)
        return _load_folder(Path(folder_text), class_name)
    if target in BUILTINS:
        return _instantiate(import_object(BUILTINS[target]), options)
    if ":" in target:
        return _instantiate(import_object(target), options)
    builtins = ", ".join(sorted(BUILTINS))
    raise TargetError(
        f"{target!r} is not a built-in operator ({builtins}), a folder or a module:Class path"
    )
