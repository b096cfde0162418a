"""Duplicates under concurrent work, on real stores (Milvus Lite, SQLite, a folder) and a
real gRPC encoder: the first listing of a process finds every pair in one pass (minutes at
100k entities) without making uploads wait, uploads refusing copies sent at once store
one picture once, and the background leveller judges what imports stored once they pause."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

import phantoscope.engine.duplicate_index as duplicate_index
from colour_words import ColourEncoder
from inprocess import serve_in_process
from phantoscope.config import ServerSettings
from phantoscope.duplicates.descriptor import describe
from phantoscope.engine.context import Stores
from phantoscope.engine.duplicate_intake import NewImage, UploadCheck
from phantoscope.engine.duplicate_leveller import level_once
from phantoscope.engine.duplicate_review import list_groups
from phantoscope.engine.duplicate_state import DuplicateIndexes
from phantoscope.engine.entities import UploadItem, embed_each, plan_upload, upload
from phantoscope.engine.errors import ConflictError
from phantoscope.engine.field_switch import switch_field
from phantoscope.engine.intake import check_image
from phantoscope.engine.job_runner import JobRunner
from phantoscope.engine.jobs import job_status, start_job
from phantoscope.engine.registry import create_application, create_pipeline, register_operator
from phantoscope.engine.standby_sweep import sweep_once
from phantoscope.photoset import sample_photo
from photos import jpeg

PHOTOS = ("astronaut", "coffee", "chelsea")


@pytest.fixture
def stores(tmp_path, monkeypatch) -> Iterator[Stores]:
    for setting in ("PHANTOSCOPE_META", "PHANTOSCOPE_VECTORS", "PHANTOSCOPE_OBJECTS"):
        monkeypatch.delenv(setting, raising=False)
    opened = Stores.open(ServerSettings(_env_file=None, home=tmp_path / "data"))
    with serve_in_process(ColourEncoder()) as server:
        register_operator(opened, "colour", f"127.0.0.1:{server.port}")
        create_pipeline(opened, "colour-pipe", input="image", description="", processors=[],
                        encoder="colour", index_file_size=1024)
        create_application(opened, "album", {"photo": {"type": "object",
                                                       "pipeline": "colour-pipe"}}, None)
        yield opened
    opened.close()


def resized_copy(name: str) -> bytes:
    """The photo at 70 % of its size, recompressed: a copy."""
    photo = sample_photo(name)
    return jpeg(photo.resize((photo.width * 7 // 10, photo.height * 7 // 10)), quality=75)


def _upload(stores: Stores, data: bytes, name: str, *, check_duplicates: bool = True) -> int:
    image = check_image(data, stores.limits, name)
    [outcome] = upload(stores, plan_upload(stores, "album"), [UploadItem(None, image, name)],
                       check_duplicates=check_duplicates)
    assert outcome.error is None, outcome.error
    return outcome.entity.id


def test_copies_refused_at_once_store_the_picture_once(stores):
    sizes = (90, 80, 70, 60)
    start = threading.Barrier(len(sizes))
    codes: list[str] = []

    def send(percent: int) -> None:
        photo = sample_photo("chelsea")
        data = jpeg(photo.resize((photo.width * percent // 100, photo.height * percent // 100)))
        image = check_image(data, stores.limits, f"chelsea-{percent}")
        plan = plan_upload(stores, "album")
        start.wait(10)
        try:
            upload(stores, plan, [UploadItem(None, image, f"chelsea-{percent}")],
                   reject_duplicates=True)
            codes.append("stored")
        except ConflictError as refused:
            codes.append(refused.code)

    senders = [threading.Thread(target=send, args=(percent,)) for percent in sizes]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join(60)
    assert sorted(codes) == ["DUPLICATE"] * 3 + ["stored"]
    assert stores.meta.count_entities("album") == 1


def _in_another_process(stores: Stores, data: bytes, name: str) -> int:
    """Upload as another API process sharing the stores would: with its own indexes."""
    mine = stores.duplicates
    stores.duplicates = DuplicateIndexes()
    try:
        return _upload(stores, data, name)
    finally:
        stores.duplicates = mine


def test_uploads_take_in_what_other_processes_stored(stores, monkeypatch):
    """An upload finds copies of what another process stored since this one read its index
    (at once when it refuses copies, else within CATCH_UP_S), and the next listing judges
    them as it judges this process's own."""
    originals = {name: _upload(stores, jpeg(sample_photo(name)), name) for name in PHOTOS}
    assert not list_groups(stores, "album", "copies", 0, 10).groups  # the pairs, found
    elsewhere = {"rocket": _in_another_process(stores, jpeg(sample_photo("rocket")), "rocket"),
                 "astronaut-copy": _in_another_process(stores, resized_copy("astronaut"),
                                                       "astronaut-copy")}

    image = check_image(resized_copy("rocket"), stores.limits, "rocket-copy")
    with pytest.raises(ConflictError, match=f"copy of entity {elsewhere['rocket']}"):
        upload(stores, plan_upload(stores, "album"), [UploadItem(None, image, "rocket-copy")],
               reject_duplicates=True)
    monkeypatch.setattr(duplicate_index, "CATCH_UP_S", 0.0)
    image = check_image(resized_copy("coffee"), stores.limits, "coffee-copy")
    [stored] = upload(stores, plan_upload(stores, "album"), [UploadItem(None, image, "c")])
    assert stored.duplicate_of.id == originals["coffee"]

    groups = {frozenset(member.entity.id for member in group.members)
              for group in list_groups(stores, "album", "copies", 0, 10).groups}
    assert groups == {frozenset({originals["astronaut"], elsewhere["astronaut-copy"]}),
                      frozenset({originals["coffee"], stored.entity.id})}


