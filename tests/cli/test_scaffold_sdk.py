"""A scaffold builds and runs on a machine that has only its folder and the public registries:
`operator new` writes a wheel of the operator SDK into it, and requirements.txt installs that
wheel by relative path (Phantoscope itself is on no registry)."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from helpers import OperatorProcess, free_port, run_cli

# Only the SDK's own dependencies: nothing of the server's (FastAPI, Milvus, SQLAlchemy...).
SDK_DEPENDENCIES = {"grpcio", "protobuf", "numpy", "pillow", "pydantic-settings", "urllib3"}


@pytest.fixture(scope="module")
def scaffold(tmp_path_factory) -> Path:
    """An encoder scaffold, moved alone to a folder of its own (as if on another machine)."""
    made = tmp_path_factory.mktemp("made") / "histogram-encoder"
    result = run_cli("operator", "new", str(made))
    assert result.returncode == 0, result.stderr
    alone = tmp_path_factory.mktemp("elsewhere") / "histogram-encoder"
    shutil.copytree(made, alone)
    return alone


def _wheel(folder: Path) -> Path:
    wheels = sorted((folder / "wheels").glob("*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_requirements_name_nothing_the_registries_lack(scaffold):
    for name in ("requirements.txt", "requirements-gpu.txt"):
        lines = [line.strip() for line in (scaffold / name).read_text().splitlines()
                 if line.strip() and not line.startswith("#")]
        assert not [line for line in lines if re.match(r"phantoscope\b", line)], lines
    wheel = _wheel(scaffold)
    assert f"./wheels/{wheel.name}" in (scaffold / "requirements.txt").read_text()
    for dockerfile in ("Dockerfile", "Dockerfile-gpu"):  # the image build sees the wheel too
        text = (scaffold / dockerfile).read_text()
        copy_wheels = text.index("COPY wheels/ wheels/")
        assert copy_wheels < text.index("install --no-cache-dir -r requirements"), text


def test_the_wheel_is_a_valid_wheel_of_the_sdk_alone(scaffold):
    wheel = _wheel(scaffold)
    assert re.fullmatch(r"phantoscope-[\w.]+-py3-none-any\.whl", wheel.name)
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        dist_info = next(name.split("/")[0] for name in names if ".dist-info/" in name)
        record = list(csv.reader(io.StringIO(archive.read(f"{dist_info}/RECORD").decode())))
        assert {row[0] for row in record} == names
        for path, digest, size in record:
            if path.endswith("RECORD"):
                assert digest == size == ""
                continue
            data = archive.read(path)
            expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            assert digest == f"sha256={expected.decode()}" and int(size) == len(data)
        metadata = archive.read(f"{dist_info}/METADATA").decode()
        wheel_meta = archive.read(f"{dist_info}/WHEEL").decode()
    assert "Root-Is-Purelib: true" in wheel_meta and "Tag: py3-none-any" in wheel_meta
    requires = {re.split(r"[<>=!~ ]", line.removeprefix("Requires-Dist: "))[0].lower()
                for line in metadata.splitlines() if line.startswith("Requires-Dist:")}
    assert requires == SDK_DEPENDENCIES
    assert "phantoscope/operators/server.py" in names and "phantoscope/config.py" in names
    assert "phantoscope/operators/proto/omnisearch_pb2_grpc.py" in names
    assert not [name for name in names if re.match(
        r"phantoscope/(operators/scaffold|cli|api|engine|storage|zoo|web)/", name)]


def _serve_and_check(python: str, folder: Path, env: dict[str, str]) -> str:
    endpoint = f"127.0.0.1:{free_port()}"
    log = folder.parent / "server.log"
    process = OperatorProcess(command=[python, "server.py"], endpoint=endpoint,
                              env={**env, "OP_ENDPOINT": endpoint}, cwd=folder, log_path=log)
    try:
        with process:
            result = run_cli("operator", "test", "-e", endpoint)
    except RuntimeError:
        raise AssertionError(log.read_text()) from None
    assert result.returncode == 0, result.stdout + result.stderr
    assert "name=histogram-encoder type=encoder" in result.stdout
    assert "vector dim: 512" in result.stdout and result.stdout.rstrip().endswith("OK")
    return result.stdout


def test_pip_installs_the_wheel_and_server_py_serves_from_it(scaffold, tmp_path):
    """Offline: pip installs the wheel alone into a target folder, and `python server.py`
    serves with the SDK from there (not from this checkout)."""
    target = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--quiet",
         "--target", str(target), str(_wheel(scaffold))],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    env = {"PYTHONPATH": str(target)}
    where = subprocess.run(
        [sys.executable, "-c", "import phantoscope.operators; print(phantoscope.__file__)"],
        capture_output=True, text=True, env={**os.environ, **env}, cwd=scaffold,
    )
    assert where.stdout.startswith(str(target)), where.stdout + where.stderr
    _serve_and_check(sys.executable, scaffold, env)


@pytest.mark.timeout(600)
def test_fresh_venv_installs_requirements_txt_from_the_registries(scaffold, tmp_path):
    """The folder alone, a fresh venv (no system site packages) and the public registries:
    `pip install -r requirements.txt`, then `python server.py` passes `operator test`
    (about 40 s here). The registries are the ones `make` installs the project from, so
    where they cannot be reached this fails with pip's own words, like `make` would."""
    venv = tmp_path / "venv"
    base_python = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base_python, "-m", "venv", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    clean_env = {key: value for key, value in os.environ.items()
                 if key not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    install = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "-r", "requirements.txt"],
        capture_output=True, text=True, timeout=500, cwd=scaffold, env=clean_env,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    isolated = subprocess.run(
        [python, "-c", "import phantoscope, importlib.util as u; print(phantoscope.__file__); "
         "print(u.find_spec('fastapi'), u.find_spec('phantoscope.cli'))"],
        capture_output=True, text=True, cwd=tmp_path, env=clean_env,
    )
    lines = isolated.stdout.splitlines()
    assert lines[0].startswith(str(venv)) and lines[1] == "None None", isolated
    _serve_and_check(python, scaffold, clean_env)
