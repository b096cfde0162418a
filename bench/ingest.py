"""Ingest throughput, from the bare model to a folder import through the API, against a
naive baseline of the original's shape.

    .venv/bin/python bench/ingest.py [--images 500] [--repeats 3] [--operator-batch N]
                                     [--memory-images 10000]

All modes run the same real photos (scikit-image's samples, cropped, recoloured and scaled to
320-2400 px, JPEG) with the default encoder (EfficientNet-Lite0 in ONNX Runtime):

  a. the bare ONNX Runtime session on pre-decoded, preprocessed tensors, batch 1, 4 and 16;
  b. decode + preprocess + encode in one tight loop in this process, batch 16: the CPU
     ceiling of our path for one process (b': the same at batch 4);
  c. the operator over gRPC (`phantoscope operator serve`), 16 concurrent one-image clients;
  d. full ingest into `phantoscope up` (Milvus Lite, SQLite, a folder, in a temporary
     PHANTOSCOPE_HOME): the batch endpoint (the Python client, 16 images a request, 4 in
     flight) and `phantoscope import FOLDER` (the CLI, its defaults), each pass into a fresh
     application;
  e. the naive baseline: one JSON request per image, sequentially, through the same API to an
     operator running EfficientNet-Lite0 in torch eager mode one image at a time
     (`TorchEagerLite0` below, served with `phantoscope operator serve ingest:TorchEagerLite0`).

Other processes share this machine, so every pass runs every mode back to back and the table
shows the best pass and the median; ratios are given for the bests and per pass. CPU time
per image is read for each process taking part (this one and the CLI as "client", the API
server, the operator). The API server's peak resident memory (VmHWM) is read from /proc after
each pass; --memory-images N also imports N distinct files (the photos again, each with a
JPEG comment added) into a fresh engine and reports its peak.
"""

from __future__ import annotations

import argparse
import base64
import os
import resource
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from common import (
    Engine,
    describe_photos,
    engine,
    make_photos,
    peak_rss_mb,
    print_table,
    rss_mb,
    with_comment,
    write_photos,
)
from PIL import Image

from phantoscope.client import PhantoscopeClient
from phantoscope.imaging.codec import decode_image
from phantoscope.operators.base import Encoding, l2_normalize
from phantoscope.operators.labels import imagenet_class_ids, top_labels
from phantoscope.operators.process import PHANTOSCOPE, OperatorProcess
from phantoscope.operators.rpc_client import OperatorClient
from phantoscope.zoo import DEFAULT_ENCODER
from phantoscope.zoo.efficientnet import EfficientNetLite0Encoder

BENCH_DIR = Path(__file__).resolve().parent
BATCH = 16
UPLOAD_CONCURRENCY = 4  # what `phantoscope import` uses by default (with 32 images a request)
MEMORY_TARGET_MB = 2048
CLK_TCK = os.sysconf("SC_CLK_TCK")


class TorchEagerLite0(EfficientNetLite0Encoder):
    """EfficientNet-Lite0 in torch eager mode, one image per model call: the baseline.

    Same weights and classifier head (built by phantoscope.modelbuild.export, as the ONNX
    export is) and the same preprocessing as the default encoder; only the runtime and the
    batch size differ.
    """

    name = "efficientnet-lite0-torch-eager"
    max_batch_size = 1

    def load(self) -> None:
        import torch

        from phantoscope.modelbuild.export import build_model

        # One intra-op thread: on a shared 2-core machine torch's OpenMP pool collapses when
        # other processes need the cores (measured here: 3-9 images/s with 2 threads, 55 with
        # 1), so one thread is the stronger, steadier baseline.
        torch.set_num_threads(1)
        self._model = build_model("efficientnet-lite0")

    def encode(self, images: list[Image.Image] | list[np.ndarray]) -> Encoding:
        import torch

        with torch.inference_mode():
            outputs = [self._model(torch.from_numpy(self.preprocess([image])))
                       for image in images]
        features = np.concatenate([features.numpy() for features, _ in outputs])
        probabilities = np.concatenate([classes.numpy() for _, classes in outputs])
        return Encoding(l2_normalize(features), top_labels(probabilities, imagenet_class_ids()))


