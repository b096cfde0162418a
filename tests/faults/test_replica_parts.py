"""One upload of many images is split between an encoder's replicas (issue 20): each gets
its share at once, so that several operator processes decode and encode it together."""

from __future__ import annotations

from fault_world import set_up

from photos import PHOTO_NAMES, b64, jpeg, photo


def images_run(tally) -> int:
    return sum(int(line) for line in tally.log_file.read_text().splitlines())


def test_a_batch_upload_is_shared_between_replicas_and_one_dying_loses_nothing(
        tally, start_server):
    first, second = tally(TALLY_DELAY_S="0.3"), tally(TALLY_DELAY_S="0.3")
    api = start_server().client
    set_up(api, f"{first.endpoint},{second.endpoint}")
    before = images_run(first), images_run(second)
    images = [{"data": b64(jpeg(photo(PHOTO_NAMES[i % 20]).resize((64 + i, 48))))}
              for i in range(32)]
    answer = api.post("/v1/application/app/upload/batch", json={"images": images})
    assert answer.status_code == 200, answer.text
    assert answer.json()["failed"] == 0
    assert (images_run(first) - before[0], images_run(second) - before[1]) == (16, 16)

    # a replica that died: its part goes to the other, once; nothing is lost or doubled
    first.process.kill()
    first.process.wait()
    before = images_run(second)
    answer = api.post("/v1/application/app/upload/batch", json={"images": images[:20]})
    assert answer.status_code == 200, answer.text
    assert answer.json()["failed"] == 0
    assert images_run(second) - before == 20
    assert api.get("/v1/application/app/entity/count").json() == {"count": 1 + 32 + 20}
