"""A wheel of the operator SDK alone, written into each scaffold by `phantoscope operator new`.

Phantoscope is not on any package registry, so a scaffold's ``requirements.txt`` cannot name
it; instead it installs this wheel by relative path, and takes the SDK's own dependencies
(gRPC, protobuf, NumPy, Pillow, pydantic-settings, urllib3) from the public registries. The
wheel holds the files of the installed ``phantoscope`` package that the SDK imports
(``operators/`` without the scaffold, ``imaging/``, ``config.py``, the sample photo
``operator test`` uses) and is built with the standard library only.
"""

from __future__ import annotations

import base64
import hashlib
import re
import zipfile
from importlib import metadata, resources
from importlib.resources.abc import Traversable
from pathlib import Path

from phantoscope import __version__

DISTRIBUTION = "phantoscope"
# What the SDK imports, relative to the phantoscope package; folders are taken whole.
SDK_PARTS = ("__init__.py", "config.py", "operators", "imaging", "assets")
SKIP_FOLDERS = {"scaffold", "__pycache__"}
FILE_SUFFIXES = {".py", ".proto", ".jpg", ".typed"}
# The SDK's dependencies, with the specifiers the full package declares (fallbacks below).
SDK_DEPENDENCIES = {
    "grpcio": "grpcio>=1.85.1",
    "protobuf": "protobuf>=7.35",
    "numpy": "numpy>=1.26",
    "pillow": "pillow>=10.2",
    "pydantic-settings": "pydantic-settings>=2.3",
    "urllib3": "urllib3>=2",
}
TAG = "py3-none-any"


def wheel_name(version: str = __version__) -> str:
    """The wheel's file name, e.g. ``phantoscope-0.3.0.dev0-py3-none-any.whl``."""
    return f"{DISTRIBUTION}-{version}-{TAG}.whl"


def _dependencies() -> list[str]:
    """The SDK's requirements, as the installed phantoscope declares them when it can."""
    declared: dict[str, str] = {}
    try:
        for requirement in metadata.requires(DISTRIBUTION) or []:
            if ";" in requirement:  # extras and markers are not the SDK's
                continue
            key = re.split(r"[\s<>=!~\[(]", requirement, maxsplit=1)[0].lower().replace("_", "-")
            declared[key] = requirement.strip()
    except metadata.PackageNotFoundError:
        pass
    return [declared.get(name, fallback) for name, fallback in SDK_DEPENDENCIES.items()]


def _files(node: Traversable, relative: str) -> list[tuple[str, bytes]]:
    if node.is_dir():
        if node.name in SKIP_FOLDERS:
            return []
        found: list[tuple[str, bytes]] = []
        for child in sorted(node.iterdir(), key=lambda entry: entry.name):
            found += _files(child, f"{relative}/{child.name}")
        return found
    if Path(node.name).suffix in FILE_SUFFIXES:
        return [(relative, node.read_bytes())]
    return []


def sdk_files() -> list[tuple[str, bytes]]:
    """``(path in the wheel, content)`` of every SDK file of the installed package."""
    package = resources.files(DISTRIBUTION)
    found: list[tuple[str, bytes]] = []
    for part in SDK_PARTS:
        found += _files(package / part, f"{DISTRIBUTION}/{part}")
    return found


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def build_sdk_wheel(folder: Path, version: str = __version__) -> Path:
    """Write the SDK wheel into ``folder`` and return its path."""
    dist_info = f"{DISTRIBUTION}-{version}.dist-info"
    requires = "".join(f"Requires-Dist: {requirement}\n" for requirement in _dependencies())
    meta_files = [
        (f"{dist_info}/METADATA", (
            "Metadata-Version: 2.1\n"
            f"Name: {DISTRIBUTION}\n"
            f"Version: {version}\n"
            "Summary: The Phantoscope operator SDK (written by `phantoscope operator new`)\n"
            "License: Apache-2.0\n"
            "Requires-Python: >=3.10\n"
            f"{requires}"
        ).encode()),
        (f"{dist_info}/WHEEL", (
            "Wheel-Version: 1.0\n"
            f"Generator: phantoscope {__version__}\n"
            "Root-Is-Purelib: true\n"
            f"Tag: {TAG}\n"
        ).encode()),
        (f"{dist_info}/top_level.txt", f"{DISTRIBUTION}\n".encode()),
    ]
    entries = sdk_files() + meta_files
    record = "".join(f"{path},{_record_hash(data)},{len(data)}\n" for path, data in entries)
    record += f"{dist_info}/RECORD,,\n"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / wheel_name(version)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as wheel:
        for name, data in [*entries, (f"{dist_info}/RECORD", record.encode())]:
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))  # reproducible
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            wheel.writestr(info, data)
    return path
