"""A real Milvus server on localhost, from the PyPI package `milvus` (Milvus 2.3.x standalone).

For integration tests and for trying the scale-out path on one machine::

    with LocalMilvusServer(tmp_path / "milvus") as server:
        store = open_vector_store(server.uri)

What this adds over the package's own `MilvusServer`:

- every port is free and chosen here (gRPC, metrics/health and the embedded etcd's client
  and peer ports, which the package leaves at 2379/2380), so several servers (several test
  sessions on one machine) can run side by side;
- the ~250 MB of binaries are unpacked once into a cache folder and linked into each data
  folder, not unpacked again per server;
- no `os.chdir` (the package's `start()` changes the whole process's directory);
- `stop()` sends SIGTERM, waits `grace_s`, then SIGKILL (Milvus 2.3.5 often ignores SIGTERM);
- on Linux the server never outlives this process, even one killed with SIGKILL: it is
  started with a parent-death signal (`PR_SET_PDEATHSIG`, set by a Python shim that then
  execs the server), from a thread that lives as long as the process (the signal follows the
  thread that forked).

Needs the optional `milvus` package (a dev dependency); Linux or macOS.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType

__all__ = ["LocalMilvusServer", "MilvusServerError", "binary_cache_dir"]

STARTUP_TIMEOUT_S = 120.0

# argv: the parent's pid, then the command. PR_SET_PDEATHSIG is option 1 of prctl(2); the
# setting survives execv. A parent gone before prctl ran would never send it: exit instead.
_EXEC_DYING_WITH_PARENT = (
    "import ctypes, os, signal, sys\n"
    "if ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL) != 0:\n"
    "    sys.exit(f'prctl(PR_SET_PDEATHSIG) failed: {os.strerror(ctypes.get_errno())}')\n"
    "if os.getppid() != int(sys.argv[1]):\n"
    "    sys.exit('the process starting the Milvus server is gone')\n"
    "os.execv(sys.argv[2], sys.argv[2:])\n"
)
_starter = ThreadPoolExecutor(1, thread_name_prefix="milvus-server-starter")


class MilvusServerError(RuntimeError):
    """The Milvus server could not be started (message says why and where its logs are)."""


def _milvus_package():
    try:
        import milvus  # the PyPI package `milvus` (Milvus server binaries)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MilvusServerError(
            "starting a local Milvus server needs the `milvus` package: pip install 'milvus>=2.3'"
        ) from exc
    return milvus


def binary_cache_dir() -> Path:
    """Where the unpacked server binaries are kept: ``$PHANTOSCOPE_MILVUS_BIN_CACHE``, else
    ``$XDG_CACHE_HOME/phantoscope/milvus-server-<version>`` (``~/.cache`` by default)."""
    if env := os.environ.get("PHANTOSCOPE_MILVUS_BIN_CACHE"):
        return Path(env)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "phantoscope" / f"milvus-server-{_milvus_package().__version__}"


def _unpacked_binaries() -> Path:
    """Unpack the package's binaries into the cache once (under a file lock); return bin/."""
    import fcntl

    milvus = _milvus_package()
    cache = binary_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        # Writes cache/bin/* and an .lzma.md5 beside each; skips files whose md5 matches.
        milvus._initialize_data_files(str(cache))
    return cache / "bin"


