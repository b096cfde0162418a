"""Images/s of an operator served over gRPC: one client at batch 1, 16 concurrent
single-image clients with batching on and off, and one client sending batches of 16.

    .venv/bin/python bench/operator_throughput.py [--operator NAME] [--images N]

Each mode runs the same JPEG photos (made from scikit-image's sample photos at several
sizes) against a server process started by this script; ratios are against batch 1.
"""

from __future__ import annotations

import argparse
import base64
import io
import os
import time
from concurrent.futures import ThreadPoolExecutor

from PIL import Image

from phantoscope.operators.process import OperatorProcess
from phantoscope.operators.rpc_client import OperatorClient
from phantoscope.zoo import DEFAULT_ENCODER


def sample_photos(count: int) -> list[str]:
    """Base64 JPEGs of package-shipped photos, cycled through several sizes."""
    import skimage.data as data

    photos = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    sizes = [(640, 480), (1024, 768), (320, 240), (1600, 1200)]
    encoded = []
    for index in range(count):
        image = Image.fromarray(photos[index % len(photos)])
        image = image.resize(sizes[(index // len(photos)) % len(sizes)])
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=88)
        encoded.append(base64.b64encode(buffer.getvalue()).decode())
    return encoded


def timed(run, count: int) -> float:
    started = time.perf_counter()
    run()
    return count / (time.perf_counter() - started)


def measure(endpoint: str, photos: list[str], concurrency: int, per_request: int) -> float:
    with OperatorClient(endpoint, timeout_s=300) as client:
        client.execute(datas=photos[:1])  # warm-up
        chunks = [photos[i:i + per_request] for i in range(0, len(photos), per_request)]
        with ThreadPoolExecutor(concurrency) as pool:
            return timed(lambda: list(pool.map(lambda c: client.execute(datas=c), chunks)),
                         len(photos))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--operator", default=DEFAULT_ENCODER)
    parser.add_argument("--images", type=int, default=256)
    args = parser.parse_args()
    photos = sample_photos(args.images)
    rows = []
    for label, env, concurrency, per_request in [
        ("1 client, batch 1", {}, 1, 1),
        ("16 clients x 1 image, batching on", {}, 16, 1),
        ("16 clients x 1 image, batching off", {"PHANTOSCOPE_MAX_BATCH_SIZE": "1"}, 16, 1),
        ("1 client, 16 images a request", {}, 1, 16),
    ]:
        with OperatorProcess(args.operator, env=env) as server:
            rows.append((label, measure(server.endpoint, photos, concurrency, per_request)))
    base = rows[0][1]
    print(f"operator {args.operator}, {args.images} photos (320x240 to 1600x1200 JPEG), "
          f"{os.cpu_count()} CPUs")
    print(f"{'mode':40} {'images/s':>9} {'ratio':>7}")
    for label, rate in rows:
        print(f"{label:40} {rate:9.1f} {rate / base:6.2f}x")
    on, off = rows[1][1], rows[2][1]
    print(f"batching on / off with 16 concurrent clients: {on / off:.2f}x")


if __name__ == "__main__":
    main()
