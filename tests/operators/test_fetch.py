"""Fetching images by URL: only public http(s) addresses by default, within size and time limits.

Every server here is a real HTTP server on 127.0.0.1; the tests that fetch successfully opt in
with ``FetchPolicy(allow_private=True)``, as ``PHANTOSCOPE_ALLOW_PRIVATE_URLS=1`` does.
"""

from __future__ import annotations

import os
from http.server import BaseHTTPRequestHandler

import pytest

from phantoscope.imaging.fetch import MAX_REDIRECTS, FetchError, FetchPolicy, fetch_url

LOOPBACK = FetchPolicy(allow_private=True, timeout_s=5)
BODY = os.urandom(100_000)


def test_loopback_refused_by_default(http_server) -> None:
    url = http_server.serve_bytes("/cat.jpg", BODY)
    with pytest.raises(FetchError) as refused:
        fetch_url(url)
    message = str(refused.value)
    assert "non-public address" in message
    assert "127.0.0.1" in message
    assert "PHANTOSCOPE_ALLOW_PRIVATE_URLS" in message
    assert http_server.hits == []  # refused before connecting


def test_allowed_loopback_returns_exact_bytes(http_server) -> None:
    url = http_server.serve_bytes("/cat.jpg", BODY)
    assert fetch_url(url, LOOPBACK) == BODY
    assert http_server.hits == ["/cat.jpg"]


def test_query_string_is_sent(http_server) -> None:
    url = http_server.serve_bytes("/img?id=7&size=big", b"seven")
    assert fetch_url(url, LOOPBACK) == b"seven"


def test_empty_body(http_server) -> None:
    assert fetch_url(http_server.serve_bytes("/empty", b""), LOOPBACK) == b""


@pytest.mark.parametrize(
    "host", ["localhost", "[::1]", "[::ffff:127.0.0.1]", "127.0.0.2", "127.1", "0.0.0.0"]
)
def test_loopback_spellings_refused(http_server, host: str) -> None:
    port = http_server.server_address[1]
    http_server.serve_bytes("/x", b"x")
    with pytest.raises(FetchError, match="non-public address"):
        fetch_url(f"http://{host}:{port}/x")
    assert http_server.hits == []


@pytest.mark.parametrize(
    "url",
    ["http://10.0.0.1/a.jpg", "http://192.168.1.1/a.jpg", "http://169.254.169.254/latest/",
     "http://[fe80::1]/a.jpg", "http://[fd00::1]/a.jpg", "http://100.64.0.1/a.jpg"],
)
def test_private_and_link_local_refused(url: str) -> None:
    with pytest.raises(FetchError, match="non-public address"):
        fetch_url(url, FetchPolicy(timeout_s=0.5))


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("file:///etc/passwd", "unsupported URL scheme 'file'"),
        ("ftp://127.0.0.1/a.jpg", "unsupported URL scheme 'ftp'"),
        ("gopher://127.0.0.1:70/_x", "unsupported URL scheme 'gopher'"),
        ("/relative/path.jpg", "unsupported URL scheme ''"),
        ("http:///path.jpg", "has no host"),
        ("http://:8080/path.jpg", "has no host"),
        ("https://", "has no host"),
        ("http://127.0.0.1:99999/a.jpg", "invalid port"),
    ],
)
def test_unusable_urls(url: str, reason: str) -> None:
    with pytest.raises(FetchError, match=reason):
        fetch_url(url, LOOPBACK)


@pytest.mark.parametrize(
    "url",
    ["http://[::1", "http://[not-an-address]/a.jpg", "http://" + "a" * 64 + ".example/a.jpg"],
    ids=["unclosed-bracket", "bad-ipv6", "label-too-long"],
)
def test_malformed_urls_are_fetch_errors(url: str) -> None:
    # The server turns FetchError (only) into INVALID_ARGUMENT naming the item.
    with pytest.raises(FetchError):
        fetch_url(url, LOOPBACK)


def test_http_error_status(http_server) -> None:
    with pytest.raises(FetchError, match="HTTP 404"):
        fetch_url(http_server.url("/missing.jpg"), LOOPBACK)

    def teapot(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(500)
        handler.send_header("Content-Length", "4")
        handler.end_headers()
        handler.wfile.write(b"oops")

    http_server.routes["/broken"] = teapot
    with pytest.raises(FetchError, match="HTTP 500"):
        fetch_url(http_server.url("/broken"), LOOPBACK)


def test_body_over_limit_with_content_length(http_server) -> None:
    url = http_server.serve_bytes("/big", BODY)
    small = FetchPolicy(allow_private=True, timeout_s=5, max_bytes=len(BODY) - 1)
    with pytest.raises(FetchError, match=f"the limit is {len(BODY) - 1:,}"):
        fetch_url(url, small)
    exact = FetchPolicy(allow_private=True, timeout_s=5, max_bytes=len(BODY))
    assert fetch_url(url, exact) == BODY


def _close_delimited(body: bytes):
    """HTTP/1.0 without Content-Length: the body ends when the server closes."""

    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "image/jpeg")
        handler.end_headers()
        for start in range(0, len(body), 8192):
            handler.wfile.write(body[start : start + 8192])

    return route


