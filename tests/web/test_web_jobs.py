"""The web page's Jobs view, in a real browser against a real API server and encoder: an import
started from a server folder runs to the end with its progress shown, a refused folder says
why, a running job is cancelled, cancelling one that finished meanwhile shows the 409, a
watch (it never ends) shows what it did without a time left, and a finished reindex switches
its field from its row (a switch the server refuses says why)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import expect

from api_server import ApiServer
from helpers import REPO, OperatorProcess
from inprocess import MeanColourEncoder, serve_in_process
from photos import jpeg, photo

WAIT_MS = 60_000
ALBUM = "album"
STALLED = "stalled"  # its encoder is stopped: an import into it waits, running
MOVED = "moved"  # reindexed with `colour-pipe`, then switched to it
ARTIFACTS = REPO / "test-artifacts" / "web"


class Jobs:
    """The server, the folder it may import from, and the API's view of jobs."""

    def __init__(self, server: ApiServer, root: Path) -> None:
        self.server = server
        self.root = root

    def folder(self, name: str, photos: list[str]) -> Path:
        folder = self.root / name
        folder.mkdir()
        for each in photos:
            (folder / f"{each}.jpg").write_bytes(jpeg(photo(each)))
        return folder

    def listed(self) -> list[dict]:
        answer = self.server.client.get("/v1/jobs")
        assert answer.status_code == 200, answer.text
        return answer.json()

    def job(self, job_id: str) -> dict:
        answer = self.server.client.get(f"/v1/jobs/{job_id}")
        assert answer.status_code == 200, answer.text
        return answer.json()

    def count(self, app: str) -> int:
        answer = self.server.client.get(f"/v1/application/{app}/entity/count")
        assert answer.status_code == 200, answer.text
        return answer.json()["count"]


@pytest.fixture(scope="module")
def jobs(tmp_path_factory) -> Iterator[Jobs]:
    root = tmp_path_factory.mktemp("import-root")
    with OperatorProcess("efficientnet-lite0-encoder") as encoder, \
            serve_in_process(MeanColourEncoder()) as colour:
        server = ApiServer(tmp_path_factory.mktemp("web-jobs"),
                           {"PHANTOSCOPE_IMPORT_ROOTS": str(root),
                            "PHANTOSCOPE_JOB_POLL_S": "0.2",
                            "PHANTOSCOPE_WATCH_INTERVAL_S": "1"}).start()
        try:
            api = server.client
            with OperatorProcess("inprocess:MeanColourEncoder",
                                 env={"PYTHONPATH": str(REPO / "tests")}) as stops:
                setup = [
                    ("/v1/operator/regist", {"name": "enc", "endpoint": encoder.endpoint}),
                    ("/v1/pipeline/pipe", {"encoder": "enc"}),
                    (f"/v1/application/{ALBUM}",
                     {"fields": {"image": {"type": "object", "pipeline": "pipe"}}}),
                    ("/v1/operator/regist", {"name": "gone", "endpoint": stops.endpoint}),
                    ("/v1/pipeline/gone-pipe", {"encoder": "gone"}),
                    (f"/v1/application/{STALLED}",
                     {"fields": {"image": {"type": "object", "pipeline": "gone-pipe"}}}),
                    ("/v1/operator/regist",
                     {"name": "colour", "endpoint": f"127.0.0.1:{colour.port}"}),
                    ("/v1/pipeline/colour-pipe", {"encoder": "colour"}),
                    (f"/v1/application/{MOVED}",
                     {"fields": {"image": {"type": "object", "pipeline": "pipe"}}}),
                ]
                for path, body in setup:
                    answer = api.post(path, json=body)
                    assert answer.status_code == 200, answer.text
            yield Jobs(server, root)
        finally:
            server.stop()


@pytest.fixture
def page(browser, jobs):
    """The Jobs view, its clock under the test's hand (it runs until paused); fails the test
    if the page threw an uncaught error."""
    context = browser.new_context(viewport={"width": 1360, "height": 900}, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.clock.install()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{jobs.server.url}/#/jobs")
    expect(page.locator("#view-jobs")).to_be_visible()
    yield page
    context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


def screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True, animations="disabled")


def start_import(page, app: str, folder: str) -> None:
    page.get_by_test_id("job-start-app").select_option(app)
    page.get_by_test_id("job-folder").fill(folder)
    page.get_by_test_id("job-start").click()


