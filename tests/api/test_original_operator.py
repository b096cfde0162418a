"""An operator speaking only the original protocol, through a real API server: it never
announces `image_bytes` or `thumbnails`, so the engine sends it base64 `datas` (issue 20) and
describes uploads for duplicates itself: uploads, searches and copies work as they always
have."""

from __future__ import annotations

import sys
import textwrap

import httpx

from helpers import OperatorProcess
from phantoscope.operators.rpc_client import OperatorClient
from photos import b64, jpeg, photo

# Generated from the original protocol alone: its ExecuteRequest has no `images` field.
ORIGINAL_MEAN_COLOUR = textwrap.dedent("""
    import base64, io, os, sys
    from concurrent import futures
    import grpc
    import numpy as np
    from PIL import Image
    sys.path.insert(0, sys.argv[1])
    import omnisearch_pb2 as pb, omnisearch_pb2_grpc as rpc

    class Servicer(rpc.OperatorServicer):
        def Execute(self, request, context):
            vectors = []
            for data in request.datas:
                image = Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB")
                mean = np.asarray(image, dtype=np.float32).mean(axis=(0, 1))
                vectors.append(pb.Vector(element=mean.tolist()))
            return pb.ExecuteReply(nums=len(vectors), vectors=vectors, metadata=[])
        def Healthy(self, request, context):
            return pb.HealthyReply(healthy="healthy")
        def Identity(self, request, context):
            return pb.IdentityReply(name="original-mean-colour", endpoint=os.environ["OP_ENDPOINT"],
                type="encoder", input="image", output="vector", dimension="3",
                metricType="L2")

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    rpc.add_OperatorServicer_to_server(Servicer(), server)
    server.add_insecure_port(os.environ["OP_ENDPOINT"])
    server.start()
    server.wait_for_termination()
""")

PHOTOS = ("chelsea", "coffee", "rocket", "astronaut")


def ok(answer: httpx.Response):
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_original_protocol_operator_uploads_and_searches(original_stubs, start_server):
    command = [sys.executable, "-c", ORIGINAL_MEAN_COLOUR, str(original_stubs)]
    with OperatorProcess(command=command) as operator:
        endpoint = operator.endpoint
        with OperatorClient(endpoint) as client:
            assert client.identity().image_bytes is False
        api = start_server().client
        ok(api.post("/v1/operator/regist", json={"endpoint": endpoint, "name": "orig"}))
        ok(api.post("/v1/pipeline/orig-pipe", json={"encoder": "orig", "processors": ""}))
        ok(api.post("/v1/application/orig-app", json={
            "fields": {"image": {"type": "object", "pipeline": "orig-pipe"}}}))
        files = {name: jpeg(photo(name)) for name in PHOTOS}
        ids = {}
        for name in PHOTOS[:2]:  # the original's JSON base64 upload
            (entity,) = ok(api.post("/v1/application/orig-app/upload",
                                    json={"fields": {"image": {"data": b64(files[name])}}}))
            ids[name] = entity["_id"]
        for name in PHOTOS[2:]:  # a multipart file: bytes the engine must encode for it
            (entity,) = ok(api.post("/v1/application/orig-app/upload",
                                    files={"file": (f"{name}.jpg", files[name])}))
            ids[name] = entity["_id"]
        for name in PHOTOS:
            hits = ok(api.post("/v1/application/orig-app/search",
                               files={"file": (f"{name}.jpg", files[name])},
                               data={"topk": "4"}))
            assert int(hits[0]["_id"]) == ids[name], (name, hits)
            assert hits[0]["distance"] < 1e-3
        # copies are still found: it gives no thumbnails, so the API describes each upload
        half = photo("chelsea").resize((225, 150))
        (copy,) = ok(api.post("/v1/application/orig-app/upload",
                              files={"file": ("copy.jpg", jpeg(half))}))
        assert int(copy["duplicate_of"]["_id"]) == ids["chelsea"], copy
        metrics = api.get("/metrics").text
        assert 'phantoscope_described_images_total{thumbnail="api"} 5.0' in metrics
        assert 'thumbnail="operator"' not in metrics
