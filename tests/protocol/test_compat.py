"""Wire compatibility with the original Phantoscope operator protocol."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from google.protobuf import descriptor_pb2
from grpc_tools import protoc
from PIL import Image

from helpers import PHANTOSCOPE, REPO, SPEC_PROTO, OperatorProcess, free_port, run_cli
from inprocess import MeanColourEncoder, serve_in_process
from phantoscope.operators import Box, Crop, Encoding, Processor
from phantoscope.operators.checkup import sample_image
from phantoscope.operators.rpc_client import OperatorClient

OUR_PROTO = REPO / "src" / "phantoscope" / "operators" / "proto" / "omnisearch.proto"


class HalvesProcessor(Processor):
    name = "halves"

    def run(self, images):
        crops = []
        for image in images:
            width, height = image.size
            crops.append([
                Crop(image.crop((0, 0, width // 2, height)), Box(0, 0, width // 2, height, 0.9)),
                Crop(image.crop((width // 2, 0, width, height)),
                     Box(width // 2, 0, width, height, 0.8)),
            ])
        return crops


def _descriptors(proto: Path, tmp_path: Path) -> dict[str, dict[str, tuple[int, int, int]]]:
    out = tmp_path / f"{proto.stem}-{abs(hash(proto))}.pb"
    assert protoc.main(["protoc", f"-I{proto.parent}", f"--descriptor_set_out={out}",
                        str(proto)]) == 0
    files = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    return {
        message.name: {f.name: (f.number, f.type, f.label) for f in message.field}
        for message in files.file[0].message_type
    }


def test_every_original_message_and_field_is_ours_unchanged(tmp_path):
    original = _descriptors(SPEC_PROTO, tmp_path)
    ours = _descriptors(OUR_PROTO, tmp_path)
    for message, fields in original.items():
        assert message in ours, f"message {message} is missing"
        for field, spec in fields.items():
            assert ours[message].get(field) == spec, f"{message}.{field} differs"
        added = set(ours[message]) - set(fields)
        original_numbers = {number for number, _, _ in fields.values()}
        assert all(ours[message][name][0] not in original_numbers for name in added)


def test_service_methods_have_the_original_wire_names():
    from phantoscope.operators.proto import omnisearch_pb2 as pb

    service = pb.DESCRIPTOR.services_by_name["Operator"]
    assert service.full_name == "omnisearch.Operator"
    assert {m.name for m in service.methods} == {"Execute", "Healthy", "Identity"}


ORIGINAL_CLIENT = textwrap.dedent("""
    import json, sys
    import grpc
    sys.path.insert(0, sys.argv[1])
    import omnisearch_pb2 as pb, omnisearch_pb2_grpc as rpc
    stub = rpc.OperatorStub(grpc.insecure_channel(sys.argv[2]))
    identity = stub.Identity(pb.IdentityRequest())
    health = stub.Healthy(pb.HealthyRequest())
    reply = stub.Execute(pb.ExecuteRequest(datas=[sys.stdin.read()]))
    print(json.dumps({
        "identity": {f.name: v for f, v in identity.ListFields()},
        "healthy": health.healthy,
        "nums": reply.nums,
        "vectors": [list(v.element) for v in reply.vectors],
        "metadata": [m.data.decode() for m in reply.metadata],
    }))
