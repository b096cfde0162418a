"""Search by words through the Python client and `phantoscope search --text`, against a real
server with the default encoder: labels on entities and hits, filters, unmatched words, and
the command's table, JSON and refusals."""

from __future__ import annotations

import json

import pytest

from helpers import run_cli
from phantoscope.client import PhantoscopeError
from photos import jpeg, photo


@pytest.fixture
def stocked(client, gallery) -> str:
    """The gallery with a cat, a coffee and a motorcycle, each with a `kind` attribute."""
    for name, kind in (("chelsea", "pet"), ("coffee", "food"), ("stereo_motorcycle", "ride")):
        client.upload(gallery.app, jpeg(photo(name)), name=name, attributes={"kind": kind})
    return gallery.app


def test_the_client_searches_by_words_and_shows_labels(client, stocked):
    app = stocked
    [cat, *_] = client.search(app, text="cat", topk=3)
    assert cat.name == "chelsea" and 0 < cat.score <= 1
    assert cat.labels and cat.labels == cat.entity.labels
    assert any("cat" in label.name for label in cat.labels)
    assert [entity.labels for entity in client.entities.iterate(app)
            if entity.name == "chelsea"] == [cat.labels]
    drinks = client.search(app, text="something to drink", topk=1)
    assert [hit.name for hit in drinks] == ["coffee"]
    assert drinks.unmatched == ("something",) and drinks.terms[0][0] == "drink"
    rides = client.search(app, text="vehicle", filter={"attributes.kind": "ride"})
    assert [hit.name for hit in rides][:1] == ["stereo_motorcycle"]
    assert all(hit.attributes["kind"] == "ride" for hit in rides)
    nothing = client.search(app, text="xyzzy")
    assert (list(nothing), nothing.unmatched) == ([], ("xyzzy",))
    with pytest.raises(PhantoscopeError) as refused:
        client.search(app, text="   ")
    assert (refused.value.status, refused.value.code) == (400, "INVALID_TEXT")
    with pytest.raises(PhantoscopeError) as mixed:  # a labelled field has no text encoder
        client.search(app, jpeg(photo("chelsea")), text="cat")
    assert (mixed.value.status, mixed.value.code) == (400, "TEXT_WITH_IMAGE")
    assert "text encoder" in mixed.value.message
    by_image = client.search(app, jpeg(photo("chelsea")), topk=1)
    assert by_image[0].name == "chelsea" and by_image[0].labels == cat.labels


def test_the_search_command_takes_text(server, stocked):
    env = {"PHANTOSCOPE_URL": server.url, "COLUMNS": "250"}
    shown = run_cli("search", stocked, "--text", "cat xyzzy", "--topk", "2", env=env)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "labels" in shown.stdout and "chelsea" in shown.stdout
    assert "no image class is called: xyzzy" in shown.stdout
    answered = run_cli("search", stocked, "--text", "coffee", "--json", env=env)
    assert answered.returncode == 0, answered.stderr
    hits = json.loads(answered.stdout)
    assert hits[0]["name"] == "coffee" and hits[0]["labels"][0]["name"]
    filtered = run_cli("search", stocked, "--text", "animal", "--where", "kind=food",
                       "--json", env=env)
    assert all(hit["attributes"]["kind"] == "food" for hit in json.loads(filtered.stdout))
    neither = run_cli("search", stocked, env=env)
    assert neither.returncode == 2 and "--text" in neither.stderr
    refused = run_cli("search", stocked, "--text", "x" * 1001, env=env)
    assert refused.returncode != 0 and "TEXT_TOO_LONG" in refused.stderr + refused.stdout
