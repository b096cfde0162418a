"""Each upload decoded once (issue 20): through a real API server and our default encoder, an
upload's duplicate check takes the thumbnail the encoder made of the image it decoded for
its model, and the API decodes nothing for it (its `phantoscope_described_images` counter
says where each thumbnail came from, `phantoscope_aligned_pairs` how many candidates it
aligned). A store whose older entities the API described (before
this release, or with PHANTOSCOPE_OPERATOR_THUMBNAILS=false) still finds their copies."""

from __future__ import annotations

import io
import re

import httpx
from PIL import Image

from api_server import ApiServer, aligned_pairs
from photos import jpeg, photo


def ok(answer: httpx.Response):
    assert answer.status_code == 200, answer.text
    return answer.json()


def described(api: httpx.Client) -> dict[str, float]:
    """The server's count of described uploads, by where their thumbnail was made."""
    text = api.get("/metrics").text
    return {where: float(count) for where, count in re.findall(
        r'^phantoscope_described_images_total\{thumbnail="(\w+)"\} (\S+)$', text, re.M)}


def files() -> dict[str, bytes]:
    """A 1024 x 768 JPEG, copies of it resized to 50 % and 75 %, and another photo: JPEGs
    whose reduced-scale decodes differ between the API's 128 pixels and the encoder's 256."""
    original = photo("astronaut").resize((1024, 768), Image.Resampling.LANCZOS)
    return {
        "original": jpeg(original, quality=92),
        "half": jpeg(original.resize((512, 384), Image.Resampling.LANCZOS), quality=80),
        "three-quarters": jpeg(original.resize((768, 576), Image.Resampling.LANCZOS)),
        "other": jpeg(photo("coffee").resize((1024, 768))),
    }


def setup(api: httpx.Client, endpoint: str) -> None:
    ok(api.post("/v1/operator/regist", json={"name": "enc", "endpoint": endpoint}))
    ok(api.post("/v1/pipeline/pipe", json={"encoder": "enc"}))
    ok(api.post("/v1/application/album", json={
        "fields": {"image": {"type": "object", "pipeline": "pipe"}}}))


def upload(api: httpx.Client, name: str, data: bytes) -> dict:
    [body] = ok(api.post("/v1/application/album/upload",
                         files={"file": (f"{name}.jpg", data)}))
    return body


def test_upload_takes_the_encoders_thumbnail_and_finds_the_copy(encoder_endpoint, tmp_path):
    server = ApiServer(tmp_path / "home", {}).start()
    try:
        api = server.client
        setup(api, encoder_endpoint)
        photos = files()
        first = upload(api, "original", photos["original"])
        other = upload(api, "other", photos["other"])
        assert aligned_pairs(api) == 0  # two pictures nothing alike: no candidate to align
        copy = upload(api, "half", photos["half"])
        assert first["duplicate_of"] is None and other["duplicate_of"] is None
        assert copy["duplicate_of"]["_id"] == first["_id"], copy
        assert aligned_pairs(api) >= 1  # the copy was aligned with its original to be found
        assert described(api) == {"operator": 3.0}  # the API decoded none of them
    finally:
        server.stop()


def test_copies_are_found_between_api_and_encoder_thumbnails(encoder_endpoint, tmp_path):
    """Entities described by the API before a restart, their copies by the encoder after it
    (and the other way round): each copy names its original, one group of copies."""
    home = tmp_path / "home"
    photos = files()
    before = ApiServer(home, {"PHANTOSCOPE_OPERATOR_THUMBNAILS": "false"}).start()
    try:
        setup(before.client, encoder_endpoint)
        first = upload(before.client, "original", photos["original"])
        upload(before.client, "other", photos["other"])
        assert described(before.client) == {"api": 2.0}
    finally:
        before.stop()
    after = ApiServer(home, {}).start()
    try:
        api = after.client
        half = upload(api, "half", photos["half"])
        three = upload(api, "three-quarters", photos["three-quarters"])
        assert described(api) == {"operator": 2.0}
        assert half["duplicate_of"]["_id"] == first["_id"], half
        assert three["duplicate_of"]["_id"] in {first["_id"], half["_id"]}, three
        groups = ok(api.get("/v1/application/album/duplicates",
                            params={"kind": "copies"}))["groups"]
        assert [{each["_id"] for each in group["entities"]} for group in groups] == [
            {first["_id"], half["_id"], three["_id"]}]
    finally:
        after.stop()
    again = ApiServer(home, {"PHANTOSCOPE_OPERATOR_THUMBNAILS": "false"}).start()
    try:  # and an API-described copy of an encoder-described one
        quarter = Image.open(io.BytesIO(photos["half"])).resize((256, 192))
        late = upload(again.client, "quarter", jpeg(quarter))
        assert described(again.client) == {"api": 1.0}
        assert late["duplicate_of"]["_id"] in {first["_id"], half["_id"], three["_id"]}, late
    finally:
        again.stop()
