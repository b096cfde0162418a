"""Does `phantoscope up` use every core? Ingest images/s of a full `phantoscope import` of
phone-size JPEGs (12 MP) for `--workers 1, 2, 4, ... cores` (each with `--api-workers` 1 and
the default for this machine, or the counts given), beside the ceiling of this machine in the
same run: one plain single-threaded process per core decoding, resizing and running ONNX
Runtime on the same files, with no gRPC, HTTP or store.

    .venv/bin/python bench/cores.py [--images 512] [--workers 1,2] [--api-workers 1,2]
                                    [--passes 2] [--size 4032x3024] [--baseline-src DIR]
                                    [--server-reads] [--concurrency 4]

Each run imports the files into a fresh `phantoscope up` (its own home). Passes repeat the
runs in turn (1, 2, ..., then again), so that a change of outside load hits every count; the
figure is the median of the passes. Beside the whole import's images/s, the middle half's
(from the stored entities' times) is the pace of a large import, which a short one hides
behind its fixed costs: the client's start, the server's first upload, the last requests'
drain (the "start + drain" column, in seconds). So the default image count grows with the
cores (the middle half must start after the first requests in flight and end before the last):
on 16 cores the ceiling would take 192 photos in half a second. The CPU columns are per
imported image: the API side (`up`, its API processes and their Milvus Lite, in them or in a
Lite host process), every operator process, and the `phantoscope import` client; with one API
process, the candidate pairs its duplicate check aligned a photo (a few ms of CPU each: they
grow with the photos stored, as these pictures, windows of 20 sample photos, find
look-alikes). With ``--baseline-src`` (an earlier checkout's ``src``) each pass also runs
every count's `phantoscope up` with PYTHONPATH=DIR (the import client stays this code's), in
turn with this code (which goes first alternates), for the ratio of this code's figures to
that code's. With ``--server-reads`` each pass also runs every count with the photos' folder
in `up`'s PHANTOSCOPE_IMPORT_ROOTS, so that the import has the server read each file from its
disk instead of sending it, for the ratio of those figures to the sent ones.
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import os
import re
import resource
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from common import PHOTO_NAMES, descendants, engine, print_table, write_photos
from PIL import Image, ImageOps

from phantoscope.cli.folder_import import BATCH_SIZE, MAX_BATCH_BYTES, requests_in_flight
from phantoscope.cli.worker_count import api_worker_count
from phantoscope.client import PhantoscopeClient
from phantoscope.operators.process import PHANTOSCOPE
from phantoscope.operators.process_group import usable_cores
from phantoscope.photoset import sample_photo

PHONE_SIZE = (4032, 3024)  # 12 MP, a phone camera's default
# Each picture is a 2 x 2 mosaic of windows (60 % of each side, from one of four corners) of
# four different sample photos, each window mirrored or not: pictures share little, as most
# of a photo library's do, so few uploads have a stored look-alike to align against.
WINDOWS = ((0.0, 0.0), (0.4, 0.0), (0.0, 0.4), (0.4, 0.4))
KEEP = 0.6
BATCH = 16


def _mosaic(tiles: list[Image.Image], size: tuple[int, int]) -> Image.Image:
    width, height = size
    image = Image.new("RGB", size)
    for at, tile in enumerate(tiles):
        left, top = (at % 2) * (width // 2), (at // 2) * (height // 2)
        image.paste(tile.resize((width // 2 if at % 2 == 0 else width - width // 2,
                                 height // 2 if at < 2 else height - height // 2),
                                Image.Resampling.BICUBIC), (left, top))
    return image


_tiles: list[Image.Image] = []
_noise: np.ndarray | None = None


def _load_tiles(size: tuple[int, int]) -> None:
    """Each generating process's tiles and camera noise (the same in every process)."""
    global _noise
    _noise = np.random.default_rng(0).normal(0, 5, (*size[::-1], 3)).astype(np.int16)
    for name in PHOTO_NAMES:
        base = sample_photo(name).convert("RGB")
        width, height = base.size
        for left, top in WINDOWS:
            tile = base.crop((int(left * width), int(top * height),
                              int((left + KEEP) * width), int((top + KEEP) * height)))
            _tiles.extend([tile, ImageOps.mirror(tile)])