def test_uploads_go_on_during_the_first_pass_and_join_its_groups(stores, monkeypatch):
    originals = {name: _upload(stores, jpeg(sample_photo(name)), name) for name in PHOTOS}
    first_copy = _upload(stores, resized_copy("astronaut"), "astronaut-copy")

    entered, release = threading.Event(), threading.Event()
    real_find_pairs = duplicate_index.find_pairs

    def held_find_pairs(*args, **kwargs):
        entered.set()
        assert release.wait(60), "the test never let the pass go on"
        return real_find_pairs(*args, **kwargs)

    monkeypatch.setattr(duplicate_index, "find_pairs", held_find_pairs)
    stores.duplicates.drop("album")  # as after a restart: no pairs found yet
    listed: dict[str, object] = {}

    def listing() -> None:
        try:
            listed["page"] = list_groups(stores, "album", "copies", 0, 10)
        except BaseException as exc:  # reported by the assertion below
            listed["error"] = exc

    lister = threading.Thread(target=listing)
    lister.start()
    try:
        assert entered.wait(30), "the listing never started its pass"
        uploaded: dict[str, int] = {}
        uploader = threading.Thread(target=lambda: uploaded.setdefault(
            "coffee-copy", _upload(stores, resized_copy("coffee"), "coffee-copy")))
        uploader.start()
        uploader.join(30)
        assert not uploader.is_alive(), "an upload waited for the first pass"
        assert lister.is_alive()
    finally:
        release.set()
        lister.join(60)
    assert "error" not in listed, listed.get("error")
    groups = {frozenset(member.entity.id for member in group.members)
              for group in listed["page"].groups}
    assert groups == {frozenset({originals["astronaut"], first_copy}),
                      frozenset({originals["coffee"], uploaded["coffee-copy"]})}


