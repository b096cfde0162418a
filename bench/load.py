"""Load on loopback: many clients searching while a few upload, against `phantoscope up`
(Milvus Lite, SQLite, a folder, the default encoder) pre-loaded with photos.

    .venv/bin/python bench/load.py [--preload 300] [--searchers 32] [--uploaders 4]
                                   [--warmup 10] [--duration 45]

Prints search QPS and latency percentiles, the upload rate, errors, and the API server's
resident memory after the warm-up, at the end and its range in between.
tests/load/test_load.py runs `run_load` and asserts what the issue asks: no errors, memory
within 20 %.
"""

from __future__ import annotations

import argparse
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import httpx
from common import Latency, engine, make_photos, rss_mb, with_comment

APP = "default"  # made by `phantoscope up` on first start
PRELOAD_BATCH = 16
RSS_SAMPLE_S = 0.5


@dataclass
class Tally:
    """What the clients saw in the measured window (after the warm-up)."""

    search_ms: list[float] = field(default_factory=list)
    uploads: int = 0
    errors: list[str] = field(default_factory=list)  # "<status or exception>: <request>"
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass(frozen=True)
class LoadReport:
    searchers: int
    uploaders: int
    duration_s: float
    searches: int
    search: Latency
    uploads: int
    errors: list[str]
    rss_after_warmup_mb: float
    rss_end_mb: float
    rss_window_mb: tuple[float, float]  # lowest and highest, sampled every RSS_SAMPLE_S

    @property
    def qps(self) -> float:
        return self.searches / self.duration_s

    @property
    def upload_rate(self) -> float:
        return self.uploads / self.duration_s

    def lines(self) -> list[str]:
        change = (self.rss_end_mb / self.rss_after_warmup_mb - 1) * 100
        return [
            f"{self.searchers} searching, {self.uploaders} uploading, "
            f"{self.duration_s:.0f} s measured",
            f"search: {self.searches} requests, {self.qps:.1f} QPS, {self.search.summary()}",
            f"upload: {self.uploads} images, {self.upload_rate:.1f} images/s",
            f"errors: {len(self.errors)}",
            f"API server RSS: {self.rss_after_warmup_mb:.0f} MB after warm-up, "
            f"{self.rss_end_mb:.0f} MB at the end ({change:+.1f} %), "
            f"{self.rss_window_mb[0]:.0f}-{self.rss_window_mb[1]:.0f} MB in between",
        ]


def _preload(client: httpx.Client, photos: list[bytes]) -> None:
    for start in range(0, len(photos), PRELOAD_BATCH):
        chunk = photos[start:start + PRELOAD_BATCH]
        answer = client.post(f"/v1/application/{APP}/upload/batch", files=[
            ("files", (f"p{start + i}.jpg", data, "image/jpeg")) for i, data in enumerate(chunk)])
        answer.raise_for_status()
        assert answer.json()["failed"] == 0, answer.text


def _fresh_uploads(photos: list[bytes]) -> Iterator[bytes]:
    """Each photo once, then each again with a comment that makes it a new file."""
    yield from photos
    for round_ in itertools.count(1):
        for index, data in enumerate(photos):
            yield with_comment(data, f"round {round_} photo {index}")


def _client_loop(url: str, request: Callable[[httpx.Client], httpx.Response], kind: str,
                 measuring: threading.Event, stop: threading.Event, tally: Tally) -> None:
    with httpx.Client(base_url=url, timeout=60) as client:
        while not stop.is_set():
            started = time.perf_counter()
            counted = measuring.is_set()
            try:
                answer = client.send(request(client))
                failure = None if answer.status_code == 200 else (
                    f"{answer.status_code} {answer.text[:200]}")
            except httpx.HTTPError as exc:
                failure = f"{type(exc).__name__}: {exc}"
            elapsed_ms = (time.perf_counter() - started) * 1000
            with tally.lock:
                if failure is not None:
                    tally.errors.append(f"{kind}: {failure}")
                elif counted and measuring.is_set():
                    if kind == "search":
                        tally.search_ms.append(elapsed_ms)
                    else:
                        tally.uploads += 1


def _sample_rss(pid: int, stop: threading.Event, samples: list[float]) -> None:
    while not stop.wait(RSS_SAMPLE_S):
        samples.append(rss_mb(pid))


def run_load(preload: int = 300, searchers: int = 32, uploaders: int = 4,
             warmup_s: float = 10, duration_s: float = 45) -> LoadReport:
    """Start `phantoscope up`, pre-load ``preload`` photos, then run the clients for
    ``warmup_s`` (not counted) and ``duration_s`` (counted). Every error is kept, warm-up
    included."""
    photos = make_photos(preload, seed=1)
    upload_pool = make_photos(200, seed=2)
    with engine() as running:
        with httpx.Client(base_url=running.url, timeout=300) as client:
            _preload(client, photos)
        queries = itertools.cycle(photos)
        fresh = _fresh_uploads(upload_pool)
        pick = threading.Lock()

        def next_of(source: Iterator[bytes]) -> bytes:
            with pick:
                return next(source)

        def search(client: httpx.Client) -> httpx.Response:
            return client.build_request(
                "POST", f"/v1/application/{APP}/search", data={"topk": "10"},
                files={"file": ("q.jpg", next_of(queries), "image/jpeg")})

        def upload(client: httpx.Client) -> httpx.Response:
            return client.build_request(
                "POST", f"/v1/application/{APP}/upload",
                files={"file": ("u.jpg", next_of(fresh), "image/jpeg")})

        tally, measuring, stop = Tally(), threading.Event(), threading.Event()
        workers = [
            threading.Thread(target=_client_loop, args=(
                running.url, request, kind, measuring, stop, tally))
            for kind, request, count in (("search", search, searchers),
                                         ("upload", upload, uploaders))
            for _ in range(count)
        ]
        for worker in workers:
            worker.start()
        time.sleep(warmup_s)
        rss_after_warmup = rss_mb(running.api_pid)
        rss_samples = [rss_after_warmup]
        sampled = threading.Event()
        sampler = threading.Thread(target=_sample_rss,
                                   args=(running.api_pid, sampled, rss_samples))
        measuring.set()
        started = time.monotonic()
        sampler.start()
        time.sleep(duration_s)
        measuring.clear()
        measured = time.monotonic() - started
        sampled.set()
        sampler.join()
        rss_end = rss_mb(running.api_pid)
        rss_samples.append(rss_end)
        stop.set()
        for worker in workers:
            worker.join()
    return LoadReport(
        searchers=searchers, uploaders=uploaders, duration_s=measured,
        searches=len(tally.search_ms), search=Latency(tuple(tally.search_ms)),
        uploads=tally.uploads, errors=tally.errors, rss_after_warmup_mb=rss_after_warmup,
        rss_end_mb=rss_end, rss_window_mb=(min(rss_samples), max(rss_samples)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preload", type=int, default=300)
    parser.add_argument("--searchers", type=int, default=32)
    parser.add_argument("--uploaders", type=int, default=4)
    parser.add_argument("--warmup", type=float, default=10)
    parser.add_argument("--duration", type=float, default=45)
    args = parser.parse_args()
    report = run_load(args.preload, args.searchers, args.uploaders, args.warmup, args.duration)
    print("\n".join(report.lines()))
    for error in report.errors[:10]:
        print("  ", error)


if __name__ == "__main__":
    main()
