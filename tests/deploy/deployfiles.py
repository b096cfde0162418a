"""Reading the deployment files under deploy/: the compose file, the Kubernetes manifests and
the Dockerfiles (a small parser: stages, instructions, ENV, .dockerignore)."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import typer.main
import yaml
from pydantic_settings import BaseSettings

from phantoscope.cli.main import app

T = TypeVar("T", bound=BaseSettings)

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
COMPOSE_FILE = DEPLOY / "docker-compose.yml"
KUBERNETES = DEPLOY / "kubernetes"
DOCKERFILES = sorted((DEPLOY / "docker").glob("*.Dockerfile"))
OPERATOR_DOCKERFILES = [path for path in DOCKERFILES if path.name.startswith("operator")]
API_DOCKERFILE = DEPLOY / "docker" / "api.Dockerfile"

# `${NAME}` or `${NAME:-default}` in the compose file.
INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")
# `$(NAME)` or the escape `$$` in a Kubernetes container's env values and args.
K8S_REFERENCE = re.compile(r"\$\$|\$\((?P<name>[A-Za-z_][A-Za-z0-9_]*)\)")


# --- compose ------------------------------------------------------------------------------

def load_compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def interpolate(value: str) -> str:
    """``value`` as compose sees it with nothing set in the environment: defaults applied."""
    return INTERPOLATION.sub(lambda match: match["default"] or "", value)


def service_environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's `environment` (mapping or list form), interpolated."""
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    return {name: interpolate(str(value)) for name, value in environment.items()}


def operator_services(services: dict[str, Any]) -> list[str]:
    """The services built from an operator Dockerfile, in the file's order."""
    return [name for name, service in services.items()
            if str(service.get("build", {}).get("dockerfile", "")).startswith(
                "deploy/docker/operator")]


def settings_from(monkeypatch: Any, settings: type[T], environment: dict[str, str]) -> T:
    """``settings`` read from exactly ``environment``: every Phantoscope variable of this
    process's own environment is removed first."""
    for name in list(os.environ):
        if name.startswith("PHANTOSCOPE_") or name == "OP_ENDPOINT":
            monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return settings()


# --- Kubernetes ---------------------------------------------------------------------------

def kustomization() -> dict[str, Any]:
    return yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())


def k8s_documents() -> list[tuple[Path, dict[str, Any]]]:
    """Every resource the kustomization lists, with the file it comes from."""
    documents = []
    for name in kustomization()["resources"]:
        path = KUBERNETES / name
        documents += [(path, doc) for doc in yaml.safe_load_all(path.read_text()) if doc]
    return documents


