"""Stopping and starting the server keeps everything, searchable."""

from __future__ import annotations

from photos import b64, edited_copy, jpeg, photo

NAMES = ("coffee", "rocket", "clock", "horse", "moon")


def test_restart_keeps_everything(start_server, encoder_endpoint):
    server = start_server()
    api = server.client
    assert api.post("/v1/operator/regist",
                    json={"name": "enc", "endpoint": encoder_endpoint}).status_code == 200
    assert api.post("/v1/pipeline/pipe", json={"encoder": "enc"}).status_code == 200
    assert api.post("/v1/application/app", json={
        "fields": {"image": {"type": "object", "pipeline": "pipe"}}}).status_code == 200
    ids = {}
    for name in NAMES:
        answer = api.post("/v1/application/app/upload",
                          json={"fields": {"image": {"data": b64(jpeg(photo(name)))}}})
        ids[name] = answer.json()[0]["_id"]
    before = server.counts()
    listed = api.get("/v1/application/app/entity", params={"num": 10}).json()

    server.stop()
    server.start()

    assert server.counts() == before
    assert api.get("/v1/operator/enc").json()["_endpoint"] == encoder_endpoint
    assert api.get("/v1/pipeline/pipe").json()["_encoder"] == "enc"
    assert api.get("/v1/application/app/entity", params={"num": 10}).json() == listed
    hits = api.post("/v1/application/app/search", json={
        "fields": {"image": {"data": b64(edited_copy(photo("clock")))}}, "topk": 3}).json()
    assert hits[0]["_id"] == str(ids["clock"])
    image = api.get(f"/v1/application/app/entity/{ids['horse']}/image")
    assert image.status_code == 200 and image.content == jpeg(photo("horse"))
