"""Names of operators, pipelines, applications and fields."""

from __future__ import annotations

import re

from phantoscope.engine.errors import BadRequestError

NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")


def check_name(kind: str, name: str) -> str:
    """Return ``name`` if it is a usable name for a ``kind``; else a 400 saying the rule."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        shown = name if isinstance(name, str) and len(name) <= 80 else f"{str(name)[:80]}..."
        raise BadRequestError(
            "INVALID_NAME",
            f"{kind} name {shown!r} is not allowed: use 1-64 letters, digits, '_' or '-', "
            "starting with a letter",
        )
    return name


def _milvus_safe(name: str) -> str:
    """Milvus names allow only letters, digits and '_': escape '_' and '-' reversibly."""
    return name.replace("_", "_0").replace("-", "_1")


def collection_name(pipeline: str) -> str:
    """The Milvus collection of a pipeline."""
    return "pipeline_" + _milvus_safe(pipeline)


def partition_name(application: str) -> str:
    """The partition holding an application's vectors in each of its pipelines' collections."""
    return "app_" + _milvus_safe(application)


def bucket_name(application: str) -> str:
    """The default bucket of an application (S3 rules: lowercase, digits, '-')."""
    slug = re.sub(r"[^a-z0-9-]", "-", application.lower())
    return f"phantoscope-{slug}"[:63].rstrip("-")
