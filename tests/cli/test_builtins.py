"""Built-in operators served by `phantoscope operator serve NAME` pass `operator test`."""

from __future__ import annotations

import pytest

from helpers import OperatorProcess, run_cli


@pytest.mark.parametrize(
    ("name", "expect"),
    [
        ("efficientnet-lite0-encoder", ["vector size: 1; data size: 0", "vector dim: 1280"]),
        ("mobilenet-v2-encoder", ["vector size: 1; data size: 0", "vector dim: 1280"]),
        ("face-encoder", ["vector size: 1; data size: 0", "vector dim: 128"]),
        # The sample photo is the astronaut: exactly one face.
        ("face-detector", ["vector size: 0; data size: 1", "crop box: ("]),
    ],
)
def test_builtin_passes_operator_test(name, expect):
    with OperatorProcess(name) as server:
        result = run_cli("operator", "test", "-e", server.endpoint)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Identity: name={name} " in result.stdout
    for text in expect:
        assert text in result.stdout


def test_resnet50_serves_weights_given_by_file(tmp_path):
    import torch
    import torchvision

    torch.manual_seed(0)
    weights = tmp_path / "resnet50.pth"
    torch.save(torchvision.models.resnet50().state_dict(), weights)
    env = {"PHANTOSCOPE_MODELS": str(tmp_path / "models")}
    options = ("--weights", str(weights))
    with OperatorProcess("resnet50-encoder", options=options, env=env) as server:
        result = run_cli("operator", "test", "-e", server.endpoint)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "vector dim: 2048" in result.stdout
