"""An import job's rate beside `phantoscope import` on the same files, in one run.

    .venv/bin/python bench/import_job.py [--images 300] [--repeats 2]

One `phantoscope up` (Milvus Lite, SQLite, a folder, the default encoder) in a temporary
home whose folder of photos (scikit-image's samples, cropped, recoloured and scaled to
320-2400 px, JPEG) is its PHANTOSCOPE_IMPORT_ROOTS. Each pass imports the folder twice, each
time into a fresh application on the default pipeline: with `phantoscope import` (the CLI's
defaults: 32 images a request, 4 in flight) and with an import job (`POST /v1/jobs`, the
server's defaults: 32 images a batch, 4 batches at once), timed from the command's start or
the job's POST to its last image stored; the order alternates between passes. The table shows
the best pass of each, the median, and the job's rate over the CLI's (target >= 0.9).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from common import (
    describe_photos,
    engine,
    make_photos,
    print_table,
    timed_job,
    write_photos,
)

from phantoscope.client import PhantoscopeClient
from phantoscope.operators.process import PHANTOSCOPE


def cli_import(url: str, app: str, folder: Path) -> float:
    started = time.perf_counter()
    subprocess.run([PHANTOSCOPE, "import", app, str(folder), "--url", url],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def job_import(client: PhantoscopeClient, app: str, folder: Path) -> float:
    return timed_job(client, lambda: client.jobs.start_import(app, folder=folder))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    photos = make_photos(args.images)
    rates: dict[str, list[float]] = {"cli": [], "job": []}
    with tempfile.TemporaryDirectory(prefix="phantoscope-bench-") as tmp:
        folder = Path(tmp) / "photos"
        write_photos(folder, photos)
        with engine(env={"PHANTOSCOPE_IMPORT_ROOTS": str(folder)}) as running, \
                PhantoscopeClient(running.url, timeout=600) as client:
            for repeat in range(args.repeats):
                order = ("cli", "job") if repeat % 2 == 0 else ("job", "cli")
                for mode in order:
                    app = client.applications.create(f"{mode}{repeat}", pipeline="default").name
                    took = (cli_import(running.url, app, folder) if mode == "cli"
                            else job_import(client, app, folder))
                    if client.applications.count(app) != len(photos):
                        raise RuntimeError(f"{app} holds {client.applications.count(app)}")
                    rates[mode].append(len(photos) / took)
                print(f"pass {repeat + 1}: cli {rates['cli'][-1]:.1f}, job "
                      f"{rates['job'][-1]:.1f} images/s", flush=True)
    print(f"{describe_photos(photos)}; {os.cpu_count()} CPUs; phantoscope up defaults")
    cli, job = max(rates["cli"]), max(rates["job"])
    print_table(["mode", "best images/s", "median images/s", "ratio to the CLI (best)"], [
        ["phantoscope import FOLDER", f"{cli:.1f}", f"{statistics.median(rates['cli']):.1f}",
         "1.00x"],
        ["import job (POST /v1/jobs)", f"{job:.1f}", f"{statistics.median(rates['job']):.1f}",
         f"{job / cli:.2f}x"],
    ])
    per_pass = ", ".join(f"{j / c:.2f}" for c, j in zip(rates["cli"], rates["job"], strict=True))
    print(f"job / CLI per pass: {per_pass}")


if __name__ == "__main__":
    main()
