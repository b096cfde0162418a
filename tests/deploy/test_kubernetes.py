"""deploy/kubernetes: every manifest valid for Kubernetes (strict schema), the pieces wired
to each other by name and port, and the settings they carry parse into the intended stores."""

import pytest
from kubernetes_validate import utils as k8s
from sqlalchemy.engine import make_url

from deployfiles import (
    KUBERNETES,
    WORKLOADS,
    k8s_containers,
    k8s_documents,
    k8s_object,
    kustomization,
    parse_cli,
    pod_environment,
    settings_from,
)
from phantoscope.config import OperatorSettings, ServerSettings, endpoint_port
from phantoscope.engine.replicas import parse_endpoints
from phantoscope.storage.open_stores import open_object_store
from phantoscope.storage.s3_objects import S3ObjectStore

K8S_VERSION = "1.33.0"


def test_kustomization_lists_every_manifest():
    files = {path.name for path in KUBERNETES.glob("*.yaml")} - {"kustomization.yaml"}
    assert sorted(kustomization()["resources"]) == sorted(files)
    assert kustomization()["namespace"] == "phantoscope"


@pytest.mark.parametrize(
    "document", [doc for _, doc in k8s_documents()],
    ids=[f"{doc['kind']}/{doc['metadata']['name']}" for _, doc in k8s_documents()],
)
def test_manifest_is_valid_kubernetes(document):
    k8s.validate(document, K8S_VERSION, strict=True)
    assert document["metadata"].get("namespace", "phantoscope") == "phantoscope"


def test_strict_validation_rejects_an_unknown_field():
    deployment = k8s_object("Deployment", "phantoscope-api")
    broken = {**deployment, "spec": {**deployment["spec"], "replica": 2}}
    with pytest.raises(k8s.ValidationError):
        k8s.validate(broken, K8S_VERSION, strict=True)


def _container(workload: str) -> dict:
    return next(container for name, container in k8s_containers() if name == workload)


def _port(container: dict, name: str) -> int:
    return next(port["containerPort"] for port in container["ports"] if port["name"] == name)


def test_api_runs_two_replicas_probed_on_readyz_and_healthz():
    deployment = k8s_object("Deployment", "phantoscope-api")
    assert deployment["spec"]["replicas"] == 2
    api = _container("phantoscope-api")
    assert parse_cli(api["args"][1:])[0] == ["api"]
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
    config = k8s_object("ConfigMap", "phantoscope-config")["data"]
    assert _port(api, "http") == int(config["PHANTOSCOPE_PORT"])
    assert config["PHANTOSCOPE_HOST"] == "0.0.0.0"


def _operator_replicas() -> list[str]:
    """The endpoint of each pod of the operator StatefulSet, by its stable DNS name:
    ``<statefulset>-<i>.<headless service>.<namespace>.svc.cluster.local:<containerPort>``."""
    statefulset = k8s_object("StatefulSet", "phantoscope-operator")
    name, namespace = statefulset["metadata"]["name"], kustomization()["namespace"]
    service = k8s_object("Service", statefulset["spec"]["serviceName"])
    port = _port(_container(name), service["spec"]["ports"][0]["targetPort"])
    return [
        f"{name}-{i}.{service['metadata']['name']}.{namespace}.svc.cluster.local:{port}"
        for i in range(statefulset["spec"]["replicas"])
    ]


