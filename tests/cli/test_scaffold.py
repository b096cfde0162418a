"""`phantoscope operator new` makes a folder that serves and passes `operator test` as it is,
for each type: encoder, processor and text encoder."""

from __future__ import annotations

import subprocess
import sys

import pytest

from helpers import PHANTOSCOPE, OperatorProcess, free_port, run_cli
from phantoscope.operators.scaffold.sdk_wheel import wheel_name

LAYOUT = [
    "custom_operator.py", "server.py", "data/prepare_model.sh", "requirements.txt",
    "requirements-gpu.txt", "Dockerfile", "Dockerfile-gpu", "Makefile",
    "test_custom_operator.py", "README.md", f"wheels/{wheel_name()}",
]


@pytest.fixture(scope="module", params=["encoder", "processor", "text-encoder"])
def scaffold(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(request.param) / f"my-{request.param}"
    result = run_cli("operator", "new", str(folder), "--type", request.param)
    assert result.returncode == 0, result.stderr
    return request.param, folder


def test_layout_is_the_tutorials(scaffold):
    kind, folder = scaffold
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) == \
        sorted(LAYOUT)
    makefile = (folder / "Makefile").read_text()
    assert f"IMAGE_NAME = my-{kind}" in makefile
    assert "psoperator/$(IMAGE_NAME):$(VERSION)" in makefile
    assert "psoperator/$(IMAGE_NAME)-gpu:$(VERSION)" in makefile
    assert f'name = "my-{kind}"' in (folder / "custom_operator.py").read_text()
    prepare = subprocess.run(["bash", folder / "data" / "prepare_model.sh"],
                             capture_output=True, text=True)
    assert prepare.returncode == 0, prepare.stderr


IDENTITY = {
    "encoder": "type=encoder input=image output=vector dimension=512",
    "processor": "type=processor input=image output=image",
    "text-encoder": "type=encoder input=text output=vector dimension=512",
}


def _check(endpoint: str, kind: str) -> str:
    result = run_cli("operator", "test", "-e", endpoint)
    assert result.returncode == 0, result.stdout + result.stderr
    assert IDENTITY[kind] in result.stdout and result.stdout.rstrip().endswith("OK")
    return result.stdout


def test_python_server_py_with_op_endpoint_answers(scaffold):
    kind, folder = scaffold
    endpoint = f"127.0.0.1:{free_port()}"
    with OperatorProcess(command=[sys.executable, "server.py"],
                         endpoint=endpoint, env={"OP_ENDPOINT": endpoint},
                 cwd=folder):
        out = _check(endpoint, kind)
    if kind == "encoder":
        assert "vector size: 1; data size: 0" in out and "vector dim: 512" in out
    elif kind == "processor":
        assert "vector size: 0; data size: 4" in out and out.count("crop box:") == 4
    else:
        assert "vector size: 4; data size: 0" in out and "vector dim: 512" in out
        assert "must refuse an empty text: INVALID_ARGUMENT: texts[0]: empty text" in out
        assert "must refuse an image: INVALID_ARGUMENT: my-text-encoder encodes texts" in out


def test_operator_serve_folder_with_port_answers(scaffold):
    kind, folder = scaffold
    port = free_port()
    command = [PHANTOSCOPE, "operator", "serve", str(folder), "--port", str(port)]
    with OperatorProcess(command=command, endpoint=f"127.0.0.1:{port}"):
        out = _check(f"127.0.0.1:{port}", kind)
    assert f"endpoint=127.0.0.1:{port}" in out


def test_scaffold_own_test_passes(scaffold):
    kind, folder = scaffold
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", folder,
         "test_custom_operator.py"],
        cwd=folder, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert ("3 passed" if kind == "text-encoder" else "1 passed") in result.stdout


@pytest.mark.parametrize("name", ["bad name", "-dash-first", "x" * 64, "quote'd"])
def test_new_refuses_unusable_names(tmp_path, name):
    result = run_cli("operator", "new", str(tmp_path / name))
    assert result.returncode == 2
    assert "not a usable operator name" in result.stderr
    assert not (tmp_path / name).exists()


def test_new_refuses_a_folder_that_is_not_empty(tmp_path):
    folder = tmp_path / "taken"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    result = run_cli("operator", "new", str(folder))
    assert result.returncode == 2 and "not empty" in result.stderr
    assert [p.name for p in folder.iterdir()] == ["keep.txt"]


def test_new_refuses_an_unknown_type(tmp_path):
    result = run_cli("operator", "new", str(tmp_path / "x"), "--type", "decoder")
    assert result.returncode == 2 and "encoder, processor, text-encoder" in result.stderr


def test_serve_names_what_it_could_not_find():
    result = run_cli("operator", "serve", "no-such-operator")
    assert result.returncode == 2
    assert "not a built-in operator" in result.stderr and "efficientnet-lite0-encoder" in \
        result.stderr


def test_operator_test_fails_on_an_unreachable_endpoint():
    result = run_cli("operator", "test", "-e", f"127.0.0.1:{free_port()}", "--timeout", "3")
    assert result.returncode == 1
    assert "UNAVAILABLE" in result.stderr
