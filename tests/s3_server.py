"""A real S3 server on loopback for tests: moto's ``ThreadedMotoServer`` (``moto[server]``,
a dev dependency), in this process, on a free port.

    with s3_test_server() as s3:
        store = open_object_store(s3.url)

moto keeps its state per process, shared by every server it starts: give each test its own
bucket names, or call ``s3.reset()`` to forget every bucket.
"""

from __future__ import annotations

import logging
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import quote

__all__ = ["S3TestServer", "s3_test_server"]


@dataclass(frozen=True)
class S3TestServer:
    endpoint_url: str  # http://127.0.0.1:PORT
    host: str
    port: int
    access_key: str
    secret_key: str
    region: str

    @property
    def url(self) -> str:
        """The object store URL for :func:`phantoscope.storage.open_stores.open_object_store`."""
        return self.url_with()

    def url_with(self, **options: object) -> str:
        """The URL with query options, e.g. ``url_with(max_attempts=1)``."""
        query = {"region": self.region, **options}
        q = "&".join(f"{k}={quote(str(v), safe='')}" for k, v in query.items())
        auth = f"{quote(self.access_key, safe='')}:{quote(self.secret_key, safe='')}"
        return f"s3://{auth}@{self.host}:{self.port}?{q}"

    def reset(self) -> None:
        """Forget every bucket and object (all of moto's state in this process)."""
        req = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(req, timeout=10) as resp:
            resp.read()


@contextmanager
def s3_test_server(
    *,
    access_key: str = "phantoscope-test",
    secret_key: str = "phantoscope-test-secret",
    region: str = "us-east-1",
    quiet: bool = True,
) -> Iterator[S3TestServer]:
    """Start moto's S3 server on 127.0.0.1 (a port the OS picks); stop it on exit."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise RuntimeError(
            "the S3 test server needs moto's server: pip install 'moto[server]'"
        ) from e

    # Port 0: the OS picks a free port when the server binds, so there is no race between
    # finding a port and taking it.
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    # werkzeug logs every request moto serves; keep that out of test output unless asked.
    log = logging.getLogger("werkzeug")
    level = log.level
    if quiet:
        log.setLevel(logging.WARNING)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield S3TestServer(
            endpoint_url=f"http://{host}:{port}",
            host=host,
            port=port,
            access_key=access_key,
            secret_key=secret_key,
            region=region,
        )
    finally:
        server.stop()
        if quiet:
            log.setLevel(level)
