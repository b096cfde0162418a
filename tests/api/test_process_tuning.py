"""An API server process's set-up (api/process_tuning.py), each in a child process of its
own: the settings are the whole process's."""

from __future__ import annotations

import json
import platform
import subprocess
import sys

import pytest

# Three 20 MB buffers made and freed again and again, as an upload's body, its images and
# its request to an operator are: the page faults of the rounds after the first.
_CHURN = """
import asyncio.selector_events, gc, json, resource, sys
from phantoscope.api.process_tuning import tune_server_process
if sys.argv[1] == "tuned":
    tune_server_process()
from threadpoolctl import threadpool_info

def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt

def churn():
    buffers = [b"x" * (20 << 20) for _ in range(3)]
    del buffers

churn()
before = faults()
for _ in range(5):
    churn()
print(json.dumps({
    "faults": faults() - before,
    "blas_threads": [pool["num_threads"] for pool in threadpool_info()
                     if pool["user_api"] == "blas"],
    "frozen": gc.get_freeze_count(),
    "socket_read": asyncio.selector_events._SelectorSocketTransport.max_size,
}))
"""


def _run(mode: str) -> dict:
    done = subprocess.run([sys.executable, "-c", _CHURN, mode], capture_output=True,
                          text=True, timeout=120, check=True)
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def processes() -> tuple[dict, dict]:
    """What a plain and a tuned child process report, run once for the module's tests."""
    return _run("plain"), _run("tuned")


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc",
                    reason="the allocator settings are glibc's mallopt; with another C "
                    "library the process keeps its allocator as it is")
def test_large_buffers_are_reused_not_faulted_in_again(processes):
    plain, tuned = processes
    # untuned, glibc hands the 60 MB back after each round and faults it in again
    assert plain["faults"] > 5 * (60 << 20) // 4096 // 2
    assert tuned["faults"] < plain["faults"] / 20


def test_blas_runs_one_thread_and_startup_objects_are_frozen(processes):
    plain, tuned = processes
    assert tuned["blas_threads"] and set(tuned["blas_threads"]) == {1}
    assert tuned["frozen"] > 10_000 and plain["frozen"] == 0


def test_sockets_are_read_a_mebibyte_at_a_time(processes):
    plain, tuned = processes
    assert plain["socket_read"] == 256 << 10  # asyncio's own
    assert tuned["socket_read"] == 1 << 20
