"""A supervisor's main thread (`up`, `operator serve --processes`) stops on Ctrl-C even when
the kernel hands the signal to another of its threads (`process_group.wait_for_interrupt`)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

# SIGINT sent to a thread other than the main one, as the kernel may deliver Ctrl-C or a
# SIGTERM to a process with several threads; the main thread then waits as given.
SCRIPT = textwrap.dedent("""
    import signal, sys, threading, time
    from phantoscope.operators.process_group import wait_for_interrupt

    def signal_this_thread():
        time.sleep(0.3)
        signal.pthread_kill(threading.get_ident(), signal.SIGINT)

    threading.Thread(target=signal_this_thread).start()
    try:
        wait_for_interrupt() if sys.argv[1] == "stepped" else threading.Event().wait()
    except KeyboardInterrupt:
        print("interrupted", flush=True)
""")


def _run(wait: str, timeout_s: float) -> str:
    return subprocess.run([sys.executable, "-c", SCRIPT, wait], capture_output=True,
                          text=True, timeout=timeout_s, check=True).stdout


def test_a_signal_handed_to_another_thread_interrupts_the_wait() -> None:
    assert _run("stepped", 30) == "interrupted\n"


def test_an_unbounded_wait_would_miss_it() -> None:
    with pytest.raises(subprocess.TimeoutExpired):
        _run("unbounded", 3)
