"""Duplicates over HTTP, on a real API server with the default encoder: uploads say which
stored entity they copy (or are refused as copies), groups of copies and of similar shots are
listed with the copy to keep, resolving deletes all or nothing and is remembered across
uploads and restarts, and bad requests change nothing."""

from __future__ import annotations

import io
import sqlite3
from collections.abc import Iterator

import pytest

from api_server import ApiServer
from phantoscope.duplicate_set import COPY_EDITS, NEAR_SHOTS
from photos import b64, photo

COPIES = "/v1/application/album/duplicates"


def image(name: str, edit: str = "original") -> str:
    """A package photo as base64: its PNG original, or a copy or near-shot as the labelled
    duplicate set makes them."""
    picture = photo(name)
    if edit == "original":
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG")
        return b64(buffer.getvalue())
    return b64({**COPY_EDITS, **NEAR_SHOTS}[edit](picture).data)


class Album:
    """The server, and what was uploaded: entity ids by (photo, edit)."""

    def __init__(self, server: ApiServer) -> None:
        self.server = server
        self.ids: dict[tuple[str, str], int] = {}

    @property
    def api(self):
        return self.server.client

    def upload(self, photo: str, edit: str = "original", **params: str) -> dict:
        answer = self.api.post("/v1/application/album/upload", params=params, json={
            "fields": {"image": {"data": image(photo, edit)}}, "name": f"{photo}/{edit}"})
        assert answer.status_code == 200, answer.text
        [body] = answer.json()
        self.ids[(photo, edit)] = body["_id"]
        return body

    def groups(self, kind: str = "copies") -> list[dict]:
        answer = self.api.get(COPIES, params={"kind": kind, "num": 100})
        assert answer.status_code == 200, answer.text
        return answer.json()["groups"]

    def members(self, kind: str = "copies") -> list[set[int]]:
        return [{each["_id"] for each in group["entities"]} for group in self.groups(kind)]

    def of(self, *keys: tuple[str, str]) -> set[int]:
        return {self.ids[key] for key in keys}

    def descriptor_rows(self) -> int:
        with sqlite3.connect(self.server.home / "meta.db") as db:
            return db.execute("SELECT count(*) FROM entity_descriptors").fetchone()[0]


@pytest.fixture(scope="module")
def album(encoder_endpoint, tmp_path_factory) -> Iterator[Album]:
    server = ApiServer(tmp_path_factory.mktemp("duplicates") / "home", {}).start()
    try:
        api = server.client
        assert api.post("/v1/operator/regist", json={
            "name": "enc", "endpoint": encoder_endpoint}).status_code == 200
        assert api.post("/v1/pipeline/pipe", json={"encoder": "enc"}).status_code == 200
        assert api.post("/v1/application/album", json={
            "fields": {"image": {"type": "object", "pipeline": "pipe"}}}).status_code == 200
        yield Album(server)
    finally:
        server.stop()


def test_uploads_say_which_stored_entity_they_copy(album):
    for name in ("coffee", "clock", "horse"):
        assert album.upload(name)["duplicate_of"] is None
    for edit in ("jpeg-50", "resized-50", "mirrored", "cropped-2", "turned-90"):
        stored = {entity for (name, _), entity in album.ids.items() if name == "coffee"}
        found = album.upload("coffee", edit)["duplicate_of"]
        # the closest copy stored: the original or an earlier copy of it
        assert found is not None and found["_id"] in stored, edit
        assert 0.5 < found["score"] <= 1.0
    # a second framing of the scene is no copy, nor is another photo
    assert album.upload("coffee", "near-window-75-centre")["duplicate_of"] is None
    assert album.upload("rocket")["duplicate_of"] is None
    assert album.descriptor_rows() == len(album.ids)


def test_a_batch_finds_copies_of_stored_entities_and_of_its_own_images(album):
    answer = album.api.post("/v1/application/album/upload/batch", json={"images": [
        {"data": image("clock", "tilted-3"), "name": "clock/tilted-3"},
        {"data": image("moon"), "name": "moon/original"},
        {"data": image("moon", "jpeg-75"), "name": "moon/jpeg-75"},
    ]})
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    for key, result in zip([("clock", "tilted-3"), ("moon", "original"), ("moon", "jpeg-75")],
                           results, strict=True):
        album.ids[key] = result["entity"]["_id"]
    assert results[0]["duplicate_of"]["_id"] == album.ids[("clock", "original")]
    assert results[1]["duplicate_of"] is None
    assert results[2]["duplicate_of"]["_id"] == album.ids[("moon", "original")]


