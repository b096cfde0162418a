"""The preview web UI at `/`, in a real browser against a real API server and operator."""

from __future__ import annotations

import base64
import hashlib
import io
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import pytest
from PIL import Image
from playwright.sync_api import expect

from api_server import ApiServer
from colour_words import ColourEncoder, ColourWordsEncoder, png, solid
from helpers import REPO, OperatorProcess
from inprocess import serve_in_process
from photos import b64, edited_copy, jpeg, photo

WAIT_MS = 90_000  # the longest any one wait may take (an upload is encoded by the operator)
ARTIFACTS = REPO / "test-artifacts" / "web"
PIPELINE = "effnet"
ENCODER = "effnet-encoder"


# --- fixtures: one operator, one API server and one browser for the module -----------------


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[ApiServer]:
    with OperatorProcess("efficientnet-lite0-encoder") as encoder:
        api = ApiServer(tmp_path_factory.mktemp("web-home"), {}).start()
        try:
            ok(api.client.post("/v1/operator/regist",
                               json={"endpoint": encoder.endpoint, "name": ENCODER}))
            ok(api.client.post(f"/v1/pipeline/{PIPELINE}", json={
                "encoder": ENCODER, "description": "EfficientNet-Lite0, 1280-d"}))
            yield api
        finally:
            api.stop()


