"""The health checks of the deployment files ask for routes the API serves, and those
answer 200 on a healthy server (embedded stores, no pipeline yet)."""

from fastapi.testclient import TestClient

from deployfiles import k8s_object, load_compose
from phantoscope.api.app import create_app
from phantoscope.config import ServerSettings


def _probe_paths() -> set[str]:
    api = k8s_object("Deployment", "phantoscope-api")["spec"]["template"]["spec"]["containers"][0]
    paths = {api[probe]["httpGet"]["path"] for probe in ("readinessProbe", "livenessProbe")}
    code = load_compose()["services"]["api"]["healthcheck"]["test"][-1]
    paths.add(code.split("http://127.0.0.1:5000", 1)[1].split("'", 1)[0])
    return paths


def test_probes_ask_for_healthz_and_readyz():
    assert _probe_paths() == {"/healthz", "/readyz"}


def test_every_probe_path_answers_200(tmp_path):
    app = create_app(ServerSettings(_env_file=None, home=tmp_path))
    with TestClient(app) as client:
        answers = {path: client.get(path).status_code for path in sorted(_probe_paths())}
    assert answers == dict.fromkeys(answers, 200)