def _free_ports(count: int) -> list[int]:
    """`count` distinct ports the kernel says are free now (bound together, then released)."""
    socks = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            socks.append(sock)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class LocalMilvusServer:
    """One Milvus standalone process with its data, logs and config under `base_dir`.

    `port` is the gRPC port clients use (a free one when None). `config` overrides keys of
    milvus.yaml by dotted path (``{"queryCoord.checkInterval": 200}``); only keys the
    package's template already has can be set. `start()` blocks until the server answers its
    health check and returns the URI (``http://127.0.0.1:PORT``).
    """

    def __init__(self, base_dir: str | os.PathLike[str], *, port: int | None = None,
                 config: dict[str, object] | None = None,
                 startup_timeout_s: float = STARTUP_TIMEOUT_S, grace_s: float = 3.0) -> None:
        self.base_dir = Path(base_dir).resolve()
        self._port = port
        self.config = dict(config or {})
        self.startup_timeout_s = startup_timeout_s
        self.grace_s = grace_s
        self.metrics_port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._logs: list = []

    # -- public -----------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise MilvusServerError("the Milvus server has no port yet: call start() first")
        return self._port

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def log_dir(self) -> Path:
        return self.base_dir / "logs"

    def start(self) -> str:
        if self.running:
            return self.uri
        milvus = _milvus_package()
        bin_dir = _unpacked_binaries()
        self.base_dir.mkdir(parents=True, exist_ok=True)
        link = self.base_dir / "bin"
        if not link.exists():
            link.symlink_to(bin_dir, target_is_directory=True)

        port_keys = [k for k in milvus.MilvusServerConfig().configurable_items if
                     k.endswith("_port")]
        ports = _free_ports(len(port_keys) + 3)
        self.metrics_port, etcd_peer_port, etcd_client_port = ports.pop(), ports.pop(), ports.pop()
        chosen = dict(zip(port_keys, ports, strict=True))
        if self._port is None:
            self._port = chosen["proxy_port"]
        chosen["proxy_port"] = self._port

        config = milvus.MilvusServerConfig(data_dir=str(self.base_dir), **chosen)
        for key, value in self.config.items():
            config.set(key, value)
        config.resolve()  # writes configs/milvus.yaml and creates logs/ and data/
        self._add_etcd_config(etcd_client_port, etcd_peer_port)

        env = os.environ.copy()
        env.update({
            "DEPLOY_MODE": "STANDALONE",
            "METRICS_PORT": str(self.metrics_port),
            "MILVUS_RUN_DIR": str(self.base_dir / "run"),
            "LD_LIBRARY_PATH": os.pathsep.join(
                p for p in (str(link), os.environ.get("LD_LIBRARY_PATH", "")) if p),
        })
        self.log_dir.mkdir(parents=True, exist_ok=True)
        out = open(self.log_dir / "milvus-stdout.log", "wb")  # noqa: SIM115 - kept until stop()
        err = open(self.log_dir / "milvus-stderr.log", "wb")  # noqa: SIM115
        self._logs = [out, err]
        command = [str(link / "milvus"), "run", "standalone"]
        if sys.platform.startswith("linux"):
            command = [sys.executable, "-c", _EXEC_DYING_WITH_PARENT, str(os.getpid()), *command]
        self._proc = _starter.submit(
            subprocess.Popen, command, cwd=self.base_dir, env=env,
            stdin=subprocess.DEVNULL, stdout=out, stderr=err,
            start_new_session=True,  # a Ctrl+C in the terminal is for us, not for it
        ).result()
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self.uri

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL after `grace_s`). Data stays in base_dir."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=self.grace_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait(timeout=10)
        for f in self._logs:
            f.close()
        self._logs = []

    def __enter__(self) -> LocalMilvusServer:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- internals --------------------------------------------------------------------

    def _add_etcd_config(self, client_port: int, peer_port: int) -> None:
        """Point the embedded etcd at free ports (by default it listens on 2379 and 2380)."""
        etcd_yaml = self.base_dir / "configs" / "embed-etcd.yaml"
        peer = f"http://127.0.0.1:{peer_port}"
        client = f"http://127.0.0.1:{client_port}"
        etcd_yaml.write_text(
            "name: default\n"
            f"listen-peer-urls: {peer}\ninitial-advertise-peer-urls: {peer}\n"
            f"initial-cluster: default={peer}\n"
            f"listen-client-urls: {client}\nadvertise-client-urls: {client}\n"
        )
        milvus_yaml = self.base_dir / "configs" / "milvus.yaml"
        lines = milvus_yaml.read_text().splitlines()
        at = lines.index("etcd:") + 1
        lines[at:at] = ["  config:", f"    path: {etcd_yaml}"]
        milvus_yaml.write_text("\n".join(lines) + "\n")

    def _wait_healthy(self) -> None:
        url = f"http://127.0.0.1:{self.metrics_port}/healthz"
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                code = None if self._proc is None else self._proc.returncode
                raise MilvusServerError(
                    f"the Milvus server exited during startup (exit status {code}); "
                    f"see the logs in {self.log_dir}")
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    if b"OK" in resp.read():
                        return
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.1)
        raise MilvusServerError(
            f"the Milvus server did not become healthy in {self.startup_timeout_s:.0f} s; "
            f"see the logs in {self.log_dir}")