@pytest.fixture
def page(browser, server):
    """A fresh page on the UI; fails the test if the page threw an uncaught error."""
    context = browser.new_context(viewport={"width": 1360, "height": 900}, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{server.url}/")
    expect(page.locator("#server-state")).to_have_text("API online", timeout=WAIT_MS)
    yield page
    context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("web-screenshots")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return folder


def screenshot(page, shots: Path, name: str) -> None:
    """A full-page PNG under the test's tmp folder, copied to test-artifacts/web/."""
    path = shots / f"{name}.png"
    page.screenshot(path=str(path), full_page=True, animations="disabled")
    shutil.copy(path, ARTIFACTS / path.name)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("web-files")


def write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


# --- helpers over the API ---------------------------------------------------------------------


def ok(answer):
    assert answer.status_code == 200, answer.text
    return answer.json()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def seeded_app(server: ApiServer, names: list[str]) -> tuple[str, dict[str, str]]:
    """An application created through the API holding `names` photos; their entity ids."""
    app = unique("app")
    ok(server.client.post(f"/v1/application/{app}", json={
        "fields": {"image": {"type": "object", "pipeline": PIPELINE}}}))
    batch = ok(server.client.post(f"/v1/application/{app}/upload/batch", json={
        "images": [{"data": b64(jpeg(photo(name)))} for name in names]}))
    assert batch["failed"] == 0, batch
    return app, {
        name: str(result["entity"]["_id"])
        for name, result in zip(names, batch["results"], strict=True)
    }


def entity_count(server: ApiServer, app: str) -> int:
    return ok(server.client.get(f"/v1/application/{app}/entity/count"))["count"]


def transfer(page, name: str, data: bytes):
    """A DataTransfer in the page holding one file, as a drop or a paste carries it."""
    return page.evaluate_handle(
        """([name, data]) => {
            const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, {type: 'image/jpeg'}));
            return transfer;
        }""", [name, b64(data)])


def search_results(page, test_id: str = "search-results"):
    """The hits of a finished search."""
    results = page.get_by_test_id(test_id)
    expect(results).to_have_attribute("data-state", "done", timeout=WAIT_MS)
    return results.locator(".hit")


# --- the tests ----------------------------------------------------------------------------


def test_create_upload_and_search(page, server, shots, files):
    app = unique("ui")
    health = page.locator(f"[data-operator='{ENCODER}'] .health")
    expect(health).to_have_text("healthy", timeout=WAIT_MS)
    expect(page.get_by_test_id("pipelines")).to_contain_text(PIPELINE)

    form = page.get_by_test_id("create-app")
    page.get_by_test_id("new-app-name").fill(app)
    expect(page.get_by_test_id("new-app-field")).to_have_value("image")
    page.get_by_test_id("new-app-pipeline").select_option(PIPELINE)
    form.get_by_role("button", name="Create").click()
    row = page.locator(f"tr[data-app='{app}']")
    expect(row).to_be_visible()
    expect(row).to_contain_text(f"image → {PIPELINE}")
    assert ok(server.client.get(f"/v1/application/{app}"))["_fields"] == {
        "image": {"type": "object", "pipeline": PIPELINE}}
    screenshot(page, shots, "01-applications")

    # Its Upload button opens the upload view on it; three photos through the file picker.
    row.get_by_role("button", name="Upload").click()
    expect(page.get_by_test_id("upload-app")).to_have_value(app)
    names = ["coffee", "rocket", "chelsea"]
    originals = {name: jpeg(photo(name)) for name in names}
    page.get_by_test_id("upload-files").set_input_files(
        [write(files, f"{name}.jpg", data) for name, data in originals.items()])
    items = page.locator(".upload-item")
    expect(items).to_have_count(3)
    expect(page.locator(".upload-item[data-state='done']")).to_have_count(3, timeout=WAIT_MS)
    expect(page.get_by_test_id("upload-summary")).to_contain_text("3 stored")
    screenshot(page, shots, "02-upload")
    assert entity_count(server, app) == 3

    # Search with an edited copy of the rocket: the stored rocket comes first.
    stored = ok(server.client.get(f"/v1/application/{app}/entity", params={"num": 10}))
    by_hash = {entity["sha256"]: str(entity["_id"]) for entity in stored}
    rocket = by_hash[hashlib.sha256(originals["rocket"]).hexdigest()]
    page.locator("a[data-view='search']").click()
    expect(page.get_by_test_id("search-app")).to_have_value(app)
    page.get_by_test_id("query-file").set_input_files(
        write(files, "rocket-edited.jpg", edited_copy(photo("rocket"))))
    hits = search_results(page)
    expect(hits).to_have_count(3)
    expect(hits.first).to_have_attribute("data-id", rocket)
    screenshot(page, shots, "03-search")

    # The first hit opens the entity's details.
    hits.first.click()
    dialog = page.locator("#entity-dialog")
    expect(dialog.locator(".details")).to_contain_text(rocket)
    expect(dialog.locator(".details")).to_contain_text(f"{len(originals['rocket']):,} bytes")
    expect(dialog.locator("table.vectors tbody tr")).to_have_count(1)
    screenshot(page, shots, "04-entity")
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_be_hidden()


def test_compare_shows_two_result_columns(page, server, shots, files):
    first, first_ids = seeded_app(server, ["coffee", "rocket", "chelsea", "coins", "clock"])
    second, second_ids = seeded_app(server, ["chelsea", "moon", "horse", "brick"])
    page.locator("a[data-view='compare']").click()
    page.get_by_test_id("compare-app-a").select_option(first)
    page.get_by_test_id("compare-app-b").select_option(second)
    page.get_by_test_id("compare-query-file").set_input_files(
        write(files, "chelsea-edited.jpg", edited_copy(photo("chelsea"))))

    columns = page.get_by_test_id("compare-columns").locator(".compare-col")
    expect(columns).to_have_count(2)
    left = search_results(page, "compare-results-a")
    right = search_results(page, "compare-results-b")
    expect(left).to_have_count(5)
    expect(right).to_have_count(4)
    expect(left.first).to_have_attribute("data-id", first_ids["chelsea"])
    expect(right.first).to_have_attribute("data-id", second_ids["chelsea"])
    expect(columns.nth(0).locator(".col-title")).to_contain_text(first)
    expect(columns.nth(1).locator(".col-title")).to_contain_text(second)
    screenshot(page, shots, "05-compare")


def test_a_bad_file_fails_alone_and_the_page_keeps_working(page, server, shots, files):
    app, _ = seeded_app(server, ["coins"])
    page.locator("a[data-view='upload']").click()
    page.get_by_test_id("upload-app").select_option(app)
    bad = write(files, "not-a-photo.jpg", b"just some text, not a JPEG\n" * 20)
    page.get_by_test_id("upload-files").set_input_files(
        [bad, write(files, "horse.jpg", jpeg(photo("horse")))])
    failed = page.locator(".upload-item[data-name='not-a-photo.jpg']")
    expect(failed).to_have_attribute("data-state", "failed", timeout=WAIT_MS)
    expect(failed.locator(".status")).to_contain_text("NOT_AN_IMAGE")
    expect(page.locator(".upload-item[data-name='horse.jpg']")).to_have_attribute(
        "data-state", "done", timeout=WAIT_MS)
    expect(page.get_by_test_id("upload-summary")).to_contain_text("1 failed")
    screenshot(page, shots, "06-upload-error")
    assert entity_count(server, app) == 2

    # A following upload works: a file dropped on the drop zone.
    drop = transfer(page, "clock.jpg", jpeg(photo("clock")))
    page.get_by_test_id("upload-drop").dispatch_event("drop", {"dataTransfer": drop})
    expect(page.locator(".upload-item[data-name='clock.jpg']")).to_have_attribute(
        "data-state", "done", timeout=WAIT_MS)
    assert entity_count(server, app) == 3

    # A bad query is an error shown to the user; a good one after it (pasted) finds results.
    page.locator("a[data-view='search']").click()
    page.get_by_test_id("search-app").select_option(app)
    page.get_by_test_id("query-file").set_input_files(bad)
    results = page.get_by_test_id("search-results")
    expect(results).to_have_attribute("data-state", "error", timeout=WAIT_MS)
    expect(results).to_contain_text("NOT_AN_IMAGE")
    expect(page.locator(".toast-error").last).to_contain_text("NOT_AN_IMAGE")
    screenshot(page, shots, "07-search-error")
    clipboard = transfer(page, "clock-edited.jpg", edited_copy(photo("clock")))
    page.evaluate("data => document.dispatchEvent(new ClipboardEvent('paste', "
                  "{clipboardData: data, bubbles: true}))", clipboard)
    hits = search_results(page)
    expect(hits).to_have_count(3)
    expect(page.get_by_test_id("query")).to_contain_text("clock-edited.jpg")


def test_search_by_words_and_labels_on_cards(page, server, shots):
    """Words typed beside the image query find images through their labels (issue 17); hits
    and browse cards show the labels; words naming nothing say so."""
    app, ids = seeded_app(server, ["chelsea", "coffee", "stereo_motorcycle"])
    page.locator("a[data-view='search']").click()
    page.get_by_test_id("search-app").select_option(app)
    page.get_by_test_id("search-text").fill("a cat")
    with page.expect_request(lambda r: r.method == "POST" and r.url.endswith("/search")) as sent:
        page.get_by_test_id("search-text-go").click()
    assert sent.value.post_data_json["text"] == "a cat"
    hits = search_results(page)
    expect(hits.first).to_have_attribute("data-id", ids["chelsea"])
    expect(hits.first.locator(".chip.label").first).to_be_visible()
    expect(page.get_by_test_id("search-results")).to_contain_text("words: a cat")
    screenshot(page, shots, "16-search-words")

    page.get_by_test_id("search-text").fill("vehicle")
    page.get_by_test_id("search-text").press("Enter")
    hits = search_results(page)
    expect(hits.first).to_have_attribute("data-id", ids["stereo_motorcycle"])

    page.get_by_test_id("search-text").fill("xyzzy")
    page.get_by_test_id("search-text-go").click()
    results = page.get_by_test_id("search-results")
    expect(results).to_have_attribute("data-state", "done", timeout=WAIT_MS)
    expect(results).to_contain_text("No image class is called: xyzzy")
    expect(results).to_contain_text("None of these words names an image class")

    page.locator("a[data-view='browse']").click()
    page.get_by_test_id("browse-app").select_option(app)
    cards = page.get_by_test_id("browse-grid").locator(".card")
    expect(cards).to_have_count(3)
    expect(cards.locator(".label-chips")).to_have_count(3)


def test_words_and_an_image_on_a_pipeline_with_a_text_encoder(page, server, shots, files):
    """On a pipeline with a text encoder (tests/colour_words.py's colour space), typed words
    are embedded by it; with a query image chosen too, both go in one request, weighed
    equally (issue 17, tier 2)."""
    api = server.client
    suffix = uuid.uuid4().hex[:6]
    app, pipeline = f"colours-{suffix}", f"paired-{suffix}"
    operators = (f"colour-{suffix}", f"words-{suffix}")
    with serve_in_process(ColourEncoder()) as images, \
            serve_in_process(ColourWordsEncoder()) as words:
        for name, operator in zip(operators, (images, words), strict=True):
            ok(api.post("/v1/operator/regist",
                        json={"name": name, "endpoint": f"127.0.0.1:{operator.port}"}))
        ok(api.post(f"/v1/pipeline/{pipeline}",
                    json={"encoder": operators[0], "text_encoder": operators[1]}))
        ok(api.post(f"/v1/application/{app}",
                    json={"fields": {"image": {"type": "object", "pipeline": pipeline}}}))
        ids = {}
        for name, colour in (("red", (230, 20, 20)), ("purple", (150, 20, 170)),
                             ("blue", (20, 40, 230))):
            [entity] = ok(api.post(f"/v1/application/{app}/upload", json={
                "fields": {"image": {"data": b64(png(solid(colour)))}}, "name": name}))
            ids[name] = str(entity["_id"])
        try:
            page.locator("a[data-view='search']").click()
            page.get_by_test_id("search-app").select_option(app)
            page.get_by_test_id("search-text").fill("red")
            page.get_by_test_id("search-text-go").click()
            expect(search_results(page).first).to_have_attribute("data-id", ids["red"])

            page.get_by_test_id("query-file").set_input_files(
                write(files, "blue-query.png", png(solid((30, 30, 220)))))
            expect(search_results(page).first).to_have_attribute("data-id", ids["blue"])
            with page.expect_request(lambda r: r.method == "POST"
                                     and r.url.endswith("/search")) as sent:
                page.get_by_test_id("search-text-go").click()
            body = sent.value.post_data_json
            assert body["text"] == "red" and set(body["image"]) == {"data"}
            hits = search_results(page)
            expect(hits.first).to_have_attribute("data-id", ids["purple"])
            expect(page.get_by_test_id("search-results")).to_contain_text("words: red +")
            screenshot(page, shots, "17-search-words-and-image")
        finally:
            ok(api.delete(f"/v1/application/{app}", params={"force": "true"}))
            ok(api.delete(f"/v1/pipeline/{pipeline}"))
            for name in operators:
                ok(api.delete(f"/v1/operator/{name}"))


def side_by_side(left: Image.Image, right: Image.Image, size: int = 256) -> Image.Image:
    canvas = Image.new("RGB", (size * 2, size))
    canvas.paste(left.resize((size, size)), (0, 0))
    canvas.paste(right.resize((size, size)), (size, 0))
    return canvas


def test_crop_before_search_sends_the_crop(page, server, shots, files):
    app, ids = seeded_app(server, ["coffee", "rocket", "chelsea", "coins", "moon", "brick"])
    query = side_by_side(photo("coffee"), photo("rocket"))
    page.locator("a[data-view='search']").click()
    page.get_by_test_id("search-app").select_option(app)
    page.get_by_test_id("query-file").set_input_files(
        write(files, "coffee-and-rocket.jpg", jpeg(query)))
    expect(search_results(page)).to_have_count(6)
    expect(page.get_by_test_id("query")).to_contain_text("drag on the image to crop")

    # Draw a rectangle over the right half (the rocket) of the preview.
    shown = page.get_by_test_id("query-stage").locator("img").bounding_box()
    assert shown is not None
    page.mouse.move(shown["x"] + shown["width"] * 0.53, shown["y"] + 2)
    page.mouse.down()
    page.mouse.move(shown["x"] + shown["width"] * 0.8, shown["y"] + shown["height"] * 0.5, steps=3)
    with page.expect_request(lambda r: r.method == "POST" and r.url.endswith("/search")) as sent:
        page.mouse.move(shown["x"] + shown["width"] - 2, shown["y"] + shown["height"] - 2,
                        steps=3)
        page.mouse.up()
    body = sent.value.post_data_json
    (field,) = body["fields"]
    crop = Image.open(io.BytesIO(base64.b64decode(body["fields"][field]["data"])))
    assert crop.width < query.width * 0.5 and crop.height < query.height
    assert crop.width > query.width * 0.4 and crop.height > query.height * 0.9

    hits = search_results(page)
    expect(hits.first).to_have_attribute("data-id", ids["rocket"])
    expect(page.get_by_test_id("query")).to_contain_text(f"crop {crop.width}\u00d7{crop.height}")
    screenshot(page, shots, "08-search-crop")

    # Clearing the crop searches with the whole image again.
    with page.expect_request(lambda r: r.method == "POST" and r.url.endswith("/search")) as sent:
        page.get_by_role("button", name="Clear crop").click()
    whole = Image.open(io.BytesIO(base64.b64decode(
        sent.value.post_data_json["fields"][field]["data"])))
    assert whole.size == query.size
    expect(search_results(page)).to_have_count(6)


def test_browse_pages_and_deletes(page, server, shots):
    names = ["coffee", "rocket", "chelsea", "coins", "moon", "brick", "horse", "clock"]
    app, ids = seeded_app(server, names)
    before = server.counts()
    page.locator("a[data-view='browse']").click()
    page.get_by_test_id("browse-app").select_option(app)
    page.get_by_test_id("browse-per-page").select_option("6")
    where = page.get_by_test_id("browse-where")
    grid = page.get_by_test_id("browse-grid").locator(".card")
    expect(where).to_have_text("Page 1 of 2 · 8 entities")
    expect(grid).to_have_count(6)
    expect(page.get_by_test_id("browse-prev")).to_be_disabled()
    first_page = set(grid.evaluate_all("cards => cards.map(c => c.dataset.id)"))
    screenshot(page, shots, "09-browse")

    page.get_by_test_id("browse-next").click()
    expect(where).to_have_text("Page 2 of 2 · 8 entities")
    expect(grid).to_have_count(2)
    expect(page.get_by_test_id("browse-next")).to_be_disabled()
    second_page = set(grid.evaluate_all("cards => cards.map(c => c.dataset.id)"))
    assert first_page | second_page == set(ids.values()) and not first_page & second_page

    # Delete the first card of page 2 (two clicks: the second confirms).
    victim = grid.first.get_attribute("data-id")
    grid.first.get_by_role("button", name="Delete").click()
    grid.first.get_by_role("button", name="Confirm").click()
    expect(where).to_have_text("Page 2 of 2 · 7 entities")
    expect(grid).to_have_count(1)
    expect(page.locator(f".card[data-id='{victim}']")).to_have_count(0)
    assert entity_count(server, app) == 7
    after = server.counts()
    assert after["entities"] == before["entities"] - 1
    assert server.client.get(f"/v1/application/{app}/entity/{victim}").status_code == 404
    screenshot(page, shots, "10-browse-deleted")


def with_exif(image: Image.Image, taken_at: str) -> bytes:
    """A JPEG whose EXIF DateTimeOriginal is ``taken_at`` (``2024:03:01 09:00:00``)."""
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "Canon", "Canon EOS 5D"  # Make, Model
    exif.get_ifd(0x8769)[0x9003] = taken_at
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=90, exif=exif)
    return buffer.getvalue()


