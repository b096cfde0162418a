import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from api_server import ApiServer
from backends import DEFAULT_BACKENDS, Backends, backend_env, drop_database, milvus_test_server
from helpers import SPEC_PROTO, fixed_ports_lock
from s3_server import s3_test_server

# pytest-xdist's workers start with COLUMNS=80 and LINES=24 in their environment; a Rich
# console made with both set keeps that size for good, whatever COLUMNS a CliRunner test
# gives. Removed here, before any test imports the CLI, so that tables are as wide in a
# worker as in a plain pytest run.
for _variable in ("COLUMNS", "LINES"):
    os.environ.pop(_variable, None)

# `make test` runs two pytest-xdist workers (`pytest -n 2 --dist loadfile`: each test file on
# one worker, its tests in order). Plain `pytest` runs everything in one process.
#
# The modules that start `phantoscope up` (its operators take the fixed ports 50001, 50002,
# ... when free) or otherwise take fixed ports hold the `fixed_ports` fixture, so that no
# other such module runs meanwhile, in any worker or pytest process on this machine: a test
# that checks its `up` left no operator on its ports must not see another test's. Under
# `--dist loadfile` they also go to one worker, one after another (one work unit), so that
# neither worker waits on the other's lock.
FIXED_PORT_MODULES = (
    "tests/load/test_load.py",
    "tests/e2e/test_up.py",
    "tests/e2e/test_up_workers.py",
    "tests/e2e/test_up_api_workers.py",
    "tests/e2e/test_quiet_logs.py",
)
FIXED_PORTS_UNIT = "modules holding fixed_ports"
# Handed out first, slowest first, so that the two workers finish together; the other files
# follow in collection order.
SLOWEST_FIRST = (
    FIXED_PORTS_UNIT,
)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """`--dist loadfile` with the FIXED_PORT_MODULES as one unit and SLOWEST_FIRST first."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    config.option.loadscopereorder = False  # the others in collection order, not by count
    rank = {unit: index for index, unit in enumerate(SLOWEST_FIRST)}

    class FixedPortsTogether(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = super()._split_scope(nodeid)
            return FIXED_PORTS_UNIT if module in FIXED_PORT_MODULES else module

        def _assign_work_unit(self, node) -> None:
            # The queue is filled once, in collection order: the slowest units first.
            units = sorted(self.workqueue.items(),
                           key=lambda unit: rank.get(unit[0], len(rank)))
            self.workqueue.clear()
            self.workqueue.update(units)
            super()._assign_work_unit(node)

    return FixedPortsTogether(config, log)


@pytest.fixture(scope="module")
def fixed_ports(request) -> Iterator[None]:
    """Use in every test module that starts `phantoscope up` or binds fixed ports
    (``pytestmark = pytest.mark.usefixtures("fixed_ports")``), and list the module in
    FIXED_PORT_MODULES: no other such module runs meanwhile on this machine."""
    module = Path(request.path).relative_to(request.config.rootpath).as_posix()
    assert module in FIXED_PORT_MODULES, f"list {module} in FIXED_PORT_MODULES (tests/conftest.py)"
    with fixed_ports_lock():
        yield


@pytest.fixture(scope="session")
def original_stubs(tmp_path_factory) -> Path:
    """Python stubs generated from the original protocol (`../shared/spec/omnisearch.proto`).

    Loaded only in subprocesses: its messages share full names with ours, and one process
    cannot hold both in protobuf's default pool.
    """
    assert SPEC_PROTO.is_file(), f"the original protocol is missing: {SPEC_PROTO}"
    out = tmp_path_factory.mktemp("original_stubs")
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{SPEC_PROTO.parent}",
         f"--python_out={out}", f"--grpc_python_out={out}", SPEC_PROTO.name],
        check=True,
    )
    return out


@pytest.fixture(scope="session")
def milvus_uri(tmp_path_factory) -> Iterator[str]:
    """One Milvus server (PyPI `milvus`) for the whole run, shared by the suites over it."""
    with milvus_test_server(tmp_path_factory.mktemp("milvus-server")) as server:
        yield server.uri


@pytest.fixture(scope="session")
def s3_url() -> Iterator[str]:
    """One S3 server (moto) on loopback for the whole run."""
    with s3_test_server() as server:
        yield server.url


@pytest.fixture
def start_server(request, tmp_path) -> Iterator:
    """``start_server(backends=DEFAULT_BACKENDS, **settings)``: an API server process over
    those backends with ``PHANTOSCOPE_<SETTING>`` set from ``settings`` (stopped, and the
    databases it got dropped, afterwards)."""
    started: list[ApiServer] = []
    databases: list[str] = []

    def start(backends: Backends = DEFAULT_BACKENDS, **settings: str) -> ApiServer:
        env = {f"PHANTOSCOPE_{key.upper()}": value for key, value in settings.items()}
        env.update(backend_env(request, backends, databases))
        server = ApiServer(tmp_path / f"home-{uuid.uuid4().hex[:6]}", env).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
    for url in databases:
        drop_database(url)
