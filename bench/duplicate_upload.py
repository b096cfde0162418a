"""What the duplicate check adds to an upload: the same uploads into `phantoscope up` with
this code and with an earlier checkout (no duplicate check), passes interleaved.

    .venv/bin/python bench/duplicate_upload.py --baseline-src /tmp/base/src
        [--stored 1000] [--new 100] [--repeats 2]

Each pass starts a fresh engine (Milvus Lite, SQLite, a folder; its default encoder), fills
an application with --stored photos through the batch endpoint, then uploads --new more one
JSON request at a time, as an app uploading photos one by one would. It reports, for the
one-at-a-time uploads, the wall time per request (p50, p95) and the API server's CPU time per
upload (from /proc), which is where the check runs: describing the image (decode to a 128 px
thumbnail, its hashes), the hash scan, one vector search for the encoder's neighbours, reading
and aligning the candidates' thumbnails, and the descriptor row in the upload's transaction.
The baseline runs the same with PYTHONPATH=--baseline-src (an earlier checkout's ``src``,
e.g. ``git worktree add /tmp/base <commit before the check>``), so its code is imported
instead. The photos are `common.make_photos` variants of 20 base photos: crops, mirrorings
and recolourings of a few scenes, so most new uploads have candidates to align (a heavier
case than an album of distinct photos).
"""

from __future__ import annotations

import argparse
import base64
import os
import statistics
import time
from pathlib import Path

from common import engine, make_photos, print_table

from phantoscope.client import PhantoscopeClient

BATCH = 16


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_pass(stored: list[bytes], new: list[bytes], baseline: str | None) -> dict[str, float]:
    env = {"PYTHONPATH": baseline} if baseline else {}
    with engine(env=env) as running, PhantoscopeClient(running.url) as client:
        client.applications.create("album", pipeline="default")
        for start in range(0, len(stored), BATCH):
            result = client.upload_batch("album", stored[start:start + BATCH])
            assert result.failed == 0, result
        walls = []
        copies = 0
        before = cpu_s(running.api_pid)
        for data in new:
            body = {"fields": {"image": {"data": base64.b64encode(data).decode("ascii")}}}
            clock = time.perf_counter()
            answer = client.json("POST", "/v1/application/album/upload", json=body)
            walls.append(time.perf_counter() - clock)
            if baseline:  # the earlier code answered: it knows no duplicates
                assert "duplicate_of" not in answer[0], "the baseline ran this code"
            copies += answer[0].get("duplicate_of") is not None
        spent = cpu_s(running.api_pid) - before
    walls.sort()
    return {"p50": 1000 * statistics.median(walls),
            "p95": 1000 * walls[int(0.95 * (len(walls) - 1))],
            "cpu": 1000 * spent / len(new), "copies": copies}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline-src", required=True,
                        help="an earlier checkout's src folder (no duplicate check)")
    parser.add_argument("--stored", type=int, default=1000, help="photos stored first")
    parser.add_argument("--new", type=int, default=100, help="photos then uploaded one by one")
    parser.add_argument("--repeats", type=int, default=2, help="passes of each code")
    args = parser.parse_args()
    photos = make_photos(args.stored + args.new, seed=1)
    stored, new = photos[:args.stored], photos[args.stored:]
    runs: dict[str, list[dict[str, float]]] = {"baseline": [], "with check": []}
    for _ in range(args.repeats):
        runs["baseline"].append(one_pass(stored, new, args.baseline_src))
        runs["with check"].append(one_pass(stored, new, None))
    rows = []
    for name, passes in runs.items():
        best = min(passes, key=lambda each: each["cpu"])
        rows.append([name, f"{best['p50']:.1f}", f"{best['p95']:.1f}", f"{best['cpu']:.1f}",
                     " / ".join(f"{each['cpu']:.1f}" for each in passes),
                     str(int(best["copies"])) if name == "with check" else "-"])
    print(f"{args.new} one-image uploads into an application of {args.stored} "
          f"(best pass by API CPU; {args.repeats} passes each, interleaved)")
    print_table(["code", "wall p50 ms", "wall p95 ms", "API CPU ms/upload", "CPU per pass",
                 "duplicate_of given"], rows)
    base = min(each["cpu"] for each in runs["baseline"])
    check = min(each["cpu"] for each in runs["with check"])
    print(f"added API CPU per upload: {check - base:.1f} ms ({check / base:.2f}x)")


if __name__ == "__main__":
    main()