def card_names(cards) -> list[str]:
    return cards.locator(".entity-name").all_inner_texts()


def test_attributes_at_upload_shown_and_filtered(page, server, shots, files):
    """Attributes typed in the upload view; names, EXIF and attributes on cards; the filter
    bar narrows search and browse; the entity dialog edits name and attributes."""
    app = unique("shop")
    ok(server.client.post(f"/v1/application/{app}", json={
        "fields": {"image": {"type": "object", "pipeline": PIPELINE}}}))
    page.locator("a[data-view='upload']").click()
    page.get_by_test_id("upload-app").select_option(app)
    page.get_by_test_id("upload-attributes").fill("category=shoes\nsize=42")
    page.get_by_test_id("upload-files").set_input_files([
        write(files, "coffee.jpg", with_exif(photo("coffee"), "2019:07:14 10:00:00")),
        write(files, "rocket.jpg", with_exif(photo("rocket"), "2024:03:01 09:00:00"))])
    expect(page.locator(".upload-item[data-state='done']")).to_have_count(2, timeout=WAIT_MS)
    page.get_by_test_id("upload-attributes").fill("category=bags\ntag=red\ntag=blue")
    page.get_by_test_id("upload-files").set_input_files(
        write(files, "chelsea.jpg", jpeg(photo("chelsea"))))
    expect(page.locator(".upload-item[data-state='done']")).to_have_count(3, timeout=WAIT_MS)
    page.get_by_test_id("upload-attributes").fill("bad-key=1")
    page.get_by_test_id("upload-files").set_input_files(
        write(files, "moon.jpg", jpeg(photo("moon"))))
    expect(page.locator(".toast-error").last).to_contain_text('"bad-key" is not a valid')
    expect(page.locator(".upload-item")).to_have_count(3)
    stored = {e["name"]: e for e in ok(server.client.get(f"/v1/application/{app}/entity"))}
    assert set(stored) == {"coffee.jpg", "rocket.jpg", "chelsea.jpg"}
    assert stored["rocket.jpg"]["attributes"] == {"category": "shoes", "size": 42}
    assert stored["chelsea.jpg"]["attributes"] == {"category": "bags", "tag": ["red", "blue"]}

    # Browse: each card names its image and shows its EXIF and attributes.
    page.locator("a[data-view='browse']").click()
    page.get_by_test_id("browse-app").select_option(app)
    cards = page.get_by_test_id("browse-grid").locator(".card")
    expect(cards).to_have_count(3)
    rocket = cards.filter(has_text="rocket.jpg")
    expect(rocket.locator(".exif-line")).to_contain_text("2024-03-01 09:00")
    expect(rocket.locator(".exif-line")).to_contain_text("Canon EOS 5D")
    expect(rocket.locator(".chip.attr")).to_have_text(["category: shoes", "size: 42"])
    expect(cards.filter(has_text="chelsea.jpg").locator(".chip.attr[data-key='tag']")).to_have_text(
        "tag: red, blue")
    screenshot(page, shots, "13-browse-attributes")

    # The filter bar lists only what matches (?filter=), and Clear lists all again.
    bar = page.get_by_test_id("browse-filter")
    bar.get_by_test_id("browse-filter-key").fill("category")
    bar.get_by_test_id("browse-filter-value").fill("shoes")
    with page.expect_request(lambda r: "filter=" in r.url and "/entity?" in r.url) as sent:
        bar.get_by_test_id("browse-filter-apply").click()
    assert "attributes.category" in unquote(sent.value.url)
    expect(cards).to_have_count(2)
    assert sorted(card_names(cards)) == ["coffee.jpg", "rocket.jpg"]
    expect(page.get_by_test_id("browse-where")).to_have_text("Page 1 of 1 · 2 matching entities")
    bar.get_by_test_id("browse-filter-from").fill("2024-01-01")
    bar.get_by_test_id("browse-filter-apply").click()
    expect(cards).to_have_count(1)
    expect(cards.first).to_contain_text("rocket.jpg")
    screenshot(page, shots, "14-browse-filtered")
    bar.get_by_test_id("browse-filter-clear").click()
    expect(cards).to_have_count(3)
    expect(page.get_by_test_id("browse-where")).to_have_text("Page 1 of 1 · 3 entities")
    bar.get_by_test_id("browse-filter-key").fill("9lives")
    bar.get_by_test_id("browse-filter-apply").click()
    expect(bar.locator(".filter-error")).to_contain_text('"9lives" is not a valid attribute key')
    bar.get_by_test_id("browse-filter-clear").click()

    # Search: the filter goes with the query, and only matching entities come back.
    page.locator("a[data-view='search']").click()
    page.get_by_test_id("search-app").select_option(app)
    page.get_by_test_id("query-file").set_input_files(
        write(files, "chelsea-edited.jpg", edited_copy(photo("chelsea"))))
    hits = search_results(page)
    expect(hits).to_have_count(3)
    expect(hits.first.locator(".entity-name")).to_have_text("chelsea.jpg")
    bar = page.get_by_test_id("search-filter")
    bar.get_by_test_id("search-filter-key").fill("category")
    bar.get_by_test_id("search-filter-value").fill("shoes")
    with page.expect_request(lambda r: r.method == "POST" and r.url.endswith("/search")) as sent:
        bar.get_by_test_id("search-filter-apply").click()
    assert sent.value.post_data_json["filter"] == {"attributes.category": "shoes"}
    hits = search_results(page)
    expect(hits).to_have_count(2)
    assert sorted(card_names(hits)) == ["coffee.jpg", "rocket.jpg"]
    bar.get_by_test_id("search-filter-to").fill("2020-12-31")
    bar.get_by_test_id("search-filter-prefix").fill("cof")
    with page.expect_request(lambda r: r.method == "POST" and r.url.endswith("/search")) as sent:
        bar.get_by_test_id("search-filter-apply").click()
    assert sent.value.post_data_json["filter"] == {
        "attributes.category": "shoes", "name": {"prefix": "cof"},
        "taken_at": {"lt": "2021-01-01"}}
    hits = search_results(page)
    expect(hits).to_have_count(1)
    expect(hits.first.locator(".entity-name")).to_have_text("coffee.jpg")
    screenshot(page, shots, "15-search-filtered")
    bar.get_by_test_id("search-filter-key").fill("category")
    bar.get_by_test_id("search-filter-value").fill("hats")
    bar.get_by_test_id("search-filter-apply").click()
    expect(page.get_by_test_id("search-results")).to_contain_text("No entity matches the filter")

    # The entity dialog shows and edits name and attributes (PATCH).
    bar.get_by_test_id("search-filter-clear").click()
    hits = search_results(page)
    expect(hits).to_have_count(3)
    hits.filter(has_text="chelsea.jpg").click()
    dialog = page.locator("#entity-dialog")
    details = dialog.locator(".details")
    expect(details).to_contain_text("chelsea.jpg")
    expect(details.locator(".chip.attr")).to_have_text(["category: bags", "tag: red, blue"])
    dialog.get_by_test_id("entity-edit").click()
    expect(dialog.get_by_test_id("entity-attributes-input")).to_have_value(
        "category=bags\ntag=red\ntag=blue")
    dialog.get_by_test_id("entity-name-input").fill("cats/chelsea.jpg")
    dialog.get_by_test_id("entity-attributes-input").fill("category=pets\nindoor=true")
    dialog.get_by_role("button", name="Save").click()
    expect(details).to_contain_text("cats/chelsea.jpg")
    expect(details.locator(".chip.attr")).to_have_text(["category: pets", "indoor: true"])
    screenshot(page, shots, "16-entity-edited")
    chelsea = stored["chelsea.jpg"]["_id"]
    entity = ok(server.client.get(f"/v1/application/{app}/entity/{chelsea}"))
    assert (entity["name"], entity["attributes"]) == (
        "cats/chelsea.jpg", {"category": "pets", "indoor": True})