def test_reject_duplicates_refuses_a_copy_naming_the_stored_entity(album):
    before = album.server.counts()
    rows = album.descriptor_rows()
    answer = album.api.post("/v1/application/album/upload",
                            params={"reject_duplicates": "true"},
                            json={"fields": {"image": {"data": image("rocket", "jpeg-30")}}})
    assert answer.status_code == 409, answer.text
    body = answer.json()
    assert body["code"] == "DUPLICATE"
    assert str(album.ids[("rocket", "original")]) in body["message"]
    assert album.server.counts() == before and album.descriptor_rows() == rows
    # in a batch, only the copy is refused
    answer = album.api.post("/v1/application/album/upload/batch",
                            params={"reject_duplicates": "true"}, json={"images": [
                                {"data": image("rocket", "brighter")},
                                {"data": image("grass")}]})
    results = answer.json()["results"]
    assert results[0]["error"]["code"] == "DUPLICATE" and "entity" not in results[0]
    assert results[1]["duplicate_of"] is None
    album.ids[("grass", "original")] = results[1]["entity"]["_id"]
    # a picture that is no copy goes in
    assert album.upload("chelsea", reject_duplicates="true")["duplicate_of"] is None


def test_groups_of_copies_and_of_similar_shots_with_the_copy_to_keep(album):
    coffee = album.of(*[("coffee", edit) for edit in (
        "original", "jpeg-50", "resized-50", "mirrored", "cropped-2", "turned-90")])
    clock = album.of(("clock", "original"), ("clock", "tilted-3"))
    moon = album.of(("moon", "original"), ("moon", "jpeg-75"))
    groups = album.groups()
    assert sorted(map(sorted, album.members())) == sorted(map(sorted, [coffee, clock, moon]))
    [first] = [group for group in groups if album.ids[("coffee", "original")] in
               {each["_id"] for each in group["entities"]}]
    assert first["kind"] == "copies" and first["id"].startswith("copies-")
    assert first["keep"] == album.ids[("coffee", "original")]  # as large, lossless
    assert "PNG" in first["reason"] and "less compressed" in first["reason"]
    entity = {each["_id"]: each for each in first["entities"]}
    kept = entity[first["keep"]]
    assert (kept["width"], kept["height"], kept["format"], kept["score"]) == \
        (600, 400, "PNG", 1.0)
    assert kept["name"] == "coffee/original" and kept["bytes"] > 0
    assert kept["_image_url"].endswith(f"/entity/{first['keep']}/image")
    small = entity[album.ids[("coffee", "resized-50")]]
    assert (small["width"], small["height"], small["format"]) == (300, 200, "JPEG")
    assert 0.5 < small["score"] < 1.0 and small["quality"] == 90
    # similar shots: the near-shot joins the coffee copies
    similar = album.members("similar")
    assert coffee | album.of(("coffee", "near-window-75-centre")) in similar
    # paging: one group a page, the total said
    answer = album.api.get(COPIES, params={"num": 1, "page": 1}).json()
    assert (answer["total"], answer["page"], answer["num"], len(answer["groups"])) == \
        (3, 1, 1, 1)
    assert answer["groups"][0]["id"] == groups[1]["id"]
    # the same groups, the same ids, when listed again
    assert album.groups() == groups


@pytest.mark.parametrize(("path", "body", "status", "code"), [
    (f"{COPIES}/copies-0000000000000000/resolve", {"dismiss": True}, 404, "GROUP_NOT_FOUND"),
    (f"{COPIES}/nonsense/resolve", {"dismiss": True}, 404, "GROUP_NOT_FOUND"),
    ("/v1/application/nope/duplicates/copies-0/resolve", {"dismiss": True}, 404,
     "APPLICATION_NOT_FOUND"),
    ("{group}", {"keep": "all"}, 400, "INVALID_RESOLUTION"),
    ("{group}", {"dismiss": False}, 400, "INVALID_RESOLUTION"),
    ("{group}", {"dismiss": True, "delete": [1]}, 400, "INVALID_RESOLUTION"),
    ("{group}", {"delete": ["{extra}"], "keep": ["{extra}"]}, 400, "INVALID_RESOLUTION"),
    ("{group}", {"keep": [123]}, 400, "NOT_IN_GROUP"),
    ("{group}", {"keep": ["{keep}"], "delete": [123]}, 400, "NOT_IN_GROUP"),
    ("{group}", {"delete": "{all}"}, 400, "DELETE_ALL"),
    ("{group}", [1, 2], 400, "INVALID_RESOLUTION"),
    ("{group}", "not json", 400, "MALFORMED_JSON"),
], ids=["unknown-group", "unknown-kind", "unknown-app", "keep-not-a-list", "dismiss-false",
        "dismiss-and-delete", "kept-and-deleted", "keep-stranger", "delete-stranger",
        "delete-all", "body-not-object", "malformed"])
