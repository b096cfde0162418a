"""A store on a hosted Milvus Lite database in a process of its own, for test_lite_host.py.

``python lite_client.py PATH ADDRESS`` opens ``MilvusVectorStore(PATH, lite_host=ADDRESS)``,
prints ``"ready"``, then answers one JSON line per JSON command on stdin: ``insert`` (ids in
batches, into partitions in turn, with payloads), ``search`` (the vectors of ids), ``count``,
``delete``; a failure answers ``{"error": ...}``. The vectors and payloads come from the ids
(`vector_of`, `payload_of`), so the test knows them.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np

from phantoscope.storage.milvus_vectors import MilvusVectorStore
from phantoscope.storage.vectors import VectorPayload

DIM = 32
COLLECTION = "shared"


def vector_of(ids: list[int]) -> np.ndarray:
    rows = np.stack([np.random.default_rng(i).standard_normal(DIM) for i in ids])
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def payload_of(id_: int) -> VectorPayload:
    return VectorPayload(name=f"image {id_}", attributes={"group": id_ % 3})


def run(store: MilvusVectorStore, command: dict[str, Any]) -> Any:
    op = command["op"]
    if op == "insert":
        ids, batch, partitions = command["ids"], command["batch"], command["partitions"]
        store.create_collection(COLLECTION, DIM, "IP")  # every process may be the first
        for n, start in enumerate(range(0, len(ids), batch)):
            chunk = ids[start:start + batch]
            store.insert(COLLECTION, chunk, vector_of(chunk),
                         partition=partitions[n % len(partitions)],
                         payloads=[payload_of(i) for i in chunk])
        return "inserted"
    if op == "search":
        found = store.search(COLLECTION, vector_of(command["ids"]), command["topk"],
                             partition=command.get("partition"), filter=command.get("filter"))
        return [[[hit.id, hit.distance] for hit in hits] for hits in found]
    if op == "count":
        return store.count(COLLECTION, partition=command.get("partition"))
    if op == "delete":
        store.delete(COLLECTION, command["ids"])
        return "deleted"
    raise ValueError(f"unknown command {op!r}")


def main() -> None:
    path, address = sys.argv[1], sys.argv[2]
    # Flushes every few batches, so that one process's flushes meet the other's inserts.
    store = MilvusVectorStore(path, lite_host=address, lite_flush_bytes=4096, timeout_s=10)
    print(json.dumps("ready"), flush=True)
    for line in sys.stdin:
        try:
            answer = run(store, json.loads(line))
        except Exception as exc:  # reported to the test
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(answer), flush=True)
    store.close()


if __name__ == "__main__":
    main()