def test_application_delete_needs_force_when_it_holds_entities(page, server, shots):
    app, _ = seeded_app(server, ["coins", "moon"])
    page.get_by_role("button", name="Refresh").click()
    row = page.locator(f"tr[data-app='{app}']")
    expect(row).to_have_attribute("data-count", "2")
    row.get_by_role("button", name="Delete").click()
    row.get_by_role("button", name="Confirm delete").click()
    expect(row.locator(".error-text")).to_contain_text("APPLICATION_NOT_EMPTY")
    expect(page.locator(".toast-error").last).to_contain_text("APPLICATION_NOT_EMPTY")
    screenshot(page, shots, "11-applications-409")
    assert server.client.get(f"/v1/application/{app}").status_code == 200

    row.get_by_test_id("force-delete").check()
    row.get_by_role("button", name="Delete").click()
    row.get_by_role("button", name="Confirm delete").click()
    expect(row).to_have_count(0)
    assert server.client.get(f"/v1/application/{app}").status_code == 404


def test_the_api_and_its_docs_still_answer(server):
    assert server.client.get("/").headers["content-type"].startswith("text/html")
    assert server.client.get("/ui/js/main.js").status_code == 200
    assert server.client.get("/docs").status_code == 200
    assert server.client.get("/v1/settings/ping").text == "pong"
    missing = server.client.get("/v1/nothing-here")
    assert missing.status_code == 404 and missing.json()["code"] == "NOT_FOUND"


