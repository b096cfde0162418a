"""Every environment variable the deployment files set for Phantoscope's containers is one
that Phantoscope reads (a misspelt setting would otherwise be ignored without a word)."""

import pytest

from deployfiles import (
    API_DOCKERFILE,
    DOCKERFILES,
    K8S_REFERENCE,
    OPERATOR_DOCKERFILES,
    k8s_containers,
    k8s_object,
    load_compose,
    operator_services,
    parse_dockerfile,
    service_environment,
)
from envnames import operator_names, server_names

# Read by the shell and the Python interpreter, not by Phantoscope.
RUNTIME_VARIABLES = {"PATH", "PYTHONUNBUFFERED"}


def test_the_names_are_found_in_the_code():
    assert {"PHANTOSCOPE_VECTORS", "PHANTOSCOPE_META", "PHANTOSCOPE_OBJECTS",
            "PHANTOSCOPE_API_KEYS", "PHANTOSCOPE_URL"} <= server_names()
    assert {"OP_ENDPOINT", "PHANTOSCOPE_MODELS", "PHANTOSCOPE_MAX_BATCH_SIZE"} <= operator_names()
    assert "PHANTOSCOPE_MAX_BATCH_SIZE" not in server_names()


def _unknown(names, known: set[str]) -> list[str]:
    return sorted(set(names) - known - RUNTIME_VARIABLES)


def test_compose_sets_only_variables_phantoscope_reads():
    services = load_compose()["services"]
    for name in ("api", "init"):
        assert _unknown(service_environment(services[name]), server_names()) == []
    for name in operator_services(services):
        assert _unknown(service_environment(services[name]), operator_names()) == []


@pytest.mark.parametrize("path", DOCKERFILES, ids=[p.name for p in DOCKERFILES])
def test_dockerfile_env_is_read(path):
    known = server_names() if path == API_DOCKERFILE else operator_names()
    assert path == API_DOCKERFILE or path in OPERATOR_DOCKERFILES
    assert _unknown(parse_dockerfile(path).runtime.env(), known) == []


def test_kubernetes_sets_only_variables_phantoscope_reads():
    config = k8s_object("ConfigMap", "phantoscope-config")["data"]
    secret = k8s_object("Secret", "phantoscope-secrets")["stringData"]
    assert _unknown([*config, *secret], server_names()) == []
    for workload, container in k8s_containers():
        known = operator_names() if workload == "phantoscope-operator" else server_names()
        env = container.get("env", [])
        # Set only to build other values from (`$(POD_NAME)`), not read by Phantoscope.
        helpers = {match["name"] for item in env for match in
                   K8S_REFERENCE.finditer(item.get("value", "")) if match["name"]}
        assert _unknown([item["name"] for item in env if item["name"] not in helpers],
                        known) == []