# -- measuring -----------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def client_cpu_seconds() -> float:
    """This process and its finished children (the CLI)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


@dataclass(frozen=True)
class Sample:
    rate: float  # images/s
    cpu_ms: dict[str, float]  # CPU milliseconds per image, by process


def measure(run: Callable[[], object], images: int, pids: dict[str, int]) -> Sample:
    before = {role: cpu_seconds(pid) for role, pid in pids.items()}
    client_before = client_cpu_seconds()
    started = time.perf_counter()
    run()
    elapsed = time.perf_counter() - started
    cpu = {"client": client_cpu_seconds() - client_before}
    cpu |= {role: cpu_seconds(pid) - before[role] for role, pid in pids.items()}
    return Sample(images / elapsed, {role: 1000 * s / images for role, s in cpu.items()})


@dataclass
class Mode:
    """One way of ingesting the photos: ``setup(pass)`` returns the timed run."""

    label: str
    setup: Callable[[int], Callable[[], object]]
    pids: dict[str, int] = field(default_factory=dict)
    samples: list[Sample] = field(default_factory=list)

    def rates(self) -> list[float]:
        return [sample.rate for sample in self.samples]

    def best(self) -> Sample:
        return max(self.samples, key=lambda sample: sample.rate)


# -- a, b: in this process -----------------------------------------------------------------------


def decode(encoder: EfficientNetLite0Encoder, data: bytes) -> Image.Image:
    return decode_image(data, min_side=encoder.min_image_side)


def bare_session(encoder: EfficientNetLite0Encoder, photos: Sequence[bytes],
                 batch: int) -> Callable[[int], Callable[[], object]]:
    """(a) the session alone, on tensors made beforehand."""
    assert encoder._session is not None
    session, name = encoder._session, encoder._input_name
    tensors = encoder.preprocess([decode(encoder, data) for data in photos])
    chunks = [tensors[i:i + batch] for i in range(0, len(tensors), batch)]
    session.run(None, {name: chunks[0]})  # warm-up
    return lambda _: lambda: [session.run(None, {name: chunk}) for chunk in chunks]


def tight_loop(encoder: EfficientNetLite0Encoder, photos: Sequence[bytes],
               batch: int) -> Callable[[int], Callable[[], object]]:
    """(b) decode + preprocess + encode, one thread, ``batch`` images a call."""
    chunks = [photos[i:i + batch] for i in range(0, len(photos), batch)]

    def once() -> None:
        for chunk in chunks:
            encoder.run([decode(encoder, data) for data in chunk])

    return lambda _: once


# -- c: the operator over gRPC -------------------------------------------------------------------


def grpc_clients(client: OperatorClient, pool: ThreadPoolExecutor,
                 photos: Sequence[bytes]) -> Callable[[int], Callable[[], object]]:
    """(c) one-image Execute calls from as many threads as ``pool`` has."""
    datas = [base64.b64encode(data).decode("ascii") for data in photos]
    client.execute(datas=datas[:1])  # warm-up
    return lambda _: lambda: list(pool.map(lambda data: client.execute(datas=[data]), datas))


# -- d, e: through the API -----------------------------------------------------------------------


def new_app(client: PhantoscopeClient, name: str, pipeline: str = "default") -> str:
    client.applications.create(name, pipeline=pipeline)
    return name


def upload_batches(client: PhantoscopeClient, app: str, photos: Sequence[bytes]) -> None:
    chunks = [photos[i:i + BATCH] for i in range(0, len(photos), BATCH)]

    def send(chunk: Sequence[bytes]) -> None:
        result = client.upload_batch(app, list(chunk))
        if result.failed:
            raise RuntimeError(f"{result.failed} images failed to upload")

    with ThreadPoolExecutor(UPLOAD_CONCURRENCY) as pool:
        list(pool.map(send, chunks))


def cli_import(url: str, app: str, folder: Path) -> None:
    subprocess.run([PHANTOSCOPE, "import", app, str(folder), "--url", url],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def naive_upload(client: PhantoscopeClient, app: str, photos: Sequence[bytes]) -> None:
    for data in photos:
        body = {"fields": {"image": {"data": base64.b64encode(data).decode("ascii")}}}
        client.json("POST", f"/v1/application/{app}/upload", json=body)


@contextmanager
def torch_operator(eng: Engine, client: PhantoscopeClient) -> Iterator[OperatorProcess]:
    """(e)'s operator, registered as `torch-eager` with a pipeline `naive` on it."""
    paths = [str(BENCH_DIR), os.environ.get("PYTHONPATH", "")]
    env = {"PYTHONPATH": os.pathsep.join(filter(None, paths)),
           "PHANTOSCOPE_MAX_BATCH_SIZE": "1"}
    with OperatorProcess("ingest:TorchEagerLite0", env=env,
                         log_path=eng.home / "torch-operator.log") as operator:
        client.operators.register("torch-eager", operator.endpoint)
        client.pipelines.create("naive", encoder="torch-eager")
        yield operator


