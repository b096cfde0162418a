"""The README's tutorial commands (register, pipeline, application, upload, search), run
exactly as written in bash against a real API server and operator, with photos over 200 KB
(the original's `-d "$(base64 ...)"` fails on those with "Argument list too long")."""

from __future__ import annotations

import json
import re
import subprocess

from helpers import REPO, OperatorProcess, free_port, run_cli
from photos import jpeg, photo

README_API = "127.0.0.1:5000"
README_OPERATOR = "127.0.0.1:50002"


def tutorial_commands() -> list[str]:
    """The shell commands of the code block in the tutorial's step 5, one string each."""
    text = (REPO / "README.md").read_text()
    step = text[text.index("5. **Register**"):]
    block = []
    for line in step.splitlines()[1:]:
        if line.startswith("       "):
            block.append(line[7:])
        elif block and not line.strip():
            break
    commands, current = [], ""
    for line in block:
        current += line + "\n"
        if not line.rstrip().endswith(("\\", "|")):
            commands.append(current)
            current = ""
    assert len(commands) == 5, commands
    return commands


def big_photo(path, name: str) -> None:
    image = photo(name)
    image = image.resize((image.width * 3, image.height * 3))
    path.write_bytes(jpeg(image, quality=95))
    assert path.stat().st_size > 200_000, path.stat().st_size


def test_readme_upload_and_search_commands_work_on_big_photos(tmp_path, start_server):
    commands = tutorial_commands()
    assert "upload" in commands[3] and "search" in commands[4]
    big_photo(tmp_path / "cat.jpg", "chelsea")
    big_photo(tmp_path / "query.jpg", "chelsea")  # the same photo: it must come back first
    operator_folder = tmp_path / "resnet50-encoder"
    assert run_cli("operator", "new", str(operator_folder)).returncode == 0
    server = start_server()
    api = server.url.removeprefix("http://")
    endpoint = f"127.0.0.1:{free_port()}"
    with OperatorProcess(str(operator_folder), endpoint=endpoint):
        answers = []
        for command in commands:
            command = command.replace(README_OPERATOR, endpoint).replace(README_API, api)
            result = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", command],
                                    cwd=tmp_path, capture_output=True, text=True, timeout=120)
            assert result.returncode == 0, command + result.stderr
            answers.append(json.loads(result.stdout))
    assert answers[0]["_name"] == "resnet50", answers[0]
    uploaded = answers[3]
    assert isinstance(uploaded, list) and len(uploaded) == 1, uploaded
    hits = answers[4]
    assert isinstance(hits, list) and hits, hits
    assert str(hits[0]["_id"]) == str(uploaded[0]["_id"]), (uploaded, hits)
    assert re.search(r"--data-binary @-", commands[3])
