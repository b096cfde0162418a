"""Fetching images by URL without becoming a proxy into the host's network.

Every hop (the URL and each redirect) is resolved once, every address it resolves to is
checked, and the connection goes to that checked address — so a DNS answer that changes
between check and connect cannot smuggle a request to a private service.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import urllib3

MAX_REDIRECTS = 3


class FetchError(ValueError):
    """A URL that could not or must not be fetched; the message says which and why."""


class UrlRefusedError(FetchError):
    """A URL this server must not fetch (scheme, or an address that is not public)."""


@dataclass(frozen=True)
class FetchPolicy:
    """Limits for fetching by URL."""

    timeout_s: float = 10.0
    max_bytes: int = 32 * 1024 * 1024
    allow_private: bool = False  # allow loopback, private, link-local and reserved addresses


def _is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def _resolve(host: str, port: int, policy: FetchPolicy) -> str:
    """Resolve ``host`` and return an address it is allowed to reach."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise FetchError(f"cannot resolve host {host!r} ({exc.strerror})") from None
    except UnicodeError:
        raise FetchError(f"host {host[:100]!r} is not a valid host name") from None
    addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    if not policy.allow_private:
        refused = [a for a in addresses if not _is_public(a)]
        if refused:
            raise UrlRefusedError(
                f"refusing to fetch from {host!r}: it resolves to the non-public address "
                f"{refused[0]} (loopback, private, link-local and reserved addresses are "
                "blocked; set PHANTOSCOPE_ALLOW_PRIVATE_URLS=1 to allow them)"
            )
    return str(addresses[0])


def _pool(scheme: str, host: str, address: str, port: int, timeout_s: float):
    timeout = urllib3.Timeout(connect=timeout_s, read=timeout_s)
    if scheme == "https":
        return urllib3.HTTPSConnectionPool(
            address, port, timeout=timeout, retries=False,
            server_hostname=host, assert_hostname=host,
        )
    return urllib3.HTTPConnectionPool(address, port, timeout=timeout, retries=False)


def fetch_url(url: str, policy: FetchPolicy | None = None) -> bytes:
    """Download ``url`` (http or https) within ``policy``'s limits and return its body."""
    policy = policy or FetchPolicy()
    deadline = time.monotonic() + policy.timeout_s
    for _ in range(MAX_REDIRECTS + 1):
        try:
            parts = urlsplit(url)
            hostname = parts.hostname
        except ValueError as exc:
            raise FetchError(f"URL {url[:200]!r} is malformed ({exc})") from None
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise FetchError(f"URL {url[:200]!r} has an invalid port") from None
        if parts.scheme not in ("http", "https"):
            raise UrlRefusedError(f"unsupported URL scheme {parts.scheme!r}: use http or https")
        if not hostname:
            raise UrlRefusedError(f"URL {url!r} has no host")
        address = _resolve(hostname, port, policy)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host_header = parts.netloc.rsplit("@", 1)[-1]
        with _pool(parts.scheme, hostname, address, port, policy.timeout_s) as pool:
            try:
                response = pool.urlopen(
                    "GET", path, headers={"Host": host_header}, redirect=False,
                    preload_content=False, retries=False,
                )
            except urllib3.exceptions.HTTPError as exc:
                raise FetchError(f"cannot fetch {url!r}: {exc}") from None
            try:
                if response.status in (301, 302, 303, 307, 308):
                    location = response.headers.get("Location")
                    if not location:
                        raise FetchError(f"{url!r} redirected without a Location")
                    url = urljoin(url, location)
                    continue
                if response.status != 200:
                    raise FetchError(f"fetching {url!r} answered HTTP {response.status}")
                return _read_capped(response, url, policy.max_bytes, deadline)
            finally:
                response.release_conn()
    raise FetchError(f"too many redirects (more than {MAX_REDIRECTS}) from {url!r}")


def _read_capped(
    response: urllib3.BaseHTTPResponse, url: str, max_bytes: int, deadline: float
) -> bytes:
    """The body, refused past ``max_bytes`` or once ``deadline`` (the whole fetch's) passes."""
    declared = response.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise FetchError(f"{url!r} is {int(declared):,} bytes; the limit is {max_bytes:,}")
    chunks, total = [], 0
    try:
        while chunk := response.read1(64 * 1024):
            if time.monotonic() > deadline:
                raise FetchError(f"fetching {url!r} took longer than the time limit")
            total += len(chunk)
            if total > max_bytes:
                raise FetchError(f"{url!r} is larger than the limit of {max_bytes:,} bytes")
            chunks.append(chunk)
    except urllib3.exceptions.HTTPError as exc:
        raise FetchError(f"cannot fetch {url!r}: {exc}") from None
    return b"".join(chunks)
