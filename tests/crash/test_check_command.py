"""`phantoscope check` run as the command, and the repair a starting server makes, over the
embedded stores of one home folder."""

from __future__ import annotations

import json
import time

from api_server import ApiServer
from backends import DEFAULT_BACKENDS
from helpers import run_cli


def test_check_reports_each_problem_and_repairs_them(backend_settings, open_stores_planter):
    env = {**backend_settings(DEFAULT_BACKENDS), "COLUMNS": "200"}  # no wrapped table cells
    with open_stores_planter(env) as planter:
        planter.upload(2)
        planter.upload(3, commit=False)
        planter.vector(planter.old_id(3600))
        broken = planter.upload(1)
        planter.stores.objects.delete(planter.bucket, broken.keys[0])

    found = run_cli("check", "--grace", "0", env=env)
    print(found.stdout)
    assert found.returncode == 1, found.stderr
    for line in ("uploads cut short", "vectors no entity row uses",
                 "entities whose stored image is missing", "phantoscope check --repair"):
        assert line in found.stdout

    report = json.loads(run_cli("check", "--json", "--examples", "1", env=env).stdout)
    counts = {problem["kind"]: problem["count"] for problem in report["problems"]}
    assert report["grace_s"] == 300 and not report["clean"]  # the setting's default grace
    assert counts == {"interrupted_uploads": 0, "vectors_without_rows": 1,
                      "images_without_rows": 0, "entities_missing_vectors": 0,
                      "entities_missing_images": 1}

    repaired = run_cli("check", "--repair", "--json", env={**env,
                                                           "PHANTOSCOPE_REPAIR_GRACE_S": "0"})
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    report = json.loads(repaired.stdout)
    assert report["repaired"] == {"uploads": 1, "vectors": 1, "objects": 0, "entities": 1}
    assert report["clean_after_repair"]  # it checked again after repairing


def test_a_starting_server_repairs_interrupted_uploads(backend_settings, open_stores_planter,
                                                         tmp_path):
    env = backend_settings(DEFAULT_BACKENDS)
    with open_stores_planter(env) as planter:
        kept = planter.upload(1)
        planter.upload(2, commit=False)
        planter.upload(1, commit=False)

    server = ApiServer(tmp_path / "home", {**env, "PHANTOSCOPE_REPAIR_GRACE_S": "0"}).start()
    try:
        counts = server.counts()
    finally:
        server.stop()
    assert "repaired 2 interrupted upload(s)" in server.log()
    # What is left is the committed upload, whole.
    assert (counts["entities"], counts["vectors"], counts["objects"]) == (1, 1, 1)
    with open_stores_planter(env) as planter:
        assert planter.image_keys() == set(kept.keys)
        assert planter.vector_ids() == set(kept.vector_ids)
        assert planter.stores.meta.pending_uploads() == []


def test_a_running_server_repairs_uploads_once_they_are_older_than_the_grace(
    backend_settings, open_stores_planter, tmp_path
):
    env = backend_settings(DEFAULT_BACKENDS)
    with open_stores_planter(env) as planter:
        planter.upload(2, commit=False)
    settings = {**env, "PHANTOSCOPE_REPAIR_GRACE_S": "20", "PHANTOSCOPE_REPAIR_INTERVAL_S": "1"}
    server = ApiServer(tmp_path / "home", settings).start()
    try:
        assert "repaired" not in server.log()  # too young at start-up
        deadline = time.monotonic() + 90
        while "repaired 1 interrupted upload(s)" not in server.log():
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.5)
        counts = server.counts()
    finally:
        server.stop()
    assert (counts["entities"], counts["vectors"], counts["objects"]) == (0, 0, 0)
