"""The web page's Duplicates view, in a real browser against a real API server and encoder:
groups shown side by side with the copy to keep, settled by its buttons (the API then holds
what the page said), and a group that changed since it was listed refused in the page."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from api_server import ApiServer
from helpers import REPO, OperatorProcess
from phantoscope.duplicate_set import COPY_EDITS
from photos import b64, photo

WAIT_MS = 60_000
APP = "album"
ARTIFACTS = REPO / "test-artifacts" / "web"
TIMES = "\u00d7"  # as the page writes width x height
SCORE = re.compile(r"^(0\.\d{3}|1\.000)$")


class Album:
    """The server and the entity ids uploaded, by (photo, edit)."""

    def __init__(self, server: ApiServer) -> None:
        self.server = server
        self.ids: dict[tuple[str, str], str] = {}

    def upload(self, name: str, edit: str = "original") -> str:
        picture = photo(name)
        if edit == "original":
            buffer = io.BytesIO()
            picture.save(buffer, format="PNG")
            data = buffer.getvalue()
        else:
            data = COPY_EDITS[edit](picture).data
        answer = self.server.client.post(f"/v1/application/{APP}/upload", json={
            "fields": {"image": {"data": b64(data)}}, "name": f"{name}/{edit}"})
        assert answer.status_code == 200, answer.text
        entity = str(answer.json()[0]["_id"])
        self.ids[(name, edit)] = entity
        return entity

    def groups(self, kind: str = "copies") -> list[set[str]]:
        answer = self.server.client.get(f"/v1/application/{APP}/duplicates",
                                        params={"kind": kind, "num": 100})
        assert answer.status_code == 200, answer.text
        return [{str(each["_id"]) for each in group["entities"]}
                for group in answer.json()["groups"]]

    def exists(self, entity: str) -> bool:
        answer = self.server.client.get(f"/v1/application/{APP}/entity/{entity}")
        assert answer.status_code in (200, 404), answer.text
        return answer.status_code == 200


@pytest.fixture(scope="module")
def album(tmp_path_factory) -> Iterator[Album]:
    with OperatorProcess("efficientnet-lite0-encoder") as encoder:
        server = ApiServer(tmp_path_factory.mktemp("web-duplicates"), {}).start()
        try:
            api = server.client
            for path, body in [
                ("/v1/operator/regist", {"name": "enc", "endpoint": encoder.endpoint}),
                ("/v1/pipeline/pipe", {"encoder": "enc"}),
                (f"/v1/application/{APP}",
                 {"fields": {"image": {"type": "object", "pipeline": "pipe"}}}),
            ]:
                answer = api.post(path, json=body)
                assert answer.status_code == 200, answer.text
            yield Album(server)
        finally:
            server.stop()


@pytest.fixture
def page(browser, album):
    """The Duplicates view of the album; fails the test if the page threw an uncaught error."""
    context = browser.new_context(viewport={"width": 1360, "height": 900}, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{album.server.url}/#/applications")
    page.locator(f'tr[data-app="{APP}"]').get_by_role("button", name="Duplicates").click()
    expect(page.locator("#view-duplicates")).to_be_visible()
    yield page
    context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


def screenshot(page, name: str) -> None:
    """A full-page PNG under test-artifacts/web/, to look at."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True, animations="disabled")


def groups_in(page):
    return page.get_by_test_id("dup-group")


def test_keep_suggested_deletes_the_other_copy(album, page):
    original = album.upload("coffee")
    copy = album.upload("coffee", "resized-50")
    other = album.upload("horse")
    page.get_by_test_id("dup-reload").click()
    expect(groups_in(page)).to_have_count(1)
    group = groups_in(page).first
    members = group.get_by_test_id("dup-member")
    expect(members).to_have_count(2)
    keep = group.locator(f'[data-testid="dup-member"][data-id="{original}"]')
    # the original, at twice the resolution, is the one to keep, and the page says why
    expect(keep.get_by_test_id("dup-keep-mark")).to_have_text("keep")
    expect(group.get_by_test_id("dup-keep-mark")).to_have_count(1)
    expect(group.get_by_test_id("dup-reason")).to_contain_text("Suggested: keep coffee/original")
    width, height = photo("coffee").size
    expect(keep.get_by_test_id("dup-size")).to_contain_text(f"{width} {TIMES} {height} · ")
    expect(group.locator(f'[data-id="{copy}"]').get_by_test_id("dup-size")).to_contain_text(
        f"{width // 2} {TIMES} {height // 2} · ")
    expect(group.locator(f'[data-id="{copy}"]').get_by_test_id("dup-score")).to_have_text(SCORE)
    expect(page.get_by_test_id("dup-where")).to_have_text("Page 1 of 1 · 1 group")

    group.get_by_test_id("dup-keep-suggested").click()
    dialog = page.get_by_test_id("confirm-dialog")
    expect(dialog).to_contain_text("delete 1 other")
    screenshot(page, "duplicates-confirm")
    # cancelling changes nothing
    dialog.get_by_test_id("confirm-cancel").click()
    expect(dialog).to_have_count(0)
    assert album.exists(copy)
    group.get_by_test_id("dup-keep-suggested").click()
    page.get_by_test_id("confirm-dialog").get_by_test_id("confirm-ok").click()

    expect(groups_in(page)).to_have_count(0)
    expect(page.get_by_test_id("dup-list")).to_contain_text("No duplicates found")
    assert not album.exists(copy)
    assert album.exists(original) and album.exists(other)
    assert album.groups() == []