def test_processor_hits_show_their_matched_box(page, server, shots, files):
    """A face pipeline: each hit's thumbnail shows the matched face, scaled to the thumbnail."""
    api = server.client
    app = unique("album")
    with OperatorProcess("face-detector") as detector, OperatorProcess("face-encoder") as coder:
        for name, endpoint in (("faces", detector.endpoint), ("face-vectors", coder.endpoint)):
            ok(api.post("/v1/operator/regist", json={"name": name, "endpoint": endpoint}))
        try:
            ok(api.post("/v1/pipeline/people", json={
                "processors": "faces", "encoder": "face-vectors", "description": "faces"}))
            ok(api.post(f"/v1/application/{app}", json={
                "fields": {"photo": {"type": "object", "pipeline": "people"}}}))
            stored = ok(api.post(f"/v1/application/{app}/upload", json={
                "fields": {"photo": {"data": b64(jpeg(photo("astronaut")))}}}))
            check_boxes(page, shots, files, app, stored[0])
        finally:
            api.delete(f"/v1/application/{app}", params={"force": "true"})
            api.delete("/v1/pipeline/people")
            api.delete("/v1/operator/faces")
            api.delete("/v1/operator/face-vectors")


def check_boxes(page, shots, files, app: str, stored: dict) -> None:
    box = stored["box"]
    page.locator("a[data-view='search']").click()
    page.get_by_test_id("search-app").select_option(app)
    page.get_by_test_id("query-file").set_input_files(
        write(files, "astronaut-edited.jpg", edited_copy(photo("astronaut"))))
    hit = search_results(page).first
    expect(hit).to_have_attribute("data-id", str(stored["_id"]))
    rect = hit.locator("svg.box-layer rect.match")
    expect(rect).to_have_count(1)
    # The box is drawn in the stored image's pixels under a viewBox of its natural size, so it
    # lands on the face whatever size the thumbnail is shown at.
    expect(hit.locator("svg.box-layer")).to_have_attribute("viewBox", "0 0 512 512")
    for attribute, value in (("x", box["left"]), ("y", box["top"]),
                             ("width", box["right"] - box["left"]),
                             ("height", box["bottom"] - box["top"])):
        expect(rect).to_have_attribute(attribute, str(value))
    shown = rect.bounding_box()
    thumb = hit.locator(".thumb").bounding_box()
    assert shown is not None and thumb is not None
    scale = thumb["width"] / 512  # the astronaut is square, as is the thumbnail
    assert abs(shown["x"] - thumb["x"] - box["left"] * scale) < 3
    assert abs(shown["width"] - (box["right"] - box["left"]) * scale) < 3
    screenshot(page, shots, "12-search-boxes")