def k8s_object(kind: str, name: str) -> dict[str, Any]:
    found = [doc for _, doc in k8s_documents()
             if doc["kind"] == kind and doc["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} manifests"
    return found[0]


WORKLOADS = ("Deployment", "StatefulSet", "Job")


def k8s_containers() -> list[tuple[str, dict[str, Any]]]:
    """(workload name, container) for every container of every workload."""
    containers = []
    for _, doc in k8s_documents():
        if doc["kind"] in WORKLOADS:
            for container in doc["spec"]["template"]["spec"]["containers"]:
                containers.append((doc["metadata"]["name"], container))
    return containers


def pod_environment(container: dict[str, Any], name: str, namespace: str) -> dict[str, str]:
    """The environment the kubelet gives ``container`` in the pod ``name`` of ``namespace``:
    `value`s with `$(NAME)` expanded from the variables listed before them, and the downward
    API's pod name and namespace (`envFrom` is left out)."""
    fields = {"metadata.name": name, "metadata.namespace": namespace}
    env: dict[str, str] = {}
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = K8S_REFERENCE.sub(
                lambda match: "$" if match[0] == "$$" else env.get(match["name"], match[0]),
                item["value"],
            )
        else:
            env[item["name"]] = fields[item["valueFrom"]["fieldRef"]["fieldPath"]]
    return env


# --- Dockerfiles --------------------------------------------------------------------------

@dataclass
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY...
    arguments: str  # the rest of the logical line, continuations joined

    def flags(self) -> dict[str, str]:
        """The leading `--name=value` options (COPY --from=..., HEALTHCHECK --interval=...)."""
        found = {}
        for word in self.arguments.split():
            if not word.startswith("--"):
                break
            name, _, value = word[2:].partition("=")
            found[name] = value
        return found

    def body(self) -> str:
        """The arguments after the leading options."""
        words = self.arguments.split(" ")
        return " ".join(words[len(self.flags()):])

    def exec_form(self) -> list[str] | None:
        """The JSON array of CMD, ENTRYPOINT or COPY, or None for the shell form."""
        body = self.body()
        return json.loads(body) if body.startswith("[") else None


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [item for item in self.instructions if item.keyword == keyword]

    def last(self, keyword: str) -> Instruction | None:
        found = self.all(keyword)
        return found[-1] if found else None

    def env(self) -> dict[str, str]:
        """What the stage's ENV lines set (`$NAME` references left as they are)."""
        values: dict[str, str] = {}
        for item in self.all("ENV"):
            for word in shlex.split(item.arguments):
                name, sep, value = word.partition("=")
                assert sep, f"ENV {item.arguments!r}: use the NAME=value form"
                values[name] = value
        return values


@dataclass
class Dockerfile:
    path: Path
    args: dict[str, str]  # ARGs declared before the first FROM, with their defaults
    stages: list[Stage]

    @property
    def runtime(self) -> Stage:
        """The last stage: what the image runs."""
        return self.stages[-1]

    def stage(self, name: str) -> Stage:
        return next(stage for stage in self.stages if stage.name == name)


def _logical_lines(text: str) -> list[str]:
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    assert not pending, "the file ends in a line continuation"
    return lines


def parse_dockerfile(path: Path) -> Dockerfile:
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in _logical_lines(path.read_text()):
        keyword, _, arguments = line.partition(" ")
        item = Instruction(keyword.upper(), re.sub(r"\s+", " ", arguments).strip())
        if item.keyword == "FROM":
            words = item.arguments.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(words[0], name))
        elif not stages:
            assert item.keyword == "ARG", f"{path.name}: {item.keyword} before the first FROM"
            name, _, default = item.arguments.partition("=")
            args[name] = default
        else:
            stages[-1].instructions.append(item)
    return Dockerfile(path, args, stages)


def dockerignore_patterns() -> list[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _matches(pattern: str, path: str) -> bool:
    """Whether a .dockerignore pattern matches ``path`` or one of its parent folders
    (`*` stays within one path element, `**` spans any number)."""
    pattern_parts = pattern.strip("/").split("/")
    path_parts = path.strip("/").split("/")

    def match(pattern_at: int, path_at: int) -> bool:
        if pattern_at == len(pattern_parts):
            return True  # the pattern names this path or a parent of it
        if path_at == len(path_parts):
            return False
        if pattern_parts[pattern_at] == "**":
            return any(match(pattern_at + 1, at) for at in range(path_at, len(path_parts) + 1))
        return fnmatch.fnmatchcase(path_parts[path_at], pattern_parts[pattern_at]) and match(
            pattern_at + 1, path_at + 1
        )

    return match(0, 0)


def in_build_context(path: str) -> bool:
    """Whether .dockerignore lets ``path`` (relative to the repository root) into the build
    context: the last pattern that matches it decides."""
    included = True
    for pattern in dockerignore_patterns():
        negated = pattern.startswith("!")
        if _matches(pattern.lstrip("!"), path):
            included = negated
    return included


# --- the phantoscope command line ---------------------------------------------------------

def parse_cli(argv: list[str]) -> tuple[list[str], dict[str, Any]]:
    """Parse ``phantoscope ARGV...`` as the CLI would, without running it: the subcommand's
    path and its parameters. Raises if a subcommand or an option does not exist."""
    command = typer.main.get_command(app)
    path: list[str] = []
    args = list(argv)
    while hasattr(command, "commands"):
        assert args, f"phantoscope {' '.join(path)} needs a subcommand"
        name = args.pop(0)
        assert name in command.commands, f"phantoscope {' '.join(path)} has no command {name!r}"
        command = command.commands[name]
        path.append(name)
    context = command.make_context(" ".join(["phantoscope", *path]), args)
    return path, context.params


def shell_words(command: str, env: dict[str, str]) -> list[str]:
    """The words /bin/sh makes of ``command`` (expansions and quotes applied) with ``env``,
    its first word replaced by a function that prints its arguments instead of running."""
    program = shlex.split(command)[0]
    script = f'{program}() {{ printf "%s\\0" {program} "$@"; }}\n{command}'
    shown = subprocess.run(
        ["sh", "-c", script], env=env, capture_output=True, text=True, check=True
    ).stdout
    return shown.split("\0")[:-1]
