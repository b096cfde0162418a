"""The :mod:`tally` encoder in a child process, with its calls counted."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from phantoscope.operators.process import OperatorProcess

HERE = Path(__file__).resolve().parent


class Tally(OperatorProcess):
    """A :mod:`tally` encoder process whose calls are counted in ``log_file``."""

    def __init__(self, folder: Path, endpoint: str | None = None, **env: str) -> None:
        self.log_file = folder / f"tally-{uuid.uuid4().hex[:6]}.calls"
        self.log_file.touch()
        path = os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH")) if p)
        super().__init__(
            "tally:TallyEncoder", endpoint=endpoint, log_path=folder / "operators.log",
            env={"PYTHONPATH": path, "TALLY_LOG": str(self.log_file), **env},
        )

    def calls(self) -> int:
        return len(self.log_file.read_text().splitlines())

    def restart(self) -> None:
        """Start again on the same endpoint (after it was killed)."""
        self.stop()
        self.start()
        self.wait_healthy(60)