def _chunked(body: bytes):
    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.protocol_version = "HTTP/1.1"
        handler.close_connection = True
        handler.send_response(200)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.send_header("Connection", "close")
        handler.end_headers()
        for start in range(0, len(body), 8192):
            chunk = body[start : start + 8192]
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        handler.wfile.write(b"0\r\n\r\n")

    return route


def _lying_length(body: bytes):
    """Declares a small Content-Length, then sends more than it said and closes."""

    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "not-a-number")
        handler.end_headers()
        handler.wfile.write(body)

    return route


@pytest.mark.parametrize("make_route", [_close_delimited, _chunked, _lying_length])
def test_body_over_limit_without_usable_content_length(http_server, make_route) -> None:
    http_server.routes["/stream"] = make_route(BODY)
    url = http_server.url("/stream")
    assert fetch_url(url, LOOPBACK) == BODY
    small = FetchPolicy(allow_private=True, timeout_s=5, max_bytes=50_000)
    with pytest.raises(FetchError, match="larger than the limit of 50,000 bytes"):
        fetch_url(url, small)


def test_slow_server_times_out(http_server) -> None:
    def stall(handler: BaseHTTPRequestHandler) -> None:
        handler.server.release.wait(2)  # released when the test ends
        handler.send_response(200)
        handler.send_header("Content-Length", "2")
        handler.end_headers()
        handler.wfile.write(b"ok")

    http_server.routes["/slow"] = stall
    with pytest.raises(FetchError, match="timed out"):
        fetch_url(http_server.url("/slow"), FetchPolicy(allow_private=True, timeout_s=0.3))


def test_server_dripping_the_body_past_the_timeout_is_cut_off(http_server) -> None:
    # Each byte arrives well within the timeout, but the whole body takes several timeouts.
    def drip(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "8")
        handler.end_headers()
        for _ in range(8):
            handler.wfile.write(b"x")
            handler.wfile.flush()
            if handler.server.release.wait(0.1):
                return

    http_server.routes["/drip"] = drip
    with pytest.raises(FetchError):
        fetch_url(http_server.url("/drip"), FetchPolicy(allow_private=True, timeout_s=0.3))


def test_connection_refused(http_server) -> None:
    port = http_server.server_address[1]
    http_server.shutdown()
    http_server.server_close()
    with pytest.raises(FetchError, match="cannot fetch"):
        fetch_url(f"http://127.0.0.1:{port}/a.jpg", LOOPBACK)


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirect_followed_when_allowed(http_server, status: int) -> None:
    http_server.serve_bytes("/real.jpg", BODY)
    url = http_server.redirect("/moved", "/real.jpg", status)
    assert fetch_url(url, LOOPBACK) == BODY
    assert http_server.hits == ["/moved", "/real.jpg"]


def test_redirect_with_absolute_location(http_server) -> None:
    target = http_server.serve_bytes("/real.jpg", BODY)
    assert fetch_url(http_server.redirect("/moved", target), LOOPBACK) == BODY


def test_redirect_chain_up_to_the_limit(http_server) -> None:
    http_server.serve_bytes("/end", b"end")
    for hop in range(MAX_REDIRECTS):
        http_server.redirect(f"/hop{hop}", f"/hop{hop + 1}" if hop + 1 < MAX_REDIRECTS else "/end")
    assert fetch_url(http_server.url("/hop0"), LOOPBACK) == b"end"
    assert http_server.hits == [f"/hop{hop}" for hop in range(MAX_REDIRECTS)] + ["/end"]


def test_redirect_chain_over_the_limit(http_server) -> None:
    hops = MAX_REDIRECTS + 1
    http_server.serve_bytes("/end", b"end")
    for hop in range(hops):
        http_server.redirect(f"/hop{hop}", f"/hop{hop + 1}" if hop + 1 < hops else "/end")
    with pytest.raises(FetchError, match="too many redirects"):
        fetch_url(http_server.url("/hop0"), LOOPBACK)
    assert "/end" not in http_server.hits


def test_redirect_loop(http_server) -> None:
    http_server.redirect("/a", "/b")
    http_server.redirect("/b", "/a")
    with pytest.raises(FetchError, match="too many redirects"):
        fetch_url(http_server.url("/a"), LOOPBACK)


@pytest.mark.parametrize(
    ("location", "reason"),
    [("file:///etc/passwd", "unsupported URL scheme 'file'"),
     ("ftp://127.0.0.1/x", "unsupported URL scheme 'ftp'")],
)
def test_redirect_to_other_scheme_refused(http_server, location: str, reason: str) -> None:
    url = http_server.redirect("/moved", location)
    with pytest.raises(FetchError, match=reason):
        fetch_url(url, LOOPBACK)


def test_redirect_without_location(http_server) -> None:
    def bare(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(302)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    http_server.routes["/bare"] = bare
    with pytest.raises(FetchError, match="without a Location"):
        fetch_url(http_server.url("/bare"), LOOPBACK)

