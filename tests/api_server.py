"""A real Phantoscope API server process for tests, over chosen backends."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import httpx

from phantoscope.operators.process import PHANTOSCOPE, free_port


class ApiServer:
    """`phantoscope api` on a free loopback port, with PHANTOSCOPE_* settings from ``env``."""

    def __init__(self, home: Path, env: dict[str, str]) -> None:
        self.home = home
        self.env = {**os.environ, "PHANTOSCOPE_HOME": str(home), **env}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.client = httpx.Client(base_url=self.url, timeout=120)

    def command(self) -> list[str]:
        return [PHANTOSCOPE, "api", "--port", str(self.port)]

    def start(self, timeout_s: float = 120) -> ApiServer:
        self.home.mkdir(parents=True, exist_ok=True)
        log = open(self.home / "api.log", "ab")  # noqa: SIM115 - handed to the child
        self.process = subprocess.Popen(
            self.command(), env=self.env, stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"API server exited:\n{self.log()}")
            try:
                if self.client.get("/v1/settings/ping").text == "pong":
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"API server did not answer in {timeout_s} s:\n{self.log()}")

    def log(self) -> str:
        return (self.home / "api.log").read_text(errors="replace")[-5000:]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def counts(self) -> dict[str, int]:
        answer = self.client.get("/v1/settings/stats")
        assert answer.status_code == 200, answer.text
        return answer.json()


def counter(api: httpx.Client, name: str) -> float:
    """The value of the server's unlabelled counter ``name`` (``_total`` left out)."""
    [count] = re.findall(rf"^{re.escape(name)}_total (\S+)$", api.get("/metrics").text, re.M)
    return float(count)


def aligned_pairs(api: httpx.Client) -> float:
    """The server's count of candidate pairs its uploads' duplicate checks aligned."""
    return counter(api, "phantoscope_aligned_pairs")