def _phone_photo(index: int, size: tuple[int, int]) -> bytes:
    chosen = np.random.default_rng((1, index)).choice(len(_tiles), 4, replace=False)
    pixels = np.asarray(_mosaic([_tiles[at] for at in chosen], size), dtype=np.int16) + _noise
    buffer = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(
        buffer, format="JPEG", quality=92)
    return buffer.getvalue()


def phone_photos(count: int, size: tuple[int, int] = PHONE_SIZE) -> list[bytes]:
    """``count`` different pictures as JPEGs of ``size`` (a phone's 12 MP by default), with
    camera-like noise and quality; made on every core (the same pictures on any machine)."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(min(usable_cores(), count), _load_tiles, (size,)) as pool:
        return pool.starmap(_phone_photo, [(index, size) for index in range(count)],
                            chunksize=4)


# -- the ceiling: decode + ONNX Runtime in plain processes ------------------------------------


def _ceiling_worker(files: list[Path], barrier, times) -> None:
    os.environ["PHANTOSCOPE_ORT_THREADS"] = "1"
    from phantoscope.config import MAX_IMAGE_PIXELS
    from phantoscope.zoo.efficientnet import EfficientNetLite0Encoder

    encoder = EfficientNetLite0Encoder()
    encoder.load()
    datas = [path.read_bytes() for path in files]
    encoder.encode([encoder.prepare(datas[0], max_pixels=MAX_IMAGE_PIXELS)])  # warm-up
    barrier.wait()
    started = time.perf_counter()
    for first in range(0, len(datas), BATCH):
        encoder.encode([encoder.prepare(data, max_pixels=MAX_IMAGE_PIXELS)
                        for data in datas[first:first + BATCH]])
    times.append((started, time.perf_counter()))


def ceiling(files: list[Path], processes: int) -> float:
    """Images/s of ``processes`` single-threaded processes sharing ``files`` out."""
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        barrier, times = manager.Barrier(processes), manager.list()
        workers = [context.Process(target=_ceiling_worker,
                                   args=(files[i::processes], barrier, times))
                   for i in range(processes)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
            if worker.exitcode:
                raise RuntimeError(f"a ceiling process exited with {worker.exitcode}")
        spans = list(times)
    return len(files) / (max(end for _, end in spans) - min(start for start, _ in spans))


# -- `phantoscope up --workers N` + `phantoscope import` --------------------------------------


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _is_operator(pid: int) -> bool:
    return b"serve" in Path(f"/proc/{pid}/cmdline").read_bytes()


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _wait_api_processes(home: Path, count: int, timeout_s: float = 300) -> None:
    """Wait until each of ``count`` API processes serves. `up` starts the first, then the
    others once it serves, so a ping can be answered before the others exist: their CPU
    would go uncounted and the import's first requests would all go to the first."""
    if count == 1:
        return  # `up` serves it itself
    deadline = time.monotonic() + timeout_s
    while len(list((home / "logs").glob("api-*.ready"))) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{count} API processes not all serving after {timeout_s} s")
        time.sleep(0.2)


def _aligned_pairs(url: str) -> float:
    """The candidate pairs the API's duplicate checks aligned (of its one process: each of
    several answers `/metrics` for itself)."""
    text = httpx.get(f"{url}/metrics", timeout=60).text
    return float(re.search(r"^phantoscope_aligned_pairs_total (\S+)$", text, re.M)[1])


