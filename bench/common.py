"""Shared bits of the benchmarks: real photos at many sizes, `phantoscope up` in a temporary
home, timing statistics, process memory and plain-text tables."""

from __future__ import annotations

import io
import os
import signal
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
from PIL import Image, ImageEnhance, ImageOps

from phantoscope.client import Job, PhantoscopeClient
from phantoscope.operators.process import PHANTOSCOPE, free_port
from phantoscope.photoset import sample_photo

# scikit-image's bundled photos (no download); the grey ones are converted to RGB.
PHOTO_NAMES = (
    "astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field",
    "retina", "stereo_motorcycle", "camera", "coins", "brick", "grass", "gravel", "page",
    "moon", "text", "clock", "horse", "cell", "colorwheel",
)
MIN_SIDE = 320  # long side of the smallest photos made, in pixels
MAX_SIDE = 2400  # long side of the largest


# -- photos -----------------------------------------------------------------------------------


def _variant(base: Image.Image, rng: np.random.Generator) -> bytes:
    """A JPEG of a random crop of ``base``, mirrored or not, recoloured, rescaled so that its
    long side lies between MIN_SIDE and MAX_SIDE (log-uniform)."""
    width, height = base.size
    keep_w, keep_h = rng.uniform(0.55, 1.0, 2)
    left = rng.uniform(0, 1 - keep_w) * width
    top = rng.uniform(0, 1 - keep_h) * height
    image = base.crop((int(left), int(top), int(left + keep_w * width),
                       int(top + keep_h * height)))
    if rng.random() < 0.5:
        image = ImageOps.mirror(image)
    image = ImageEnhance.Color(image).enhance(rng.uniform(0.6, 1.4))
    image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.8, 1.2))
    long_side = float(np.exp(rng.uniform(np.log(MIN_SIDE), np.log(MAX_SIDE))))
    scale = long_side / max(image.size)
    size = (max(16, round(image.width * scale)), max(16, round(image.height * scale)))
    image = image.resize(size, Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=int(rng.integers(75, 95)))
    return buffer.getvalue()


def make_photos(count: int, seed: int = 0, names: Sequence[str] = PHOTO_NAMES) -> list[bytes]:
    """``count`` distinct JPEGs made from scikit-image's photos, 320 to 2400 px long side."""
    rng = np.random.default_rng(seed)
    bases = [sample_photo(name) for name in names]
    return [_variant(bases[index % len(bases)], rng) for index in range(count)]


def with_comment(jpeg: bytes, text: str) -> bytes:
    """The same JPEG with a comment segment after its SOI marker: new bytes (a new SHA-256),
    same pixels. Used to make many distinct files cheaply for memory runs."""
    payload = text.encode()
    return jpeg[:2] + b"\xff\xfe" + (len(payload) + 2).to_bytes(2, "big") + payload + jpeg[2:]


def write_photos(folder: Path, photos: Sequence[bytes]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, data in enumerate(photos):
        path = folder / f"photo-{index:06d}.jpg"
        path.write_bytes(data)
        paths.append(path)
    return paths


def describe_photos(photos: Sequence[bytes]) -> str:
    sides = []
    for data in photos:
        with Image.open(io.BytesIO(data)) as image:
            sides.append(max(image.size))
    megabytes = sum(len(data) for data in photos) / 1e6
    return (f"{len(photos)} JPEGs, long side {min(sides)}-{max(sides)} px "
            f"(median {int(statistics.median(sides))}), {megabytes:.1f} MB")


# -- timing -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Latency:
    """Latencies in milliseconds."""

    samples: tuple[float, ...]

    def pct(self, q: float) -> float:
        return float(np.percentile(self.samples, q))

    @property
    def p50(self) -> float:
        return self.pct(50)

    def summary(self) -> str:
        return f"p50 {self.pct(50):.1f} / p95 {self.pct(95):.1f} / p99 {self.pct(99):.1f} ms"


def timed_ms(run: Callable[[], object]) -> float:
    started = time.perf_counter()
    run()
    return (time.perf_counter() - started) * 1000


# -- processes --------------------------------------------------------------------------------


def status_mb(pid: int | str, field: str) -> float:
    """A ``/proc/<pid>/status`` memory field in kB (VmRSS, VmHWM), in MB; 0 where the process
    has none (a zombie holds no memory)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory (VmHWM) in MB."""
    return status_mb(pid, "VmHWM")


def rss_mb(pid: int) -> float:
    return status_mb(pid, "VmRSS")


def _listening_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                inodes.add(inode)
    return inodes


def descendants(pid: int) -> list[int]:
    found = [pid]
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        found.extend(descendants(int(child)))
    return found


def listening_pid(root: int, port: int) -> int:
    """The process, ``root`` or one of its descendants, that listens on ``port``."""
    inodes = {f"socket:[{inode}]" for inode in _listening_inodes(port)}
    for pid in descendants(root):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(fd) in inodes:
                    return pid
            except OSError:
                continue
    raise RuntimeError(f"no process under {root} listens on port {port}")


@dataclass
class Engine:
    """A running `phantoscope up`: its URL, the API server's PID and the operator's PID."""

    url: str
    process: subprocess.Popen
    api_pid: int
    operator_pid: int
    home: Path


def _wait_ping(url: str, process: subprocess.Popen, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"phantoscope up exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/v1/settings/ping", timeout=5).text == "pong":
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise RuntimeError("phantoscope up did not answer in time")


@contextmanager
def engine(home: Path | None = None, env: dict[str, str] | None = None,
           timeout_s: float = 900) -> Iterator[Engine]:
    """`phantoscope up` on a free port with PHANTOSCOPE_HOME=``home`` (a temporary folder if
    None); stopped with SIGINT, as Ctrl-C would."""
    with tempfile.TemporaryDirectory(prefix="phantoscope-bench-") as tmp:
        home = home or Path(tmp)
        port = free_port()
        log = (home / "up.log").open("wb")
        process = subprocess.Popen(
            [PHANTOSCOPE, "up", "--port", str(port)],
            env={**os.environ, "PHANTOSCOPE_HOME": str(home), **(env or {})},
            stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_ping(url, process, timeout_s)
            api_pid = listening_pid(process.pid, port)
            operator_pid = next(pid for pid in descendants(process.pid)
                                if pid not in (process.pid, api_pid))
            yield Engine(url, process, api_pid, operator_pid, home)
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.close()


# -- output -----------------------------------------------------------------------------------


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A plain-text table: first column left-aligned, the others right-aligned."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows,
                                                                          strict=True)]

    def line(cells: Sequence[str]) -> str:
        first, *rest = (str(cell) for cell in cells)
        return "  ".join([first.ljust(widths[0])]
                         + [cell.rjust(width) for cell, width in zip(rest, widths[1:],
                                                                     strict=True)])

    print(line(headers))
    print("  ".join("-" * width for width in widths))
    for row in rows:
        print(line(row))


def timed_job(client: PhantoscopeClient, start: Callable[[], Job]) -> float:
    """Seconds from the POST ``start`` makes (a job's start through the client) to the
    job's end; raises unless every image of it was done."""
    started = time.perf_counter()
    job = start()
    done = client.jobs.wait(job.id, poll_s=0.2)
    took = time.perf_counter() - started
    if done.state != "done" or done.failed:
        raise RuntimeError(f"job {job.id} ended {done.state} with {done.failed} failed")
    return took
