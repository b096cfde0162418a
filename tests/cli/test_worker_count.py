"""How many operator processes `up --workers` / `operator serve --processes` start, and the
clear refusal (before anything starts) of a count that cannot run."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from helpers import free_port, run_cli
from phantoscope.cli.worker_count import (
    API_MB,
    OPERATOR_MB,
    WorkerCountError,
    api_worker_count,
    available_mb,
    worker_count,
)
from phantoscope.operators.process_group import threads_per_process


def test_the_default_is_one_per_core_as_far_as_the_memory_holds():
    assert worker_count(None, "--workers", 16, 64_000, API_MB) == 16
    assert worker_count(None, "--workers", 16, API_MB + 5 * OPERATOR_MB + 10, API_MB) == 5
    assert worker_count(None, "--workers", 2, None) == 2  # memory unknown: not checked
    with pytest.raises(WorkerCountError, match="not even one fits"):
        worker_count(None, "--workers", 16, API_MB + OPERATOR_MB - 1, API_MB)


def test_a_given_count_is_checked():
    assert worker_count(" 3 ", "--workers", 2, 64_000, API_MB) == 3  # more than cores: allowed
    for text, message in [("0", "at least 1"), ("-2", "at least 1"), ("two", "whole number"),
                          ("1.5", "whole number"), ("", "whole number"), ("65", "at most 64")]:
        with pytest.raises(WorkerCountError, match=message):
            worker_count(text, "--workers", 2, 64_000, API_MB)
    with pytest.raises(WorkerCountError) as refused:
        worker_count("8", "PHANTOSCOPE_WORKERS", 2, API_MB + 3 * OPERATOR_MB, API_MB)
    assert str(refused.value) == (
        f"PHANTOSCOPE_WORKERS 8: each operator process takes about {OPERATOR_MB} MB and the "
        f"API processes about {API_MB} MB; this machine has {API_MB + 3 * OPERATOR_MB:,} MB "
        "available, so at most 3 fit")


def test_api_processes_one_below_four_cores_then_two_in_five():
    assert [api_worker_count(None, "--api-workers", cores, 64_000)
            for cores in (1, 2, 3, 4, 8, 16, 32)] == [1, 1, 1, 2, 3, 6, 13]
    assert api_worker_count(None, "--api-workers", 16, OPERATOR_MB + 2 * API_MB + 10) == 2
    assert api_worker_count(None, "--api-workers", 16, None) == 6  # memory unknown
    assert api_worker_count(" 3 ", "--api-workers", 2, 64_000) == 3
    for text, message in [("0", "give at least 1 API process"), ("-1", "at least 1"),
                          ("two", "whole number"), ("65", "at most 64 API processes")]:
        with pytest.raises(WorkerCountError, match=message):
            api_worker_count(text, "--api-workers", 2, 64_000)
    with pytest.raises(WorkerCountError) as refused:
        api_worker_count("4", "PHANTOSCOPE_API_WORKERS", 2, OPERATOR_MB + 2 * API_MB)
    assert str(refused.value) == (
        f"PHANTOSCOPE_API_WORKERS 4: each API process takes about {API_MB} MB and an operator "
        f"process {OPERATOR_MB} MB; this machine has {OPERATOR_MB + 2 * API_MB:,} MB "
        "available, so at most 2 fit")


def test_onnx_runtime_threads_share_out_the_cores():
    assert threads_per_process(1, 16) is None  # one process: one thread per core
    assert [threads_per_process(n, 16) for n in (2, 8, 16, 32)] == [8, 2, 1, 1]
    assert threads_per_process(2, 2) == 1


@pytest.mark.parametrize(("args", "env", "message"), [
    (["--workers", "0"], {}, "--workers 0: give at least 1 operator process"),
    (["--workers", "-3"], {}, "--workers -3: give at least 1 operator process"),
    (["--workers", "many"], {}, "--workers 'many' is not a whole number"),
    ([], {"PHANTOSCOPE_WORKERS": "x2"}, "PHANTOSCOPE_WORKERS 'x2' is not a whole number"),
    (["--api-workers", "0"], {}, "--api-workers 0: give at least 1 API process"),
    (["--api-workers", "-2"], {}, "--api-workers -2: give at least 1 API process"),
    ([], {"PHANTOSCOPE_API_WORKERS": "lots"},
     "PHANTOSCOPE_API_WORKERS 'lots' is not a whole number"),
])
def test_up_refuses_a_bad_count_before_starting_anything(tmp_path, args, env, message):
    home = tmp_path / "home"
    port = free_port()
    result = run_cli("up", "--port", str(port), *args,
                     env={"PHANTOSCOPE_HOME": str(home), **env})
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert not home.exists()  # nothing started: no data folder, no log


def test_up_refuses_an_import_root_that_is_no_folder_before_starting_anything(tmp_path):
    home, file, comma = tmp_path / "home", tmp_path / "photo.jpg", tmp_path / "a,b"
    file.write_bytes(b"not a folder")
    comma.mkdir()
    for root, message in ((tmp_path / "gone", f"--import-root {tmp_path / 'gone'}: does not "
                                              "exist; give a folder the server may read"),
                          (file, f"--import-root {file}: is not a folder"),
                          (comma, f"--import-root {comma}: its path '{comma}' holds a comma")):
        result = run_cli("up", "--port", str(free_port()), "--import-root", str(tmp_path),
                         "--import-root", str(root), env={"PHANTOSCOPE_HOME": str(home)})
        assert result.returncode == 2, result.stdout + result.stderr
        assert message in result.stderr
        assert not home.exists()


def test_up_refuses_more_workers_than_the_memory_holds(tmp_path):
    assert available_mb() is not None  # Linux: /proc/meminfo
    # More than the whole memory holds: refused however much other processes free meanwhile.
    total = _meminfo_mb("MemTotal")
    too_many = (total - API_MB) // OPERATOR_MB + 1
    if too_many <= 64:
        expected = f"--workers {too_many}: each operator process takes about {OPERATOR_MB} MB"
    else:  # a machine with more memory than 64 operators need: the replica limit refuses
        too_many, expected = 65, "--workers 65: at most 64 operator processes"
    result = run_cli("up", "--workers", str(too_many),
                     env={"PHANTOSCOPE_HOME": str(tmp_path / "home")})
    assert result.returncode == 2
    assert expected in result.stderr
    assert not (tmp_path / "home").exists()


def _meminfo_mb(field: str) -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        name, _, value = line.partition(":")
        if name == field:
            return int(value.split()[0]) // 1024
    raise AssertionError(f"no {field} in /proc/meminfo")


def test_operator_serve_refuses_bad_processes_and_taken_ports():
    result = run_cli("operator", "serve", "efficientnet-lite0-encoder", "--processes", "0")
    assert result.returncode == 2
    assert "--processes 0: give at least 1 operator process" in result.stderr
    with socket.socket() as taken:  # the second of the two ports is taken
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        second = taken.getsockname()[1]
        result = run_cli("operator", "serve", "efficientnet-lite0-encoder", "--processes", "2",
                         "--port", str(second - 1))
    assert result.returncode == 2
    assert (f"port {second} on 127.0.0.1 is taken or out of range: 2 processes need the ports "
            f"{second - 1}-{second} free") in result.stderr