def steady_rate(stored: list[float]) -> float:
    """Images/s between the upload that stored the image a quarter of the way through
    ``stored`` (each image's time of storing, in order) and the one that stored the image
    three quarters of the way: the import's pace once its requests follow each other, without
    the client's start, the server's first upload or the last requests' drain. Images stored
    by one request share a time, so both ends are whole requests."""
    first, last = stored[len(stored) // 4], stored[3 * len(stored) // 4]
    between = sum(1 for at in stored if first < at <= last)
    return between / (last - first) if last > first else float("nan")


def import_run(folder: Path, workers: int, count: int, api_workers: int = 1,
               env: dict[str, str] | None = None, concurrency: int | None = None
               ) -> dict[str, float]:
    """A fresh `up --workers N --api-workers M` (with ``env`` added to its environment), one
    `phantoscope import` of ``folder`` (with ``--concurrency`` if given): images/s of the
    whole import and in its middle half (:func:`steady_rate`), and CPU ms per image of the API
    side, the operators and the client."""
    with engine(env={"PHANTOSCOPE_WORKERS": str(workers),
                     "PHANTOSCOPE_API_WORKERS": str(api_workers), **(env or {})}) as eng:
        _wait_api_processes(eng.home, api_workers)
        pids = descendants(eng.process.pid)  # with one API process, `up` itself serves it
        operators = [pid for pid in pids if _is_operator(pid)]
        api_side = [pid for pid in pids if pid not in operators]
        assert len(operators) == workers, f"{len(operators)} operator processes, not {workers}"
        before = {pid: _cpu_s(pid) for pid in pids}
        client_before = _children_cpu_s()
        started = time.perf_counter()
        subprocess.run([PHANTOSCOPE, "import", "default", str(folder), "--url", eng.url,
                        *(["--concurrency", str(concurrency)] if concurrency else [])],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        elapsed = time.perf_counter() - started
        client = _children_cpu_s() - client_before
        used = {pid: _cpu_s(pid) - before[pid] for pid in pids}
        with PhantoscopeClient(eng.url) as reader:
            stored = sorted(entity.created_at.timestamp()
                            for entity in reader.entities.iterate("default"))
        aligned = _aligned_pairs(eng.url) if api_workers == 1 else float("nan")
    assert len(stored) == count, f"{len(stored)} entities stored, not {count}"
    steady = steady_rate(stored)
    return {
        "rate": count / elapsed,
        "steady": steady,
        "start_s": elapsed - count / steady,
        "aligned": aligned / count,
        "api_ms": 1000 * sum(used[pid] for pid in api_side) / count,
        "operator_ms": 1000 * sum(used[pid] for pid in operators) / count,
        "client_ms": 1000 * client / count,
    }


def worker_counts(cores: int) -> list[int]:
    counts, count = [], 1
    while count < cores:
        counts.append(count)
        count *= 2
    return [*counts, cores]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int,
                        help="how many photos (default 128 a core, at least 512)")
    parser.add_argument("--workers", help="comma-separated counts (default 1, 2, 4, ... cores)")
    parser.add_argument("--api-workers",
                        help="comma-separated API process counts (default 1 and this machine's "
                        "default)")
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--size", default="x".join(map(str, PHONE_SIZE)),
                        help="WIDTHxHEIGHT of the JPEGs (default: a phone's 12 MP)")
    parser.add_argument("--baseline-src", metavar="DIR",
                        help="also run an earlier checkout's src (PYTHONPATH=DIR), interleaved")
    parser.add_argument("--server-reads", action="store_true",
                        help="also run each count with the server reading the files itself")
    parser.add_argument("--concurrency", type=int,
                        help="the import's requests in flight (default: its own, 2 a replica)")
    args = parser.parse_args()
    cores = usable_cores()
    images = args.images or max(512, 128 * cores)
    counts = ([int(n) for n in args.workers.split(",")] if args.workers
              else worker_counts(cores))
    default_apis = api_worker_count(None, "--api-workers", cores, None)
    api_counts = ([int(n) for n in args.api_workers.split(",")] if args.api_workers
                  else sorted({1, default_apis}))
    width, height = (int(side) for side in args.size.lower().split("x"))
    with tempfile.TemporaryDirectory(prefix="phantoscope-cores-") as tmp:
        files = write_photos(Path(tmp) / "photos", phone_photos(images, (width, height)))
        codes: dict[str, dict[str, str]] = {"": {}}
        if args.baseline_src:
            codes["baseline"] = {"PYTHONPATH": str(Path(args.baseline_src).absolute())}
        if args.server_reads:
            codes["server reads"] = {"PHANTOSCOPE_IMPORT_ROOTS": str(files[0].parent)}
        megabytes = sum(path.stat().st_size for path in files) / 1e6
        requests = args.concurrency or requests_in_flight(max(counts))  # the import's default
        in_flight = requests * min(
            BATCH_SIZE, MAX_BATCH_BYTES // max(path.stat().st_size for path in files))
        if len(files) < 4 * in_flight:
            print(f"warning: {len(files)} images: the middle half is not clear of the first "
                  f"and last {in_flight} in flight; take at least {4 * in_flight}")
        runs: dict[tuple[str, int, int], list[dict[str, float]]] = {}
        ceilings: list[float] = []
        for at in range(args.passes):
            ceilings.append(ceiling(files, cores))
            for code in list(codes)[::-1 if at % 2 else 1]:
                for count in counts:
                    for apis in api_counts:
                        runs.setdefault((code, count, apis), []).append(
                            import_run(files[0].parent, count, len(files), apis, codes[code],
                                       args.concurrency))
    top = statistics.median(ceilings)
    first = (counts[0], api_counts[0])
    print(f"{len(files)} JPEGs of {width}x{height} ({megabytes / len(files):.1f} "
          f"MB each), {cores} usable cores, {args.passes} passes (median, each pass in "
          f"brackets); `up` without --workers runs one per core, without --api-workers "
          f"{default_apis} here. Middle half: images/s from the request that stored the "
          f"image a quarter of the way to the one that stored it three quarters of the way; "
          f"start + drain: the whole import's time beyond the middle half's pace")
    rows = [[f"ceiling: {cores} plain processes x 1 thread",
             f"{top:.1f} ({' '.join(f'{c:.1f}' for c in ceilings)})", "", "1.00",
             "", "", "1.00", "", "", "", "", ""]]
    for (code, count, apis), samples in sorted(runs.items()):
        def median(part: str, among: list[dict[str, float]] = samples) -> float:
            return statistics.median(run[part] for run in among)

        base = runs[(code, *first)]
        default = " (the default)" if (count, apis) == (min(cores, 64), default_apis) else ""
        rows.append([
            f"{code + ': ' if code else ''}up --workers {count} --api-workers {apis}{default}",
            *(cell for part in ("rate", "steady") for cell in (
                f"{median(part):.1f} ({' '.join(f'{run[part]:.1f}' for run in samples)})",
                f"{median(part) / median(part, base):.2f}", f"{median(part) / top:.2f}")),
            f"{median('start_s'):.2f}",
            *(f"{median(part):.1f}" for part in ("api_ms", "operator_ms", "client_ms")),
            "-" if apis > 1 else f"{median('aligned'):.2f}",
        ])
    print_table(["what", "images/s", "x {} / {}".format(*first), "x ceiling",
                 "middle half", "x {} / {}".format(*first), "x ceiling", "start + drain s",
                 "API CPU ms/img", "operators", "client", "aligned pairs/img"], rows)
    for other in list(codes)[1:]:  # this code over the baseline; server reads over sent
        over, under = ("", other) if other == "baseline" else (other, "")
        print(f"\n{'this code / baseline' if other == 'baseline' else other + ' / sent'}, "
              "per pass: images/s; API CPU ms a photo")
        for count in counts:
            for apis in api_counts:
                tops, bottoms = runs[(over, count, apis)], runs[(under, count, apis)]
                print(f"  --workers {count} --api-workers {apis}: " + " ".join(
                    f"{a['rate'] / b['rate']:.2f}" for a, b in zip(tops, bottoms, strict=True))
                    + "; " + " ".join(f"{a['api_ms'] / b['api_ms']:.2f}"
                                      for a, b in zip(tops, bottoms, strict=True)))


if __name__ == "__main__":
    main()