def test_bad_resolutions_are_refused_and_change_nothing(album, path, body, status, code):
    [group] = [each for each in album.groups()
               if album.ids[("clock", "original")] in {e["_id"] for e in each["entities"]}]
    members = [each["_id"] for each in group["entities"]]
    extra = next(each for each in members if each != group["keep"])
    values = {"{keep}": group["keep"], "{extra}": extra, "{all}": members}

    def filled(value):
        if isinstance(value, list):
            return [values.get(each, each) for each in value]
        return values.get(value, value) if isinstance(value, str) else value

    if isinstance(body, dict):
        body = {key: filled(value) for key, value in body.items()}
    url = f"{COPIES}/{group['id']}/resolve" if path == "{group}" else path
    before, groups = album.server.counts(), album.groups()
    if body == "not json":
        answer = album.api.post(url, content=b"{nope", headers={
            "Content-Type": "application/json"})
    else:
        answer = album.api.post(url, json=body)
    assert answer.status_code == status, answer.text
    assert answer.json()["code"] == code
    assert answer.json()["message"]
    assert album.server.counts() == before and album.groups() == groups


def test_kind_and_page_are_checked(album):
    for params, code in (({"kind": "twins"}, "INVALID_KIND"), ({"num": 0}, "INVALID_PAGE"),
                         ({"num": 101}, "INVALID_PAGE"), ({"page": -1}, "INVALID_PAGE")):
        answer = album.api.get(COPIES, params=params)
        assert (answer.status_code, answer.json()["code"]) == (400, code), params
    answer = album.api.get("/v1/application/nope/duplicates")
    assert (answer.status_code, answer.json()["code"]) == (404, "APPLICATION_NOT_FOUND")


def test_a_group_that_changed_since_it_was_listed_is_not_resolved(album):
    [group] = [each for each in album.groups()
               if album.ids[("clock", "original")] in {e["_id"] for e in each["entities"]}]
    album.upload("clock", "jpeg-95")  # joins the clock's group
    before = album.server.counts()
    answer = album.api.post(f"{COPIES}/{group['id']}/resolve",
                            json={"keep": [group["keep"]], "delete": [
                                each["_id"] for each in group["entities"]
                                if each["_id"] != group["keep"]]})
    assert answer.status_code == 409, answer.text
    assert answer.json()["code"] == "GROUP_CHANGED"
    assert album.server.counts() == before
    grown = album.of(("clock", "original"), ("clock", "tilted-3"), ("clock", "jpeg-95"))
    assert grown in album.members()


def test_resolving_deletes_the_extras_and_the_group_stays_settled(album):
    [group] = [each for each in album.groups()
               if album.ids[("coffee", "original")] in {e["_id"] for e in each["entities"]}]
    deleted = album.of(("coffee", "jpeg-50"), ("coffee", "resized-50"))
    before = album.server.counts()
    answer = album.api.post(f"{COPIES}/{group['id']}/resolve", json={
        "keep": [group["keep"]], "delete": sorted(deleted)})
    assert answer.status_code == 200, answer.text
    done = answer.json()
    assert (done["group"], done["action"], sorted(done["deleted"])) == \
        (group["id"], "resolved", sorted(deleted))
    assert set(done["kept"]) == {each["_id"] for each in group["entities"]} - deleted
    after = album.server.counts()
    assert (after["entities"], after["vectors"], after["objects"]) == (
        before["entities"] - 2, before["vectors"] - 2, before["objects"] - 2)
    for entity in deleted:
        assert album.api.get(f"/v1/application/album/entity/{entity}").status_code == 404
    assert all(album.ids[("coffee", "original")] not in members
               for members in album.members())
    # resolving it again: it is no longer there
    again = album.api.post(f"{COPIES}/{group['id']}/resolve", json={"dismiss": True})
    assert (again.status_code, again.json()["code"]) == (409, "GROUP_CHANGED")

    # a new copy of the kept picture makes a new group with the kept ones
    album.upload("coffee", "saturation")
    kept = set(done["kept"]) | album.of(("coffee", "saturation"))
    assert kept in album.members()


def test_dismissed_and_resolved_groups_stay_settled_after_a_restart(album):
    [moon] = [each for each in album.groups()
              if album.ids[("moon", "original")] in {e["_id"] for e in each["entities"]}]
    answer = album.api.post(f"{COPIES}/{moon['id']}/resolve", json={"dismiss": True})
    assert answer.status_code == 200 and answer.json()["action"] == "dismissed"
    assert answer.json()["deleted"] == []
    groups, similar = album.groups(), album.groups("similar")
    assert album.ids[("moon", "original")] not in {
        each["_id"] for group in groups for each in group["entities"]}

    album.server.stop()
    album.server.start()
    assert album.groups() == groups
    assert album.groups("similar") == similar
    # a deleted entity leaves its group (whose id changes with it)
    [clock] = [each for each in groups
               if album.ids[("clock", "original")] in {e["_id"] for e in each["entities"]}]
    gone = album.ids[("clock", "jpeg-95")]
    assert album.api.delete(f"/v1/application/album/entity/{gone}").status_code == 200
    [now] = [each for each in album.groups()
             if album.ids[("clock", "original")] in {e["_id"] for e in each["entities"]}]
    assert now["id"] != clock["id"]
    assert {each["_id"] for each in now["entities"]} == \
        album.of(("clock", "original"), ("clock", "tilted-3"))
