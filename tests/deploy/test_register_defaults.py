"""deploy/register_defaults.py, the compose `init` service and the Kubernetes Job: run as the
images run it, against real stores and a real operator server."""

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from deployfiles import DEPLOY
from inprocess import MeanColourEncoder, serve_in_process
from phantoscope.cli.launcher import DEFAULT_APPLICATION, DEFAULT_OPERATOR, DEFAULT_PIPELINE
from phantoscope.storage.meta import MetaStore

SCRIPT = DEPLOY / "register_defaults.py"


@contextmanager
def serving() -> Iterator[str]:
    """The endpoint of a mean-colour encoder served until the block ends."""
    with serve_in_process(MeanColourEncoder()) as server:
        yield f"127.0.0.1:{server.port}"


def _register(home, *args: str) -> subprocess.CompletedProcess:
    env = {name: value for name, value in os.environ.items()
           if not name.startswith("PHANTOSCOPE_")}
    return subprocess.run([sys.executable, str(SCRIPT), *args],
                          env={**env, "PHANTOSCOPE_HOME": str(home)},
                          capture_output=True, text=True, timeout=120)


def test_registers_the_operator_and_makes_the_defaults_then_follows_the_endpoint(tmp_path):
    with serving() as first:
        done = _register(tmp_path, first)
    assert done.returncode == 0, done.stderr
    with serving() as second:
        again = _register(tmp_path, second)
    assert again.returncode == 0, again.stderr
    meta = MetaStore(f"sqlite:///{tmp_path / 'meta.db'}")
    try:
        assert meta.get_operator(DEFAULT_OPERATOR).endpoints == [second]
        assert meta.get_pipeline(DEFAULT_PIPELINE).encoder == DEFAULT_OPERATOR
        assert meta.get_application(DEFAULT_APPLICATION) is not None
    finally:
        meta.close()


def test_registers_the_replicas_listed_then_replaces_the_list(tmp_path):
    """As the Job runs it for a StatefulSet: one comma-separated argument, one entry per
    replica; run again after scaling, the new list replaces the old one."""
    with serving() as first, serving() as second:
        done = _register(tmp_path, f"{first},{second}")
        assert done.returncode == 0, done.stderr
        with serving() as third:
            again = _register(tmp_path, f"{first},{second},{third}")
    assert again.returncode == 0, again.stderr
    meta = MetaStore(f"sqlite:///{tmp_path / 'meta.db'}")
    try:
        assert meta.get_operator(DEFAULT_OPERATOR).endpoints == [first, second, third]
    finally:
        meta.close()


def test_a_first_registration_waits_for_every_replica(tmp_path):
    with serving() as gone:
        pass
    with serving() as up:
        done = _register(tmp_path, f"{up},{gone}")
    assert done.returncode != 0
    assert gone in done.stderr
    meta = MetaStore(f"sqlite:///{tmp_path / 'meta.db'}")
    try:
        assert meta.get_operator(DEFAULT_OPERATOR) is None
    finally:
        meta.close()


def test_without_an_operator_it_fails(tmp_path):
    with serving() as gone:
        pass
    done = _register(tmp_path, gone)
    assert done.returncode != 0
    assert "OPERATOR_UNREACHABLE" in done.stderr or "no operator answers" in done.stderr


def test_usage(tmp_path):
    done = _register(tmp_path)
    assert done.returncode == 2
    assert "OPERATOR_ENDPOINT" in done.stderr
