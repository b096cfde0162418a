"""An operator started with `OperatorProcess` never outlives the process that started it,
however that process ends (here: SIGKILL, which leaves it no chance to stop its child)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from phantoscope.operators.rpc_client import OperatorCallError, OperatorClient

TESTS = Path(__file__).resolve().parents[1]
PARENT = textwrap.dedent("""
    import sys, time
    from phantoscope.operators.process import OperatorProcess
    operator = OperatorProcess("inprocess:MeanColourEncoder", env={"PYTHONPATH": sys.argv[1]})
    operator.__enter__()
    print(operator.process.pid, operator.endpoint, flush=True)
    time.sleep(600)
""")


def answers(endpoint: str) -> bool:
    with OperatorClient(endpoint, timeout_s=1) as client:
        try:
            client.health()
            return True
        except OperatorCallError:
            return False


def test_the_operator_stops_when_its_parent_is_killed():
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(TESTS)],
                              stdout=subprocess.PIPE, text=True)
    pid, endpoint = parent.stdout.readline().split()
    try:
        assert answers(endpoint)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 15
        while answers(endpoint) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not answers(endpoint), "the operator outlived the process that started it"
    finally:
        parent.kill()
        with contextlib.suppress(ProcessLookupError):  # gone already unless the test failed
            os.kill(int(pid), signal.SIGKILL)