def api_modes(eng: Engine, client: PhantoscopeClient, torch_pid: int, photos: Sequence[bytes],
              folder: Path) -> list[Mode]:
    server = {"API server": eng.api_pid, "operator": eng.operator_pid}
    upload_batches(client, "default", photos[:BATCH])  # warm-up

    def batch_endpoint(index: int) -> Callable[[], object]:
        app = new_app(client, f"batch{index}")
        return lambda: upload_batches(client, app, photos)

    def folder_import(index: int) -> Callable[[], object]:
        app = new_app(client, f"import{index}")
        return lambda: cli_import(eng.url, app, folder)

    def naive(index: int) -> Callable[[], object]:
        app = new_app(client, f"naive{index}", pipeline="naive")
        naive_upload(client, app, photos[:1])  # warm-up
        return lambda: naive_upload(client, app, photos)

    return [
        Mode(f"d. API batch endpoint ({BATCH}/request, {UPLOAD_CONCURRENCY} in flight)",
             batch_endpoint, server),
        Mode("d. phantoscope import FOLDER (CLI defaults)", folder_import, server),
        Mode("e. naive: 1 JSON request/image, torch eager", naive,
             {"API server": eng.api_pid, "operator": torch_pid}),
    ]


# -- the passes ----------------------------------------------------------------------------------


@dataclass
class Run:
    modes: list[Mode]
    memory_mb: list[tuple[str, float]]
    operator_peak_mb: float

    def mode(self, prefix: str) -> Mode:
        return next(mode for mode in self.modes if mode.label.startswith(prefix))


def run_passes(photos: Sequence[bytes], folder: Path, repeats: int, clients: int,
               env: dict[str, str]) -> Run:
    encoder = EfficientNetLite0Encoder()
    encoder.load()
    modes = [Mode(f"a. bare ORT session, batch {batch}", bare_session(encoder, photos, batch))
             for batch in (1, 4, BATCH)]
    modes.append(Mode(f"b. decode+preprocess+encode, 1 thread, batch {BATCH} (ceiling)",
                      tight_loop(encoder, photos, BATCH)))
    modes.append(Mode("b'. the same, batch 4", tight_loop(encoder, photos, 4)))
    with ExitStack() as stack:
        operator = stack.enter_context(OperatorProcess(DEFAULT_ENCODER, env=env))
        grpc = stack.enter_context(OperatorClient(operator.endpoint, timeout_s=300))
        pool = stack.enter_context(ThreadPoolExecutor(clients))
        assert operator.process is not None
        modes.append(Mode(f"c. operator over gRPC, {clients} one-image clients",
                          grpc_clients(grpc, pool, photos), {"operator": operator.process.pid}))
        eng = stack.enter_context(engine(env=env))
        client = stack.enter_context(PhantoscopeClient(eng.url, timeout=600))
        torch = stack.enter_context(torch_operator(eng, client))
        assert torch.process is not None
        modes += api_modes(eng, client, torch.process.pid, photos, folder)
        memory = [("after start", peak_rss_mb(eng.api_pid))]
        for index in range(repeats):
            for mode in modes:
                mode.samples.append(measure(mode.setup(index), len(photos), mode.pids))
            memory.append((f"after pass {index + 1}", peak_rss_mb(eng.api_pid)))
            print(f"pass {index + 1}: " + ", ".join(
                f"{mode.label.split('.')[0]} {mode.samples[-1].rate:.0f}" for mode in modes),
                flush=True)
        return Run(modes, memory, peak_rss_mb(eng.operator_pid))


# -- memory at scale -----------------------------------------------------------------------------