READ_KEY, ADMIN_KEY = "read-key-for-the-web-test", "admin-key-for-the-web-test"


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory) -> Iterator[ApiServer]:
    """A server that needs API keys, holding one application of three photos."""
    keys = f"read:{READ_KEY},admin:{ADMIN_KEY}"
    with OperatorProcess("efficientnet-lite0-encoder") as encoder:
        api = ApiServer(tmp_path_factory.mktemp("web-keyed-home"),
                        {"PHANTOSCOPE_API_KEYS": keys}).start()
        api.client.headers["X-API-Key"] = ADMIN_KEY
        try:
            ok(api.client.post("/v1/operator/regist",
                               json={"endpoint": encoder.endpoint, "name": ENCODER}))
            ok(api.client.post(f"/v1/pipeline/{PIPELINE}", json={"encoder": ENCODER}))
            yield api
        finally:
            api.stop()


def test_with_keys_the_page_asks_for_one_then_shows_and_opens_images(
    browser, keyed_server, shots
):
    app, ids = seeded_app(keyed_server, ["coffee", "rocket", "chelsea"])
    context = browser.new_context(viewport={"width": 1360, "height": 900}, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(f"{keyed_server.url}/")
    expect(page.locator("#server-state")).to_have_text("API key needed")
    expect(page.locator(".toast-error").first).to_be_visible()  # the views could not load

    page.get_by_test_id("api-key").fill(READ_KEY)
    page.get_by_test_id("api-key").dispatch_event("change")
    expect(page.locator("#server-state")).to_have_text("API online")
    page.locator("a[data-view='browse']").click()
    page.get_by_test_id("browse-app").select_option(app)
    cards = page.get_by_test_id("browse-grid").locator(".card")
    expect(cards).to_have_count(3)
    expect(page.locator(".toast-error")).to_have_count(0)  # the old key's failures are gone
    images = cards.locator("img")
    # Each stored image was fetched with the key (a plain <img> would get a 401).
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=browse-grid] .card img')]"
        ".every((img) => img.complete && img.naturalWidth > 0)")
    assert images.evaluate_all("imgs => imgs.every(i => i.src.startsWith('blob:'))")
    screenshot(page, shots, "12-keyed-browse")

    cards.first.locator("img").click()
    with context.expect_page() as opened:
        page.get_by_role("link", name="Open image ↗").click()
    tab = opened.value
    tab.wait_for_function("() => location.href.startsWith('blob:')")
    assert tab.evaluate("() => document.images.length === 1 && document.images[0].naturalWidth")
    context.close()
    assert entity_count(keyed_server, app) == len(ids)
