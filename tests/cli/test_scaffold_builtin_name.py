"""A scaffold named after a built-in operator is served as the folder, never as the built-in."""

from __future__ import annotations

import re
import shlex

from helpers import PHANTOSCOPE, OperatorProcess, free_port, run_cli

NAME = "resnet50-encoder"  # a built-in's name: the tutorial's own example


def _serves_the_scaffold(command: list[str], cwd) -> str:
    port = free_port()
    endpoint = f"127.0.0.1:{port}"
    with OperatorProcess(command=[*command, "--port", str(port)], endpoint=endpoint, cwd=cwd):
        result = run_cli("operator", "test", "-e", endpoint)
    assert result.returncode == 0, result.stdout + result.stderr
    # The scaffold is a 512-d colour histogram; the built-in ResNet50 would claim 2048.
    assert f"name={NAME} type=encoder" in result.stdout
    assert "dimension=512" in result.stdout and "vector dim: 512" in result.stdout
    return result.stdout


def test_printed_next_step_serves_the_folder_just_made(tmp_path):
    made = run_cli("operator", "new", NAME, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    step = re.search(r"`(phantoscope operator serve [^`]+)`", made.stdout)
    assert step, made.stdout
    words = shlex.split(step.group(1))
    assert words[3] == f"./{NAME}"  # an explicit path, whatever the loader does
    _serves_the_scaffold([PHANTOSCOPE, *words[1:]], tmp_path)


def test_a_bare_name_of_an_existing_folder_wins_over_the_builtin(tmp_path):
    assert run_cli("operator", "new", NAME, cwd=tmp_path).returncode == 0
    _serves_the_scaffold([PHANTOSCOPE, "operator", "serve", NAME], tmp_path)


def test_builtin_options_on_a_shadowing_folder_are_refused_with_why(tmp_path):
    assert run_cli("operator", "new", NAME, cwd=tmp_path).returncode == 0
    result = run_cli("operator", "serve", NAME, "--weights", "resnet50.pth", cwd=tmp_path)
    assert result.returncode == 2
    assert "shadows the built-in" in result.stderr and "--weights" in result.stderr