def test_an_upload_after_a_switch_finds_its_similar_shots_through_the_new_pipeline(stores):
    stored = {name: _upload(stores, jpeg(sample_photo(name)), name) for name in PHOTOS}
    list_groups(stores, "album", "similar", 0, 10)  # the index, made on colour-pipe
    create_pipeline(stores, "colour-pipe-2", input="image", description="", processors=[],
                    encoder="colour", index_file_size=1024)
    job = start_job(stores, {"kind": "reindex", "application": "album",
                             "pipeline": "colour-pipe-2"})
    runner = JobRunner(stores)
    while job_status(stores, job.id).state != "done":
        assert runner.work_once() or job_status(stores, job.id).state == "done"
    switch_field(stores, "album", "photo", "colour-pipe-2")
    stores.settings.switch_grace_s = 0
    while sweep_once(stores):  # the old pipeline's vectors gone
        pass

    photo = sample_photo("coffee")  # its left half: another shot of the same scene
    crop = _upload(stores, jpeg(photo.crop((0, 0, photo.width // 2, photo.height))), "crop")
    groups = [{member.entity.id for member in group.members}
              for group in list_groups(stores, "album", "similar", 0, 10).groups]
    assert any({crop, stored["coffee"]} <= members for members in groups), groups


def test_an_upload_aligns_its_images_together_with_the_answers_of_one_at_a_time(
        stores, monkeypatch):
    """`UploadCheck.check_all` (every image's candidates aligned in one batch, as uploads
    without reject_duplicates do) answers exactly as checking and accepting each in turn."""
    # its vectors searched one by one: a batch searched at once gets distances a float
    # rounding away from one searched alone
    near = duplicate_index.Lookups.near
    monkeypatch.setattr(duplicate_index.Lookups, "near", lambda self, collection, metric, found: [
        near(self, collection, metric, vector[None, :])[0] for vector in found])
    for name in ("astronaut", "coffee", "chelsea", "rocket"):
        _upload(stores, jpeg(sample_photo(name)), name)
    photos = {name: sample_photo(name) for name in ("astronaut", "chelsea", "camera", "coins")}
    batch = [resized_copy("astronaut"), jpeg(photos["chelsea"].crop((20, 10, 440, 290))),
             jpeg(photos["camera"]), jpeg(photos["camera"].rotate(90, expand=True)),
             jpeg(photos["coins"]), resized_copy("coins"), jpeg(photos["chelsea"], quality=40)]
    plan = plan_upload(stores, "album")
    field = plan.fields["photo"]
    images = [check_image(data, stores.limits, f"new-{at}") for at, data in enumerate(batch)]
    vectors = [result[0].vector for result in embed_each(stores, field, images)]
    news = [NewImage(900_000 + at, field, describe(image.data), vector, 800_000 + at)
            for at, (image, vector) in enumerate(zip(images, vectors, strict=True))]

    one_at_a_time = UploadCheck(stores, plan)
    expected = []
    for new in news:
        pairs, pending = one_at_a_time.check(new)
        one_at_a_time.accept(new, pairs, pending)
        expected.append((pairs, pending))
    together = UploadCheck(stores, plan)
    # repr: a pair similar by encoder alone holds NaN figures, equal to nothing
    assert repr(together.check_all(news)) == repr(expected)
    assert repr(together.pairs) == repr(one_at_a_time.pairs)
    assert together.pending == one_at_a_time.pending
    # the batch holds copies of stored images and of one another, and pairs left to align
    copies = [[(pair.first, pair.second) for pair in pairs if pair.copy]
              for pairs, _ in expected]
    assert copies[0] and copies[5] and copies[6]
    assert (900_004, 900_005) in copies[5]


def test_the_leveller_judges_what_imports_stored_once_they_pause(stores):
    coffee = _upload(stores, jpeg(sample_photo("coffee")), "coffee")
    waiting: dict[str, tuple[int, float]] = {}
    assert level_once(stores, waiting, idle_s=0.0) == 0  # nothing listed: nothing to keep
    assert not list_groups(stores, "album", "copies", 0, 10).groups
    index = stores.duplicates.listed()["album"]
    assert level_once(stores, waiting, idle_s=0.0) == 0 and not waiting  # nothing new

    copy = _upload(stores, resized_copy("coffee"), "coffee-copy", check_duplicates=False)
    assert index.unjudged == {copy}
    assert level_once(stores, waiting, idle_s=0.0) == 0  # the count moved: one more look
    chelsea = _upload(stores, resized_copy("chelsea"), "chelsea", check_duplicates=False)
    assert level_once(stores, waiting, idle_s=60.0) == 0  # moved again
    assert level_once(stores, waiting, idle_s=60.0) == 0  # still, but not for 60 s
    assert index.unjudged == {copy, chelsea}
    assert level_once(stores, waiting, idle_s=0.0) == 2
    assert not index.unjudged and not waiting
    assert index.pairs[(min(coffee, copy), max(coffee, copy))].copy
    [group] = list_groups(stores, "album", "copies", 0, 10).groups
    assert {member.entity.id for member in group.members} == {coffee, copy}
