"""A clean `phantoscope up` logs no faiss "Could not load library with AVX512 support" lines,
and a clean `phantoscope check` prints no pymilvus "failed to get mvccTs" warnings: users
take them for errors."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time

import httpx
import pytest

from helpers import PHANTOSCOPE, free_port, run_cli

pytestmark = pytest.mark.usefixtures("fixed_ports")  # its `up` takes the operator ports

WARNING_LINE = re.compile(r"warn", re.IGNORECASE)


def test_clean_up_and_check_print_no_library_noise(tmp_path):
    port = free_port()
    env = {**os.environ, "PHANTOSCOPE_HOME": str(tmp_path)}
    process = subprocess.Popen([PHANTOSCOPE, "up", "--port", str(port)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            assert process.poll() is None, process.stdout.read()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v1/settings/ping").text == "pong":
                    break
            except httpx.TransportError:
                time.sleep(0.3)
        # The default pipeline's collection exists now: what makes check's iterators warn.
        answer = httpx.get(f"http://127.0.0.1:{port}/v1/application/default")
        assert answer.status_code == 200, answer.text
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    assert not re.search(r"Could not load library with AVX", output), output
    assert "faiss" not in output.lower(), output

    result = run_cli("check", env={"PHANTOSCOPE_HOME": str(tmp_path)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "clean" in result.stdout
    printed = result.stdout + result.stderr
    assert not [line for line in printed.splitlines() if WARNING_LINE.search(line)], printed
    assert "mvccTs" not in printed