def row_of(page, job_id: str):
    return page.locator(f'[data-testid="job-row"][data-id="{job_id}"]')


def newest_job_id(page, jobs: Jobs, count: int) -> str:
    """The id of the newest job, once the page lists ``count`` jobs (the server as many)."""
    expect(page.get_by_test_id("job-row")).to_have_count(count)
    listed = jobs.listed()
    assert len(listed) == count, listed
    return str(listed[0]["id"])


def test_an_import_from_a_server_folder_runs_to_done_and_a_refused_one_says_why(jobs, page):
    outside = jobs.root.parent / "elsewhere"
    outside.mkdir(exist_ok=True)
    before = len(jobs.listed())
    for folder, says in [
        (str(outside), "FOLDER_NOT_ALLOWED: folder "),
        ("photos/2024", "INVALID_FOLDER: folder 'photos/2024' is relative"),
        (str(jobs.root / "missing"), "FOLDER_NOT_FOUND: "),
    ]:
        start_import(page, ALBUM, folder)
        expect(page.get_by_test_id("job-start-error")).to_contain_text(says)
    expect(page.get_by_test_id("job-start-error")).to_contain_text(
        "does not exist on the server")
    assert len(jobs.listed()) == before  # nothing started

    folder = jobs.folder("trip", ["coffee", "chelsea", "rocket", "horse", "clock", "moon"])
    start_import(page, ALBUM, str(folder))
    job_id = newest_job_id(page, jobs, before + 1)
    expect(page.get_by_test_id("job-start-error")).to_be_hidden()
    row = row_of(page, job_id)
    expect(row.get_by_test_id("job-kind")).to_have_text("import")
    expect(row.get_by_test_id("job-app")).to_have_text(f"{ALBUM} · image")
    # refreshed by itself until the job ends
    expect(row.get_by_test_id("job-state")).to_have_text("done", timeout=WAIT_MS)
    expect(row.get_by_test_id("job-count")).to_have_text("6 of 6")
    expect(row.get_by_test_id("job-bar")).to_have_attribute("aria-valuenow", "6")
    expect(row.get_by_test_id("job-cancel")).to_have_count(0)
    expect(row.get_by_test_id("job-eta")).to_have_text("")
    screenshot(page, "jobs-done")
    assert jobs.job(job_id)["state"] == "done" and jobs.job(job_id)["done"] == 6
    assert jobs.count(ALBUM) == 6


def test_a_running_job_is_cancelled_from_its_row(jobs, page):
    folder = jobs.folder("stalled-trip", ["astronaut", "coins", "brick"])
    before = len(jobs.listed())
    start_import(page, STALLED, str(folder))
    job_id = newest_job_id(page, jobs, before + 1)
    row = row_of(page, job_id)
    # its encoder is gone: the job waits, running, nothing done and nothing failed
    expect(row.get_by_test_id("job-state")).to_have_text("running", timeout=WAIT_MS)
    expect(row.get_by_test_id("job-count")).to_have_text("0 of 3")
    expect(row.get_by_test_id("job-eta")).to_have_text("")  # no rate yet: no time left
    screenshot(page, "jobs-running")
    row.get_by_test_id("job-cancel").click()
    expect(row.get_by_test_id("job-state")).to_have_text("cancelled")
    expect(row.get_by_test_id("job-cancel")).to_have_count(0)
    expect(row.get_by_test_id("job-note")).to_have_count(0)
    assert jobs.job(job_id)["state"] == "cancelled"
    assert jobs.count(STALLED) == 0


def test_cancelling_a_job_that_finished_meanwhile_shows_the_409(jobs, page):
    folder = jobs.folder("quick", ["camera", "grass"])
    before = len(jobs.listed())
    page.clock.pause_at(datetime.now() + timedelta(seconds=1))  # the page refreshes no more
    start_import(page, ALBUM, str(folder))
    job_id = newest_job_id(page, jobs, before + 1)
    row = row_of(page, job_id)
    expect(row.get_by_test_id("job-cancel")).to_be_visible()  # as listed when it started
    deadline = datetime.now() + timedelta(seconds=60)
    while jobs.job(job_id)["state"] != "done":
        assert datetime.now() < deadline, jobs.job(job_id)
        page.wait_for_timeout(200)
    expect(row.get_by_test_id("job-state")).not_to_have_text("done")  # the page has not seen it

    row.get_by_test_id("job-cancel").click()
    note = row.get_by_test_id("job-note")
    expect(note).to_have_text(f"JOB_FINISHED: job {job_id} is done already: there is nothing to "
                              "cancel (start a new job to run it again)")
    expect(row.get_by_test_id("job-state")).to_have_text("done")  # listed again after the 409
    expect(row.get_by_test_id("job-cancel")).to_have_count(0)
    assert jobs.job(job_id)["state"] == "done" and jobs.job(job_id)["done"] == 2


