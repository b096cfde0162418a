"""deploy/docker-compose.yml: valid by the Compose Specification's schema, starts in order
on health, and its settings parse into the stores it runs beside."""

import json
from importlib import resources
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator
from sqlalchemy.engine import make_url

from deployfiles import (
    COMPOSE_FILE,
    INTERPOLATION,
    load_compose,
    operator_services,
    parse_cli,
    service_environment,
    settings_from,
)
from phantoscope.config import OperatorSettings, ServerSettings, endpoint_port
from phantoscope.engine.replicas import parse_endpoints
from phantoscope.storage.open_stores import open_object_store
from phantoscope.storage.s3_objects import S3ObjectStore


def compose_schema() -> dict:
    """The Compose Specification's JSON schema, as check-jsonschema vendors it."""
    vendored = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    return json.loads(vendored.read_text())


def test_validates_against_the_compose_specification():
    schema = compose_schema()
    assert schema["title"] == "Compose Specification"
    validator = Draft202012Validator(schema)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
              for e in validator.iter_errors(load_compose())]
    assert errors == []


def test_the_schema_catches_a_mistake():
    broken = load_compose()
    broken["services"]["api"]["depends_on"]["init"]["condition"] = "service_ready"
    assert not Draft202012Validator(compose_schema()).is_valid(broken)


def test_every_variable_has_a_default():
    used = list(INTERPOLATION.finditer(COMPOSE_FILE.read_text()))
    assert used
    assert [match[0] for match in used if match["default"] is None] == []


def test_the_whole_stack_is_there():
    services = load_compose()["services"]
    assert set(services) == {
        "api", "init", "operator-1", "operator-2", "postgres", "minio", "milvus", "milvus-etcd",
        "milvus-minio",
    }
    assert operator_services(services) == ["operator-1", "operator-2"]
    assert services["milvus"]["image"].startswith("milvusdb/milvus:")
    assert services["milvus"]["command"] == ["milvus", "run", "standalone"]


def test_services_start_in_order_on_health():
    services = load_compose()["services"]
    for name, service in services.items():
        for needed, rule in (service.get("depends_on") or {}).items():
            assert needed in services, f"{name} depends on unknown {needed}"
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in services[needed], f"{needed} has no healthcheck"
            else:
                assert rule["condition"] == "service_completed_successfully"
                assert services[needed].get("restart") == "no"
    api_needs = services["api"]["depends_on"]
    assert api_needs["init"]["condition"] == "service_completed_successfully"
    operators = set(operator_services(services))
    assert operators | {"milvus", "postgres", "minio"} <= set(services["init"]["depends_on"])
    assert operators <= set(api_needs)


def test_named_volumes_are_declared_and_used():
    compose = load_compose()
    used = {mount.split(":", 1)[0] for service in compose["services"].values()
            for mount in service.get("volumes", []) if not mount.startswith((".", "/"))}
    assert used == set(compose["volumes"])


def test_api_settings_name_the_stack_stores(monkeypatch):
    compose = load_compose()
    services = compose["services"]
    settings = settings_from(monkeypatch, ServerSettings, service_environment(services["api"]))
    assert settings.vectors_uri == "http://milvus:19530"
    assert settings.meta_url.startswith("postgresql+psycopg://")
    database = make_url(settings.meta_url)
    database.get_dialect()  # the driver is installed
    postgres = service_environment(services["postgres"])
    assert (database.host, database.port) == ("postgres", 5432)
    assert (database.username, database.password, database.database) == (
        postgres["POSTGRES_USER"], postgres["POSTGRES_PASSWORD"], postgres["POSTGRES_DB"])
    minio = service_environment(services["minio"])
    store = open_object_store(settings.objects_url)
    try:
        assert isinstance(store, S3ObjectStore)
        assert store.endpoint_url == "http://minio:9000"
    finally:
        store.close()
    url = urlsplit(settings.objects_url)
    assert (url.username, url.password) == (minio["MINIO_ROOT_USER"], minio["MINIO_ROOT_PASSWORD"])


def test_init_opens_the_same_stores_as_the_api():
    services = load_compose()["services"]
    assert service_environment(services["init"]) == service_environment(services["api"])
    assert services["init"]["build"] == services["api"]["build"]
    assert services["init"]["image"] == services["api"]["image"]


def test_init_registers_exactly_the_operator_services(monkeypatch):
    """Each operator service reports `<service>:<port>` and listens on that port; `init`
    registers the list of them, one entry per service, in order."""
    services = load_compose()["services"]
    endpoints = []
    for name in operator_services(services):
        operator = services[name]
        settings = settings_from(monkeypatch, OperatorSettings, service_environment(operator))
        port = endpoint_port(settings.endpoint)
        assert settings.endpoint == f"{name}:{port}"
        probe = operator["healthcheck"]["test"]
        assert probe[0] == "CMD"
        subcommand, params = parse_cli(probe[2:])
        assert subcommand == ["operator", "test"]
        assert params["endpoint"] == f"127.0.0.1:{port}"
        assert parse_cli(["operator", "serve", *operator["command"]])[1]["target"] == (
            "efficientnet-lite0-encoder")
        endpoints.append(settings.endpoint)
    assert len(endpoints) == 2
    assert services["init"]["command"][:2] == ["python", "/opt/phantoscope/register_defaults.py"]
    (listed,) = services["init"]["command"][2:]
    assert parse_endpoints(listed) == endpoints