def test_operator_replicas_are_named_by_a_headless_service():
    statefulset = k8s_object("StatefulSet", "phantoscope-operator")
    assert statefulset["spec"]["replicas"] == 2
    assert statefulset["metadata"]["namespace"] == kustomization()["namespace"]
    service = k8s_object("Service", statefulset["spec"]["serviceName"])
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["publishNotReadyAddresses"] is True
    pod_labels = statefulset["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"] == statefulset["spec"]["selector"]["matchLabels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    (service_port,) = service["spec"]["ports"]
    assert service_port["port"] == _port(_container("phantoscope-operator"), "grpc")
    assert service_port["targetPort"] == "grpc"
    kinds = {doc["kind"] for _, doc in k8s_documents()
             if doc["metadata"]["name"] == "phantoscope-operator"}
    assert kinds == {"StatefulSet", "Service"}


def test_strict_validation_rejects_a_misspelt_headless_service_field():
    service = k8s_object("Service", "phantoscope-operator")
    spec = {**service["spec"]}
    spec["publishNotReadyAddress"] = spec.pop("publishNotReadyAddresses")
    with pytest.raises(k8s.ValidationError):
        k8s.validate({**service, "spec": spec}, K8S_VERSION, strict=True)


def test_the_init_job_registers_exactly_the_statefulset_replicas():
    init = _container("phantoscope-init")
    assert init["args"][:2] == ["python", "/opt/phantoscope/register_defaults.py"]
    (listed,) = init["args"][2:]
    replicas = _operator_replicas()
    assert len(replicas) == k8s_object("StatefulSet", "phantoscope-operator")["spec"]["replicas"]
    assert parse_endpoints(listed) == replicas


def test_each_operator_pod_reports_its_own_entry_and_listens_on_its_port(monkeypatch):
    statefulset = k8s_object("StatefulSet", "phantoscope-operator")
    operator = _container("phantoscope-operator")
    port = _port(operator, "grpc")
    for i, registered in enumerate(_operator_replicas()):
        pod = f"{statefulset['metadata']['name']}-{i}"
        env = pod_environment(operator, pod, kustomization()["namespace"])
        settings = settings_from(monkeypatch, OperatorSettings, env)
        assert settings.endpoint == registered
        assert endpoint_port(settings.endpoint) == port
    probe = operator["readinessProbe"]["exec"]["command"]
    subcommand, params = parse_cli(probe[1:])
    assert subcommand == ["operator", "test"] and params["endpoint"] == f"127.0.0.1:{port}"
    assert parse_cli(["operator", "serve", *operator["args"]])[0] == ["operator", "serve"]


def test_api_service_selects_the_api_pods():
    pods = k8s_object("Deployment", "phantoscope-api")["spec"]["template"]["metadata"]["labels"]
    service = k8s_object("Service", "phantoscope-api")
    assert service["spec"]["selector"].items() <= pods.items()
    assert service["spec"]["ports"][0]["targetPort"] == "http"


def test_workloads_read_settings_that_exist():
    names = {(doc["kind"], doc["metadata"]["name"]) for _, doc in k8s_documents()}
    for _, container in k8s_containers():
        for source in container.get("envFrom", []):
            if "configMapRef" in source:
                assert ("ConfigMap", source["configMapRef"]["name"]) in names
            else:
                assert ("Secret", source["secretRef"]["name"]) in names


def test_workloads_run_as_non_root():
    for _, doc in k8s_documents():
        if doc["kind"] in WORKLOADS:
            assert doc["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


def test_config_and_secret_name_milvus_postgresql_and_s3(monkeypatch):
    environment = {
        **k8s_object("ConfigMap", "phantoscope-config")["data"],
        **k8s_object("Secret", "phantoscope-secrets")["stringData"],
    }
    settings = settings_from(monkeypatch, ServerSettings, environment)
    assert settings.vectors_uri == "http://milvus.milvus.svc.cluster.local:19530"
    assert make_url(settings.meta_url).get_backend_name() == "postgresql"
    make_url(settings.meta_url).get_dialect()
    store = open_object_store(settings.objects_url)
    try:
        assert isinstance(store, S3ObjectStore)
        assert store.endpoint_url == "https://s3.eu-west-1.amazonaws.com:443"
        assert store.region == "eu-west-1"
    finally:
        store.close()
    assert settings.api_keys is not None
    assert {entry.split(":", 1)[0] for entry in settings.api_keys.split(",")} == {"admin", "read"}