def test_a_watch_shows_what_it_did_and_no_time_left(jobs, page):
    folder = jobs.folder("inbox", ["coffee", "rocket"])
    answer = jobs.server.client.post("/v1/jobs", json={
        "kind": "watch", "application": ALBUM, "source": {"folder": str(folder)}})
    assert answer.status_code == 200, answer.text
    job_id = str(answer.json()["id"])
    page.get_by_test_id("job-reload").click()
    row = row_of(page, job_id)
    expect(row.get_by_test_id("job-kind")).to_have_text("watch")
    expect(row.get_by_test_id("job-state")).to_have_text("running")
    # refreshed by itself while it runs: the files it found, imported
    expect(row.get_by_test_id("job-count")).to_have_text("2 done · watching", timeout=WAIT_MS)
    (folder / "horse.jpg").write_bytes(jpeg(photo("horse")))  # a new file, seen by a scan
    expect(row.get_by_test_id("job-count")).to_have_text("3 done · watching", timeout=WAIT_MS)
    expect(row.get_by_test_id("job-bar")).to_have_count(0)  # no end, so no bar
    expect(row.get_by_test_id("job-eta")).to_have_text("")
    screenshot(page, "jobs-watch")
    row.get_by_test_id("job-cancel").click()
    expect(row.get_by_test_id("job-state")).to_have_text("cancelled")
    assert jobs.job(job_id)["state"] == "cancelled"


def test_a_finished_reindex_is_switched_from_its_row_and_a_refused_switch_says_why(jobs, page):
    api = jobs.server.client
    for each in ["coffee", "rocket", "horse"]:
        answer = api.post(f"/v1/application/{MOVED}/upload",
                          files={"file": (f"{each}.jpg", jpeg(photo(each)), "image/jpeg")})
        assert answer.status_code == 200, answer.text
    answer = api.post("/v1/jobs", json={"kind": "reindex", "application": MOVED,
                                        "field": "image", "pipeline": "colour-pipe"})
    assert answer.status_code == 200, answer.text
    job_id = str(answer.json()["id"])
    page.get_by_test_id("job-reload").click()
    row = row_of(page, job_id)
    expect(row.get_by_test_id("job-kind")).to_have_text("reindex")
    expect(row.get_by_test_id("job-app")).to_have_text(f"{MOVED} · image → colour-pipe")
    expect(row.get_by_test_id("job-state")).to_have_text("done", timeout=WAIT_MS)
    expect(row.get_by_test_id("job-count")).to_have_text("3 of 3")
    switch = row.get_by_test_id("job-switch")
    expect(switch).to_have_text("Switch")
    expect(switch).to_be_enabled()

    def used() -> str:
        answer = api.get(f"/v1/application/{MOVED}")
        assert answer.status_code == 200, answer.text
        return answer.json()["_fields"]["image"]["pipeline"]

    # switched by someone else after the page listed it: the server refuses the click
    behind = api.post(f"/v1/application/{MOVED}/fields/image/switch",
                      json={"pipeline": "colour-pipe"})
    assert behind.status_code == 200, behind.text
    switch.click()
    expect(row.get_by_test_id("job-note")).to_have_text(
        f"PIPELINE_IN_USE: field 'image' of application '{MOVED}' uses pipeline "
        "'colour-pipe' already")
    expect(switch).to_have_text("In use")  # the page learnt what the field uses
    expect(switch).to_be_disabled()
    assert used() == "colour-pipe"

    back = api.post(f"/v1/application/{MOVED}/fields/image/switch", json={"pipeline": "pipe"})
    assert back.status_code == 200, back.text  # within the grace: no reindex needed
    page.reload()
    row = row_of(page, job_id)
    switch = row.get_by_test_id("job-switch")
    expect(switch).to_have_text("Switch")
    switch.click()
    expect(row.get_by_test_id("job-note")).to_have_text("Searches of image use colour-pipe now")
    expect(switch).to_have_text("In use")
    expect(switch).to_be_disabled()
    assert used() == "colour-pipe"
    screenshot(page, "jobs-switched")