""")


def _original_client(stubs: Path, endpoint: str, image: bytes) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", ORIGINAL_CLIENT, str(stubs), endpoint],
        input=base64.b64encode(image).decode(), capture_output=True, text=True, timeout=60,
        check=True,
    )
    return json.loads(result.stdout)


def test_original_client_gets_identity_health_and_vectors(original_stubs):
    with serve_in_process(MeanColourEncoder()) as server:
        answer = _original_client(original_stubs, f"127.0.0.1:{server.port}", sample_image())
    assert answer["identity"] == {
        "name": "mean-colour", "endpoint": "127.0.0.1:0", "type": "encoder",
        "input": "image", "output": "vector", "dimension": "3", "metricType": "L2",
    }
    assert answer["healthy"] == "healthy"
    assert answer["nums"] == 1 and answer["metadata"] == []
    expected = np.asarray(Image.open(io.BytesIO(sample_image())).convert("RGB"),
                          dtype=np.float32).mean(axis=(0, 1))
    np.testing.assert_allclose(answer["vectors"][0], expected, rtol=1e-5)


class LabelledMeanColourEncoder(MeanColourEncoder):
    """The mean colour, with its brightest channel as a label."""

    name = "labelled-mean-colour"
    labels = "channels"

    def encode(self, images):
        vectors = self.run(images)
        return Encoding(vectors, [[("rgb"[int(v.argmax())], 1.0)] for v in vectors])


def test_original_client_ignores_labels(original_stubs):
    with serve_in_process(LabelledMeanColourEncoder()) as server:
        answer = _original_client(original_stubs, f"127.0.0.1:{server.port}", sample_image())
        with OperatorClient(f"127.0.0.1:{server.port}") as client:
            identity = client.identity()
            ours = client.execute(datas=[base64.b64encode(sample_image()).decode()])
    # Our client sees the labels; the original's sees the original fields, as before.
    assert identity.labels == "channels"
    assert len(ours.labels) == 1 and ours.labels[0][0][0] in "rgb"
    assert set(answer["identity"]) == {
        "name", "endpoint", "type", "input", "output", "dimension", "metricType"
    }
    assert answer["nums"] == 1 and answer["metadata"] == []
    np.testing.assert_allclose(answer["vectors"][0], ours.vectors[0], rtol=1e-6)


def test_original_client_reads_crops_and_ignores_boxes(original_stubs):
    with serve_in_process(HalvesProcessor()) as server:
        answer = _original_client(original_stubs, f"127.0.0.1:{server.port}", sample_image())
    assert answer["nums"] == 2 and answer["vectors"] == []
    sizes = [Image.open(io.BytesIO(base64.b64decode(d))).size
             for d in answer["metadata"]]
    width, height = Image.open(io.BytesIO(sample_image())).size
    assert sizes == [(width // 2, height), (width - width // 2, height)]


ORIGINAL_SERVER = textwrap.dedent("""
    # An operator written against the original protocol, the way the original template did.
    import os, sys
    from concurrent import futures
    import grpc
    sys.path.insert(0, sys.argv[1])
    import omnisearch_pb2 as pb, omnisearch_pb2_grpc as rpc
    CLAIMED, RETURNED = int(os.environ["CLAIMED_DIM"]), int(os.environ["RETURNED_DIM"])

    class Servicer(rpc.OperatorServicer):
        def Execute(self, request, context):
            vectors = [pb.Vector(element=[0.5] * RETURNED) for _ in request.datas]
            return pb.ExecuteReply(nums=len(vectors), vectors=vectors, metadata=[])
        def Healthy(self, request, context):
            return pb.HealthyReply(healthy=os.environ.get("HEALTH", "healthy"))
        def Identity(self, request, context):
            return pb.IdentityReply(name="vgg16", endpoint=os.environ["OP_ENDPOINT"],
                type="encoder", input="image", output="vector", dimension=str(CLAIMED),
                metricType="L2")

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=10))
    rpc.add_OperatorServicer_to_server(Servicer(), server)
    server.add_insecure_port("[::]:" + os.environ["OP_ENDPOINT"].split(":")[-1])
    server.start()
    server.wait_for_termination()
""")


@pytest.mark.parametrize(
    ("claimed", "returned", "health", "exit_code", "says"),
    [
        (4, 4, "healthy", 0, "vector dim: 4"),
        (8, 4, "healthy", 1, "vector dimension 4 differs from the 8 Identity claims"),
        (4, 4, "sick", 1, "operator is not healthy: sick"),
    ],
)
def test_operator_test_checks_an_original_protocol_server(
    original_stubs, claimed, returned, health, exit_code, says
):
    endpoint = f"127.0.0.1:{free_port()}"
    env = {"OP_ENDPOINT": endpoint, "CLAIMED_DIM": str(claimed), "RETURNED_DIM": str(returned),
           "HEALTH": health}
    process = subprocess.Popen([sys.executable, "-c", ORIGINAL_SERVER, str(original_stubs)],
                               env={**os.environ, **env})
    try:
        result = run_cli("operator", "test", "-e", endpoint, "--wait", "2")
    finally:
        process.kill()
        process.wait()
    assert result.returncode == exit_code, result.stdout + result.stderr
    assert says in result.stdout + result.stderr
    assert "Identity: name=vgg16 type=encoder" in result.stdout


def test_our_builtin_serve_command_speaks_to_the_original_client(original_stubs, tmp_path):
    """The served scaffold, as a separate process, answers an original-protocol client."""
    folder = tmp_path / "histogram-encoder"
    assert run_cli("operator", "new", str(folder)).returncode == 0
    endpoint = f"127.0.0.1:{free_port()}"
    with OperatorProcess(command=[PHANTOSCOPE, "operator", "serve", str(folder)],
                         endpoint=endpoint,
                 env={"OP_ENDPOINT": endpoint}):
        answer = _original_client(original_stubs, endpoint, sample_image())
    assert answer["identity"]["name"] == "histogram-encoder"
    assert answer["identity"]["dimension"] == "512"
    assert len(answer["vectors"]) == 1 and len(answer["vectors"][0]) == 512
    assert abs(np.linalg.norm(answer["vectors"][0]) - 1) < 1e-5