def memory_run(photos: Sequence[bytes], count: int, tmp: Path,
               env: dict[str, str]) -> list[tuple[str, str]]:
    """Import ``count`` distinct files with the CLI into a fresh engine; the API server's
    resident memory along the way and its peak."""
    files = [with_comment(photos[i % len(photos)], f"copy {i}") for i in range(count)]
    folder = tmp / f"memory-{count}"
    write_photos(folder, files)
    with engine(env=env) as eng:
        start = peak_rss_mb(eng.api_pid)
        process = subprocess.Popen([PHANTOSCOPE, "import", "default", str(folder),
                                    "--url", eng.url],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started = time.perf_counter()
        samples = []
        while process.poll() is None:
            samples.append(rss_mb(eng.api_pid))
            time.sleep(1)
        elapsed = time.perf_counter() - started
        if process.returncode:
            raise RuntimeError(f"phantoscope import exited with {process.returncode}")
        peak = peak_rss_mb(eng.api_pid)
        operator_peak = peak_rss_mb(eng.operator_pid)
    return [
        ("images imported", f"{count:,}"),
        ("import rate (CLI)", f"{count / elapsed:.1f} images/s"),
        ("API server VmHWM after start", f"{start:.0f} MB"),
        ("API server VmRSS at 1/4, 1/2, 3/4 and end",
         " / ".join(f"{samples[len(samples) * k // 4 - (k == 4)]:.0f}" for k in (1, 2, 3, 4))
         + " MB"),
        ("API server VmHWM", f"{peak:.0f} MB (target < {MEMORY_TARGET_MB} MB)"),
        ("operator VmHWM", f"{operator_peak:.0f} MB"),
    ]


# -- report --------------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def ratios(top: Mode, bottom: Mode) -> tuple[float, str]:
    """The ratio of the bests, and the range of the per-pass ratios."""
    each = [a / b for a, b in zip(top.rates(), bottom.rates(), strict=True)]
    best = max(top.rates()) / max(bottom.rates())
    return best, f"{best:.2f} (per pass {min(each):.2f}-{max(each):.2f})"


def cpu_cell(sample: Sample, role: str) -> str:
    return f"{sample.cpu_ms[role]:.1f}" if role in sample.cpu_ms else "-"


def report(run: Run) -> None:
    ceiling = max(run.mode("b.").rates())
    rows = []
    for mode in run.modes:
        best = mode.best()
        rows.append((mode.label, f"{best.rate:.1f}", f"{statistics.median(mode.rates()):.1f}",
                     f"{best.rate / ceiling:.2f}x",
                     *(cpu_cell(best, role) for role in ("client", "API server", "operator")),
                     f"{sum(best.cpu_ms.values()):.1f}"))
    print_table(("mode", "best img/s", "median", "vs b", "CPU ms/img: client", "API server",
                 "operator", "total"), rows)
    print()
    naive = run.mode("e.")
    for prefix, label in (("d. API", "batch endpoint"), ("d. phantoscope", "phantoscope import")):
        mode = run.mode(prefix)
        to_b, to_b_text = ratios(mode, run.mode("b."))
        to_e, to_e_text = ratios(mode, naive)
        print(f"{label}: d/b {to_b_text}, target >= 0.80: {verdict(to_b >= 0.8)}; "
              f"d/e {to_e_text}, target >= 4: {verdict(to_e >= 4)}")
    print()
    print_table(("API server peak memory (VmHWM)", "MB"),
                [(label, f"{value:.0f}") for label, value in run.memory_mb])
    print(f"operator process VmHWM: {run.operator_peak_mb:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=500, help="photos per pass")
    parser.add_argument("--repeats", type=int, default=3, help="passes")
    parser.add_argument("--clients", type=int, default=16, help="gRPC clients in (c)")
    parser.add_argument("--operator-batch", type=int,
                        help="PHANTOSCOPE_MAX_BATCH_SIZE for the ONNX operator in c and d "
                             "(default: the operator's own, 16)")
    parser.add_argument("--memory-images", type=int, default=0,
                        help="also import this many files into a fresh engine (e.g. 10000)")
    args = parser.parse_args()
    env = {} if args.operator_batch is None else {
        "PHANTOSCOPE_MAX_BATCH_SIZE": str(args.operator_batch)}

    photos = make_photos(args.images)
    print(f"{describe_photos(photos)}; {os.cpu_count()} CPUs; {args.repeats} passes",
          flush=True)
    with tempfile.TemporaryDirectory(prefix="phantoscope-bench-") as tmp:
        folder = Path(tmp) / "photos"
        write_photos(folder, photos)
        run = run_passes(photos, folder, args.repeats, args.clients, env)
        print()
        report(run)
        if args.memory_images:
            print()
            print_table(("memory run", ""),
                        memory_run(photos, args.memory_images, Path(tmp), env))


if __name__ == "__main__":
    main()