def test_a_changed_group_is_refused_in_the_page_then_settled_image_by_image(album, page):
    original = album.upload("clock")
    recompressed = album.upload("clock", "jpeg-50")
    page.get_by_test_id("dup-reload").click()
    expect(groups_in(page)).to_have_count(1)
    group = groups_in(page).first
    expect(group.get_by_test_id("dup-member")).to_have_count(2)
    # another copy joins the group after the page listed it
    resized = album.upload("clock", "resized-50")
    group.get_by_test_id("dup-dismiss").click()
    error = group.get_by_test_id("dup-group-error")
    expect(error).to_contain_text("This group changed since it was listed")
    expect(groups_in(page)).to_have_count(1)
    assert album.groups() == [{original, recompressed, resized}]

    error.get_by_role("button", name="Reload").click()
    expect(groups_in(page).first.get_by_test_id("dup-member")).to_have_count(3)
    group = groups_in(page).first
    expect(group.locator(f'[data-id="{original}"]')).to_have_attribute("data-choice", "keep")
    expect(group.get_by_test_id("dup-apply")).to_have_text("Apply (delete 2)")
    group.locator(f'[data-id="{resized}"]').get_by_test_id("dup-toggle").click()
    expect(group.locator(f'[data-id="{resized}"]')).to_have_attribute("data-choice", "keep")
    expect(group.get_by_test_id("dup-apply")).to_have_text("Apply (delete 1)")
    screenshot(page, "duplicates-group")
    group.get_by_test_id("dup-apply").click()
    page.get_by_test_id("confirm-dialog").get_by_test_id("confirm-ok").click()

    expect(groups_in(page)).to_have_count(0)
    assert not album.exists(recompressed)
    assert album.exists(original) and album.exists(resized)
    assert album.groups() == []


def test_not_duplicates_stays_gone_after_a_reload(album, page):
    first = album.upload("moon")
    second = album.upload("moon", "jpeg-50")
    page.get_by_test_id("dup-reload").click()
    expect(groups_in(page)).to_have_count(1)
    groups_in(page).first.get_by_test_id("dup-dismiss").click()
    expect(groups_in(page)).to_have_count(0)
    expect(page.get_by_test_id("dup-list")).to_contain_text("No duplicates found")

    page.reload()
    expect(page.locator("#view-duplicates")).to_be_visible()
    expect(page.get_by_test_id("dup-where")).to_have_text("Page 1 of 1 · 0 groups")
    expect(page.get_by_test_id("dup-list")).to_contain_text("No duplicates found")
    assert album.exists(first) and album.exists(second)
    assert album.groups() == []


def test_many_groups_are_paged_and_the_kinds_switch(album, page):
    names = ["astronaut", "chelsea", "rocket", "camera", "coins", "brick"]
    images = []
    for name in names:
        buffer = io.BytesIO()
        photo(name).save(buffer, format="PNG")
        images += [{"data": b64(buffer.getvalue()), "name": f"{name}/original"},
                   {"data": b64(COPY_EDITS["jpeg-50"](photo(name)).data),
                    "name": f"{name}/jpeg-50"}]
    answer = album.server.client.post(f"/v1/application/{APP}/upload/batch",
                                      json={"images": images})
    assert answer.status_code == 200 and answer.json()["failed"] == 0, answer.text
    assert len(album.groups()) == 6
    page.get_by_test_id("dup-per-page").select_option("5")
    where = page.get_by_test_id("dup-where")
    expect(where).to_have_text("Page 1 of 2 · 6 groups")
    expect(groups_in(page)).to_have_count(5)
    expect(page.get_by_test_id("dup-prev")).to_be_disabled()
    page.get_by_test_id("dup-next").click()
    expect(where).to_have_text("Page 2 of 2 · 6 groups")
    expect(groups_in(page)).to_have_count(1)
    expect(page.get_by_test_id("dup-next")).to_be_disabled()
    # the last page's last group settled: the page before is shown
    groups_in(page).first.get_by_test_id("dup-dismiss").click()
    expect(where).to_have_text("Page 1 of 1 · 5 groups")
    expect(groups_in(page)).to_have_count(5)
    assert len(album.groups()) == 5

    page.get_by_test_id("dup-kind-similar").click()
    expect(page.get_by_test_id("dup-kind-similar")).to_have_attribute("aria-pressed", "true")
    similar = len(album.groups("similar"))
    expect(where).to_have_text(f"Page 1 of {max(1, -(-similar // 5))} · {similar} group"
                               + ("" if similar == 1 else "s"))
    expect(groups_in(page)).to_have_count(min(similar, 5))
