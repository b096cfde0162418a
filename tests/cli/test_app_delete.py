"""`phantoscope app delete` on an application holding images: tells a CLI user `--force`
(not the API's `?force=true`), with the count pluralised right."""

from __future__ import annotations

from helpers import OperatorProcess, run_cli
from photos import jpeg, photo


def test_refused_delete_says_force_the_cli_way_with_the_right_plural(tmp_path, start_server):
    folder = tmp_path / "histogram-encoder"
    assert run_cli("operator", "new", str(folder)).returncode == 0
    server = start_server()
    api = server.client
    with OperatorProcess(str(folder)) as operator:
        assert api.post("/v1/operator/regist", json={
            "endpoint": operator.endpoint, "name": "hist"}).status_code == 200
        assert api.post("/v1/pipeline/hist", json={
            "input": "image", "processors": "", "encoder": "hist"}).status_code == 200
        assert api.post("/v1/application/photos", json={
            "fields": {"image": {"type": "object", "pipeline": "hist"}}}).status_code == 200

        def upload(name: str) -> None:
            answer = api.post("/v1/application/photos/upload",
                              files={"file": (f"{name}.jpg", jpeg(photo(name)))})
            assert answer.status_code == 200, answer.text

        def delete(*options: str):
            return run_cli("app", "delete", "photos", "--url", server.url, *options)

        upload("chelsea")
        one = delete()
        refused = api.delete("/v1/application/photos")
        upload("coffee")
        two = delete()
        forced = delete("--force")

    assert one.returncode == 1
    message = " ".join(one.stderr.split())  # rich may wrap a long line
    assert "holds 1 image:" in message and "delete it first" in message, message
    assert "phantoscope app delete photos --force" in message, message
    assert "?force=true" not in message and "entities" not in message
    # The API keeps its HTTP wording and code, pluralised right.
    assert refused.status_code == 409 and refused.json()["code"] == "APPLICATION_NOT_EMPTY"
    assert "holds 1 entity: delete it first" in refused.json()["message"]
    assert two.returncode == 1 and "holds 2 images: delete them" in " ".join(two.stderr.split())
    assert forced.returncode == 0, forced.stderr
    assert api.get("/v1/application/photos").status_code == 404
