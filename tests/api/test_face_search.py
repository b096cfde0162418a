"""A processor pipeline: face detector, then face encoder; search a face, find the photo."""

from __future__ import annotations

from PIL import Image, ImageOps

from photos import b64, jpeg, photo


def two_faces() -> Image.Image:
    """The astronaut beside her mirror image: a photo with two faces."""
    astronaut = photo("astronaut")
    canvas = Image.new("RGB", (astronaut.width * 2, astronaut.height))
    canvas.paste(astronaut, (0, 0))
    canvas.paste(ImageOps.mirror(astronaut), (astronaut.width, 0))
    return canvas


def test_face_pipeline_finds_the_photo_and_the_box(start_server, face_endpoints):
    detector, encoder = face_endpoints
    server = start_server()
    api = server.client
    for name, endpoint in (("faces", detector), ("face-vectors", encoder)):
        assert api.post("/v1/operator/regist",
                        json={"name": name, "endpoint": endpoint}).status_code == 200
    created = api.post("/v1/pipeline/people", json={
        "processors": "faces", "encoder": "face-vectors", "description": "faces"})
    assert created.status_code == 200, created.text
    assert created.json()["_processors"] == ["faces"] and created.json()["_dimension"] == 128
    assert api.post("/v1/application/album", json={
        "fields": {"photo": {"type": "object", "pipeline": "people"}}}).status_code == 200

    # What each step produces, without storing anything.
    trial = api.post("/v1/pipeline/people/test", json={"data": b64(jpeg(photo("astronaut")))})
    assert trial.status_code == 200, trial.text
    steps = trial.json()["steps"]
    assert [step["operator"] for step in steps] == ["faces", "face-vectors"]
    assert len(steps[0]["crops"]) == 1 and len(steps[1]["vectors"]) == 1
    assert server.counts()["entities"] == 0

    # One vector per face, each with its box in the uploaded photo.
    single = api.post("/v1/application/album/upload",
                      json={"fields": {"photo": {"data": b64(jpeg(photo("astronaut")))}}})
    assert single.status_code == 200, single.text
    (entity,) = single.json()
    box = entity["box"]
    assert 0 <= box["left"] < box["right"] <= 512 and 0 <= box["top"] < box["bottom"] <= 256
    pair = api.post("/v1/application/album/upload",
                    json={"fields": {"photo": {"data": b64(jpeg(two_faces()))}}})
    assert pair.status_code == 200, pair.text
    assert len(pair.json()) == 2 and len({e["_id"] for e in pair.json()}) == 1
    lefts = sorted(e["box"]["left"] for e in pair.json())
    assert lefts[0] < 512 <= lefts[1]

    # A photo without a face gives no vector: refused, nothing stored.
    before = server.counts()
    empty = api.post("/v1/application/album/upload",
                     json={"fields": {"photo": {"data": b64(jpeg(photo("coffee")))}}})
    assert empty.status_code == 400 and empty.json()["code"] == "NO_VECTOR"
    assert server.counts() == before
    assert before["entities"] == 2 and before["vectors"] == 3 and before["objects"] == 2

    # Search with her face alone (cropped, smaller): both photos, grouped, boxes given.
    face = photo("astronaut").crop((box["left"], box["top"], box["right"], box["bottom"]))
    face = face.resize((face.width * 3 // 4, face.height * 3 // 4))
    hits = api.post("/v1/application/album/search",
                    json={"fields": {"photo": {"data": b64(jpeg(face))}}, "topk": 10})
    assert hits.status_code == 200, hits.text
    hits = hits.json()
    assert len(hits) == 2  # two photos, though three faces matched
    by_id = {hit["_id"]: hit for hit in hits}
    assert str(entity["_id"]) in by_id
    assert len(by_id[str(pair.json()[0]["_id"])]["matches"]) == 2
    single_hit = by_id[str(entity["_id"])]
    assert single_hit["box"] == box and single_hit["score"] > 0.9
