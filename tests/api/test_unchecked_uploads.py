"""Uploads that skip the copy check (`check_duplicates=false`, as imports send them), on a real
API server with the default encoder: nothing is aligned and the answers carry no
`duplicate_of`, yet the duplicates listing ends with the same groups as for uploads checked
one by one, whether it is the first listing or a later one; a checked upload finds an
unchecked one as its original; once uploads pause, the server judges what they stored ahead
of the next listing; and asking to refuse copies without checking is refused."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from api_server import ApiServer, aligned_pairs, counter
from phantoscope.duplicate_set import COPY_EDITS
from photos import b64, photo

FIRST = [("coffee", "original"), ("clock", "original"), ("coffee", "jpeg-50"),
         ("horse", "original"), ("coffee", "mirrored")]
LATER = [("clock", "turned-90"), ("horse", "cropped-2"), ("rocket", "original")]
UNCHECKED = {"check_duplicates": "false"}


def data(name: str, edit: str) -> str:
    picture = photo(name)
    return b64(COPY_EDITS["jpeg-95" if edit == "original" else edit](picture).data)


class Server:
    """The server with two applications of the same pipeline: ``checked`` and ``unchecked``."""

    def __init__(self, server: ApiServer) -> None:
        self.server, self.api = server, server.client
        self.ids: dict[str, dict[str, int]] = {"checked": {}, "unchecked": {}}

    def upload(self, app: str, keys: list[tuple[str, str]], **params: str) -> list[dict]:
        """A batch of the photos: each result."""
        answer = self.api.post(f"/v1/application/{app}/upload/batch", params=params, json={
            "images": [{"data": data(*key), "name": "/".join(key)} for key in keys]})
        assert answer.status_code == 200, answer.text
        results = answer.json()["results"]
        for key, result in zip(keys, results, strict=True):
            self.ids[app]["/".join(key)] = result["entity"]["_id"]
        return results

    def groups(self, app: str, kind: str = "copies") -> list[list[str]]:
        """The groups listed, each as its members' names."""
        answer = self.api.get(f"/v1/application/{app}/duplicates",
                              params={"kind": kind, "num": 100})
        assert answer.status_code == 200, answer.text
        return sorted((sorted(each["name"] for each in group["entities"])
                       for group in answer.json()["groups"]), key=lambda names: names[0])


@pytest.fixture(scope="module")
def server(encoder_endpoint, tmp_path_factory) -> Iterator[Server]:
    running = ApiServer(tmp_path_factory.mktemp("unchecked") / "home", {}).start()
    try:
        api = running.client
        assert api.post("/v1/operator/regist", json={
            "name": "enc", "endpoint": encoder_endpoint}).status_code == 200
        assert api.post("/v1/pipeline/pipe", json={"encoder": "enc"}).status_code == 200
        for app in ("checked", "unchecked"):
            assert api.post(f"/v1/application/{app}", json={
                "fields": {"image": {"type": "object", "pipeline": "pipe"}}}).status_code == 200
        yield Server(running)
    finally:
        running.stop()


def test_unchecked_uploads_align_nothing_and_the_listing_finds_their_copies(server):
    before = aligned_pairs(server.api)
    results = server.upload("unchecked", FIRST, **UNCHECKED)
    assert all("duplicate_of" not in result and "entity" in result for result in results)
    assert aligned_pairs(server.api) == before
    checked = server.upload("checked", FIRST)
    assert checked[2]["duplicate_of"]["_id"] == server.ids["checked"]["coffee/original"]
    assert aligned_pairs(server.api) > before

    coffee = ["coffee/jpeg-50", "coffee/mirrored", "coffee/original"]
    assert server.groups("unchecked") == server.groups("checked") == [coffee]
    assert server.groups("unchecked", "similar") == server.groups("checked", "similar")


def test_a_later_listing_judges_what_was_stored_unchecked_since_the_last(server):
    answer = server.api.post("/v1/application/unchecked/upload", params=UNCHECKED, json={
        "fields": {"image": {"data": data("clock", "jpeg-50")}}, "name": "clock/jpeg-50"})
    assert answer.status_code == 200, answer.text
    [body] = answer.json()
    assert "duplicate_of" not in body
    server.upload("unchecked", LATER, **UNCHECKED)
    server.upload("checked", [("clock", "jpeg-50")])
    server.upload("checked", LATER)
    expected = [["clock/jpeg-50", "clock/original", "clock/turned-90"],
                ["coffee/jpeg-50", "coffee/mirrored", "coffee/original"],
                ["horse/cropped-2", "horse/original"]]
    assert server.groups("unchecked") == server.groups("checked") == expected
    assert server.groups("unchecked", "similar") == server.groups("checked", "similar")


def test_a_checked_upload_finds_an_unchecked_one_as_its_original(server):
    server.upload("unchecked", [("chelsea", "original")], **UNCHECKED)
    [result] = server.upload("unchecked", [("chelsea", "jpeg-30")])
    assert result["duplicate_of"]["_id"] == server.ids["unchecked"]["chelsea/original"]


def test_the_server_judges_what_was_stored_unchecked_once_uploads_pause(server):
    server.groups("unchecked")  # listed: the server keeps this application's listing ready
    judged = counter(server.api, "phantoscope_judged_in_background")
    server.upload("unchecked", [("rocket", "mirrored"), ("horse", "jpeg-30")], **UNCHECKED)
    deadline = time.monotonic() + 60
    while counter(server.api, "phantoscope_judged_in_background") < judged + 2:
        assert time.monotonic() < deadline, "nothing was judged in the background"
        time.sleep(0.5)
    assert ["rocket/mirrored", "rocket/original"] in server.groups("unchecked")
    assert ["horse/cropped-2", "horse/jpeg-30", "horse/original"] in server.groups("unchecked")


def test_refusing_copies_without_checking_is_refused_and_stores_nothing(server):
    before = server.server.counts()
    for path, body in (("upload", {"fields": {"image": {"data": data("moon", "original")}}}),
                       ("upload/batch", {"images": [{"data": data("moon", "original")}]})):
        answer = server.api.post(f"/v1/application/unchecked/{path}", json=body, params={
            "reject_duplicates": "true", **UNCHECKED})
        assert answer.status_code == 400, answer.text
        assert answer.json()["code"] == "INVALID_REQUEST"
        assert "check_duplicates" in answer.json()["message"]
    answer = server.api.post("/v1/application/unchecked/upload", params={
        "check_duplicates": "perhaps"}, json={"fields": {"image": {"data": data("moon",
                                                                                 "original")}}})
    assert (answer.status_code, answer.json()["code"]) == (422, "INVALID_REQUEST"), answer.text
    assert server.server.counts() == before
