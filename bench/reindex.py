"""A reindex job's rate beside a fresh import job's on the same images, in one run.

    .venv/bin/python bench/reindex.py [--images 300] [--repeats 2]

One `phantoscope up` (Milvus Lite, SQLite, a folder, the default encoder) whose
PHANTOSCOPE_IMPORT_ROOTS is a folder of photos (scikit-image's samples, cropped, recoloured
and scaled to 320-2400 px, JPEG). The default encoder's processes are registered a second
time under another name with a pipeline `copy` of their own, so that both jobs pay the same
model: what differs is the work around it. Each pass imports the folder into a fresh
application with an import job (`POST /v1/jobs`, the server's defaults), then reindexes that
application with `copy` (the images read back from the object store, the vectors written to
`copy`'s collection), each timed from its POST to its last image done. The table shows the
best pass of each, the median, and the reindex's rate over the import's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from functools import partial
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    photos = make_photos(args.images)
    rates: dict[str, list[float]] = {"import": [], "reindex": []}
    with tempfile.TemporaryDirectory(prefix="phantoscope-bench-") as tmp:
        folder = Path(tmp) / "photos"
        write_photos(folder, photos)
        with engine(env={"PHANTOSCOPE_IMPORT_ROOTS": str(folder)}) as running, \
                PhantoscopeClient(running.url, timeout=600) as client:
            encoder = client.operators.get("efficientnet-lite0")
            client.operators.register("efficientnet-lite0-copy", encoder.endpoint)
            client.pipelines.create("copy", "efficientnet-lite0-copy")
            for repeat in range(args.repeats):
                app = client.applications.create(f"moved{repeat}", pipeline="default").name
                took = timed_job(client, partial(client.jobs.start_import, app, folder=folder))
                rates["import"].append(len(photos) / took)
                if client.applications.count(app) != len(photos):
                    raise RuntimeError(f"{app} holds {client.applications.count(app)}")
                took = timed_job(client, partial(client.jobs.start_reindex, app, "copy"))
                rates["reindex"].append(len(photos) / took)
                print(f"pass {repeat + 1}: import {rates['import'][-1]:.1f}, reindex "
                      f"{rates['reindex'][-1]:.1f} images/s", flush=True)
    print(f"{describe_photos(photos)}; {os.cpu_count()} CPUs; phantoscope up defaults")
    imported, reindexed = max(rates["import"]), max(rates["reindex"])
    print_table(["job", "best images/s", "median images/s", "ratio to the import (best)"], [
        ["import job of the folder", f"{imported:.1f}",
         f"{statistics.median(rates['import']):.1f}", "1.00x"],
        ["reindex job of those images", f"{reindexed:.1f}",
         f"{statistics.median(rates['reindex']):.1f}", f"{reindexed / imported:.2f}x"],
    ])
    per_pass = ", ".join(f"{r / i:.2f}" for i, r in
                         zip(rates["import"], rates["reindex"], strict=True))
    print(f"reindex / import per pass: {per_pass}")


if __name__ == "__main__":
    main()
