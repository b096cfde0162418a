"""The Dockerfiles under deploy/docker, read without a Docker engine: what they copy exists
and reaches the build context, what they run is a real `phantoscope` command, the runtime
stages are torch-free and non-root, and the model the export stage bakes is the one the
runtime stage serves."""

import os
import re
import subprocess
import sys
from importlib.metadata import requires
from pathlib import Path

import pytest

from deployfiles import (
    API_DOCKERFILE,
    DOCKERFILES,
    OPERATOR_DOCKERFILES,
    REPO,
    Dockerfile,
    in_build_context,
    parse_cli,
    parse_dockerfile,
    shell_words,
)
from phantoscope.zoo import BUILTINS

ids = [path.name for path in DOCKERFILES]


def test_the_three_images_are_there():
    assert {path.name for path in DOCKERFILES} == {
        "api.Dockerfile", "operator.Dockerfile", "operator-gpu.Dockerfile",
    }


@pytest.mark.parametrize("path", DOCKERFILES, ids=ids)
def test_copy_sources_exist_and_are_in_the_build_context(path):
    dockerfile = parse_dockerfile(path)
    names = [stage.name for stage in dockerfile.stages]
    for index, stage in enumerate(dockerfile.stages):
        for copy in stage.all("COPY"):
            *sources, _target = copy.exec_form() or copy.body().split()
            source_stage = copy.flags().get("from")
            if source_stage is not None:
                assert source_stage in names[:index], f"COPY --from={source_stage}: no such stage"
                continue
            for source in sources:
                assert (REPO / source).exists(), f"{path.name}: COPY {source}: not in the repo"
                assert in_build_context(source), f"{path.name}: .dockerignore leaves out {source}"


def test_dockerignore_keeps_caches_and_data_out():
    assert in_build_context("src/phantoscope/cli/main.py")
    assert not in_build_context("src/phantoscope/__pycache__/cli.cpython-311.pyc")
    assert not in_build_context(".venv/bin/python")
    assert not in_build_context("data/meta.db")
    assert not in_build_context("deploy/docker-compose.yml")


@pytest.mark.parametrize("path", DOCKERFILES, ids=ids)
def test_multi_stage_and_non_root(path):
    dockerfile = parse_dockerfile(path)
    assert len(dockerfile.stages) >= 2
    user = dockerfile.runtime.last("USER")
    assert user is not None and user.body() not in ("root", "0")
    useradd = " ".join(run.body() for run in dockerfile.runtime.all("RUN"))
    assert re.search(rf"useradd\b.*\b{re.escape(user.body())}\b", useradd)


def _command(dockerfile: Dockerfile) -> list[str]:
    """What the image runs by default: ENTRYPOINT + CMD, both in exec form."""
    runtime = dockerfile.runtime
    entrypoint, cmd = runtime.last("ENTRYPOINT"), runtime.last("CMD")
    assert cmd is not None and cmd.exec_form() is not None
    return [*(entrypoint.exec_form() if entrypoint else []), *cmd.exec_form()]


def _healthcheck(dockerfile: Dockerfile) -> list[str]:
    """The HEALTHCHECK's command as the shell in the container expands it."""
    healthcheck = dockerfile.runtime.last("HEALTHCHECK")
    assert healthcheck is not None
    body = healthcheck.body()
    assert body.startswith("CMD ")
    return shell_words(body.removeprefix("CMD "), _container_env(dockerfile))


def _container_env(dockerfile: Dockerfile) -> dict[str, str]:
    """This process's environment with the runtime stage's ENV over it (`$PATH` expanded)."""
    image = {name: os.path.expandvars(value) for name, value in dockerfile.runtime.env().items()}
    return {**os.environ, **image}


def test_api_image_runs_the_api_server_on_all_interfaces():
    dockerfile = parse_dockerfile(API_DOCKERFILE)
    command = _command(dockerfile)
    assert command[0] == "phantoscope"
    assert parse_cli(command[1:])[0] == ["api"]
    env = dockerfile.runtime.env()
    assert (env["PHANTOSCOPE_HOST"], env["PHANTOSCOPE_PORT"]) == ("0.0.0.0", "5000")
    assert dockerfile.runtime.last("EXPOSE").body() == env["PHANTOSCOPE_PORT"]


