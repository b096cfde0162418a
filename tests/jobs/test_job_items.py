"""An import job's items stored exactly once however often they are tried, in this process
over real stores (Milvus Lite, SQLite, a folder) and a real encoder: a batch tried again
after its entities were stored (a server killed before recording it done), two attempts at
once (a claim taken over from a server thought dead), and claims that exclude each other."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from job_world import write_photos

from phantoscope.config import ServerSettings
from phantoscope.engine import jobs, registry
from phantoscope.engine.context import Stores
from phantoscope.engine.errors import StorageError
from phantoscope.engine.import_batch import import_items
from phantoscope.storage.job_store import JobStore

APP = "album"


@pytest.fixture
def stores(tmp_path, tally) -> Iterator[Stores]:
    settings = ServerSettings(_env_file=None, home=tmp_path / "home",
                              import_roots=str(tmp_path / "roots"))
    opened = Stores.open(settings)
    registry.register_operator(opened, "tally", tally.endpoint)
    registry.create_pipeline(opened, "pipe", input="image", description="", processors=[],
                             encoder="tally", index_file_size=1024, text_encoder=None)
    registry.create_application(opened, APP, {"photo": {"type": "object", "pipeline": "pipe"}},
                                None)
    yield opened
    opened.close()


def later() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=1)


def start(stores: Stores, tmp_path, count: int) -> tuple[JobStore, int]:
    write_photos(tmp_path / "roots" / "photos", [f"{n:02d}.jpg" for n in range(count)])
    status = jobs.start_job(stores, {"kind": "import", "application": APP,
                                     "source": {"folder": str(tmp_path / "roots" / "photos")}})
    return JobStore(stores.meta), status.id


def test_a_batch_tried_again_after_it_was_stored_is_done_without_storing_twice(
    stores, tmp_path
):
    store, job_id = start(stores, tmp_path, 6)
    job = store.get_job(job_id)
    items = store.claim(job_id, "first", 6, stale_before=later())
    first = import_items(stores, job, items)
    assert sorted(first.done) == list(range(6)) and not first.failed
    # killed here: stored, not recorded; the claim is taken again once its lease is over
    again = store.claim(job_id, "second", 6, stale_before=datetime.now(UTC).replace(tzinfo=None))
    assert [item.entity_id for item in again] == [item.entity_id for item in items]
    second = import_items(stores, job, again)
    assert sorted(second.done) == list(range(6)) and not second.failed
    assert stores.meta.count_entities(APP) == 6
    store.finish(job_id, "first", first.done, {})  # the old claim changes nothing
    assert store.counts(job_id).claimed == 6
    store.finish(job_id, "second", second.done, {})
    assert store.counts(job_id).done == 6


def test_two_attempts_at_once_store_each_item_once(stores, tmp_path):
    store, job_id = start(stores, tmp_path, 8)
    job = store.get_job(job_id)
    items = store.claim(job_id, "one", 8, stale_before=later())
    with ThreadPoolExecutor(2) as pool:
        attempts = [pool.submit(import_items, stores, job, items) for _ in range(2)]
    outcomes = []
    for attempt in attempts:
        try:
            outcomes.append(attempt.result())
        except StorageError as exc:  # the loser collided on the entities' key, undid itself
            assert "saving entities" in exc.message
    assert outcomes and all(sorted(result.done) == list(range(8)) for result in outcomes)
    assert stores.meta.count_entities(APP) == 8
    assert stores.vectors.count(stores.meta.get_pipeline("pipe").collection) == 8
    assert sum(len(stores.objects.keys(bucket)) for bucket in
               {a.bucket for a in stores.meta.list_applications()}) == 8


def test_claims_never_share_an_item_and_a_live_claim_is_not_taken(stores, tmp_path):
    store, job_id = start(stores, tmp_path, 30)
    with ThreadPoolExecutor(6) as pool:
        claims = list(pool.map(lambda n: store.claim(job_id, f"c{n}", 4, later()), range(10)))
    taken = [item.position for claim in claims for item in claim]
    assert len(taken) == len(set(taken)) and taken  # no item twice
    rest = store.claim(job_id, "rest", 30, later())
    assert sorted(taken + [item.position for item in rest]) == list(range(30))
    assert store.get_job(job_id).state == "running"
    assert store.claim(job_id, "late", 4, later()) == []  # live claims are not taken
    store.release("c0")
    assert [item.position for item in store.claim(job_id, "late", 10, later())] == \
        sorted(item.position for item in claims[0])
