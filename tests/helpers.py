"""Shared test helpers: the `phantoscope` command and where the original protocol lies."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from phantoscope.operators.process import PHANTOSCOPE, OperatorProcess, free_port

REPO = Path(__file__).resolve().parents[1]
SPEC_PROTO = REPO.parent / "shared" / "spec" / "omnisearch.proto"

__all__ = ["PHANTOSCOPE", "REPO", "SPEC_PROTO", "OperatorProcess", "free_port", "run_cli"]


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run `phantoscope ARGS...` to completion and return what it printed."""
    return subprocess.run(
        [PHANTOSCOPE, *args], capture_output=True, text=True, timeout=timeout,
        env={**os.environ, **(env or {})}, cwd=cwd,
    )