def test_api_healthcheck_asks_healthz_on_the_server_port():
    dockerfile = parse_dockerfile(API_DOCKERFILE)
    words = _healthcheck(dockerfile)
    assert words[:2] == ["python", "-c"]
    # Run its code with urlopen replaced by a print: the URL it would fetch.
    code = "import urllib.request, sys\nurllib.request.urlopen = lambda url, **_: print(url)\n"
    shown = subprocess.run(
        [sys.executable, "-c", code + words[2]], env=_container_env(dockerfile),
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    assert shown == "http://127.0.0.1:5000/healthz"


def test_api_image_carries_the_defaults_script():
    copies = [copy.body() for copy in parse_dockerfile(API_DOCKERFILE).runtime.all("COPY")]
    assert "deploy/register_defaults.py /opt/phantoscope/register_defaults.py" in copies


@pytest.mark.parametrize("path", OPERATOR_DOCKERFILES, ids=[p.name for p in OPERATOR_DOCKERFILES])
def test_operator_image_serves_a_baked_builtin(path):
    dockerfile = parse_dockerfile(path)
    command = _command(dockerfile)
    subcommand, params = parse_cli(command[1:])
    assert command[0] == "phantoscope" and subcommand == ["operator", "serve"]
    baked = [arg for stage in dockerfile.stages for arg in stage.all("ARG")
             if arg.body().startswith("OPERATORS=")]
    assert len(baked) == 1
    operators = baked[0].body().removeprefix("OPERATORS=").split()
    assert set(operators) <= set(BUILTINS)
    assert params["target"] in operators


@pytest.mark.parametrize("path", OPERATOR_DOCKERFILES, ids=[p.name for p in OPERATOR_DOCKERFILES])
def test_operator_healthcheck_tests_the_port_it_serves(path):
    dockerfile = parse_dockerfile(path)
    words = _healthcheck(dockerfile)
    subcommand, params = parse_cli(words[1:])
    assert subcommand == ["operator", "test"]
    served_port = dockerfile.runtime.env()["OP_ENDPOINT"].rpartition(":")[2]
    assert params["endpoint"] == f"127.0.0.1:{served_port}"
    assert dockerfile.runtime.last("EXPOSE").body() == served_port


def _torch_free_stages(dockerfile: Dockerfile) -> list[str]:
    """The runtime stage and every stage it copies from, except the one it takes only the
    models folder from."""
    models = dockerfile.runtime.env()["PHANTOSCOPE_MODELS"]
    names = ["runtime"]
    for copy in dockerfile.runtime.all("COPY"):
        source = copy.flags().get("from")
        if source is not None and copy.body().split()[-1] != models:
            names.append(source)
    return names


def _extras_installed(run: str) -> bool:
    return bool(re.search(r"pip install [^&;]*\.\[", run)) or "torch" in run


def test_package_dependencies_have_no_torch():
    """`pip install .` (the runtime stages) brings no torch; the `export` extra does."""
    requirements = requires("phantoscope") or []
    core = [req for req in requirements if "extra ==" not in req]
    export = [req for req in requirements if re.search(r"extra == .export.", req)]
    assert core and not [req for req in core if req.lower().startswith("torch")]
    assert any(req.startswith("torch") for req in export)


@pytest.mark.parametrize("path", OPERATOR_DOCKERFILES, ids=[p.name for p in OPERATOR_DOCKERFILES])
def test_operator_runtime_has_no_torch_and_takes_the_exported_models(path):
    dockerfile = parse_dockerfile(path)
    export = dockerfile.stage("export")
    assert any("pip install \".[export]\"" in run.body() for run in export.all("RUN"))
    for name in _torch_free_stages(dockerfile):
        for run in dockerfile.stage(name).all("RUN"):
            assert not _extras_installed(run.body()), f"stage {name} installs {run.body()!r}"
    models = dockerfile.runtime.env()["PHANTOSCOPE_MODELS"]
    from_export = [copy.body() for copy in dockerfile.runtime.all("COPY")
                   if copy.flags().get("from") == "export"]
    exported_to = re.findall(r"PHANTOSCOPE_MODELS=(\S+)", " ".join(
        run.body() for run in export.all("RUN")))
    assert exported_to and from_export == [f"{exported_to[0]} {models}"]


def test_gpu_image_swaps_in_onnxruntime_gpu_on_a_cuda_base():
    dockerfile = parse_dockerfile(REPO / "deploy" / "docker" / "operator-gpu.Dockerfile")
    assert dockerfile.runtime.base == "${CUDA_IMAGE}"
    assert dockerfile.args["CUDA_IMAGE"].startswith("nvidia/cuda:")
    assert "cudnn-runtime" in dockerfile.args["CUDA_IMAGE"]
    venv_from = next(copy.flags()["from"] for copy in dockerfile.runtime.all("COPY")
                     if copy.body().endswith("/opt/venv"))
    runs = " ".join(run.body() for run in dockerfile.stage(venv_from).all("RUN"))
    assert "pip uninstall -y onnxruntime" in runs
    assert runs.index("pip uninstall -y onnxruntime") < runs.index('install "$ONNXRUNTIME_GPU"')
    gpu_arg = next(arg.body() for arg in dockerfile.stage(venv_from).all("ARG")
                   if arg.body().startswith("ONNXRUNTIME_GPU="))
    assert gpu_arg.startswith("ONNXRUNTIME_GPU=onnxruntime-gpu")


def _export_step(path: Path) -> str:
    """The Python code the export stage runs for each name in OPERATORS."""
    runs = " ".join(run.body() for run in parse_dockerfile(path).stage("export").all("RUN"))
    return re.search(r'python -c "([^"]+)"', runs)[1]


@pytest.mark.parametrize("path", OPERATOR_DOCKERFILES, ids=[p.name for p in OPERATOR_DOCKERFILES])
def test_the_export_step_bakes_what_the_torch_free_runtime_serves(path, tmp_path):
    """Run the export stage's own code into an empty models folder (a real export with
    torch), then serve from that folder in a process that cannot import torch: the model
    loads and encodes without exporting anything."""
    models = tmp_path / "models"
    env = {**os.environ, "PHANTOSCOPE_MODELS": str(models)}
    subprocess.run([sys.executable, "-c", _export_step(path), "efficientnet-lite0-encoder"],
                   env=env, check=True, timeout=300)
    baked = sorted(p.name for p in models.iterdir())
    assert baked and all(name.endswith(".onnx") for name in baked)
    serve = (
        "import sys\n"
        "sys.modules['torch'] = None  # any import of torch fails\n"
        "from phantoscope.operators.checkup import sample_image\n"
        "from phantoscope.cli.operator_loader import load_operator\n"
        "operator = load_operator('efficientnet-lite0-encoder')\n"
        "operator.load()\n"
        "image = operator.prepare(sample_image(), max_pixels=10**8)\n"
        "print(operator.run([image]).shape)\n"
    )
    shown = subprocess.run([sys.executable, "-c", serve], env=env, capture_output=True,
                           text=True, check=True, timeout=120).stdout
    assert shown.strip() == "(1, 1280)"
    assert sorted(p.name for p in models.iterdir()) == baked
