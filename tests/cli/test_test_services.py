"""scripts/test-services.sh (what `make test` runs first): without the tools it needs, it stops
at once, waiting on nothing, with one line saying what to install."""

from __future__ import annotations

import subprocess

from helpers import REPO

SCRIPT = REPO / "scripts" / "test-services.sh"


def test_missing_tools_stop_it_at_once_with_one_line(tmp_path):
    # A PATH with nothing but a `sleep` that notes each call: the script may only wait (its
    # 60 s polls) by running it, and what it would start or install is not there.
    tools = tmp_path / "bin"
    tools.mkdir()
    slept = tmp_path / "slept"
    (tools / "sleep").write_text(f'#!/bin/bash\necho "$@" >> {slept}\n')
    (tools / "sleep").chmod(0o755)
    result = subprocess.run(["/bin/bash", str(SCRIPT)], env={"PATH": str(tools)},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert not slept.exists(), "it waited before saying what is missing"
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert len(lines) == 1, lines
    assert "missing" in lines[0] and "chromium" in lines[0] and "apt-get install" in lines[0]


def test_make_test_and_ci_run_use_it():
    makefile = (REPO / "Makefile").read_text()
    assert "scripts/test-services.sh" in makefile
    assert "test: services" in makefile
    assert "make test" in (REPO / ".ci" / "run").read_text()


def test_it_can_be_skipped(tmp_path):
    result = subprocess.run(["/bin/bash", str(SCRIPT)], capture_output=True, text=True,
                            env={"PATH": str(tmp_path), "PHANTOSCOPE_TEST_SERVICES": "skip"},
                            timeout=30)
    assert result.returncode == 0 and not result.stdout + result.stderr
