"""A pipeline with a text encoder through the Python client and the CLI, against a real server
and real gRPC operators of a tiny colour space (tests/colour_words.py): creating and showing
the pair, searching by words, and mixed queries with weights (a file, a URL), with rankings
computed here; and what each refuses."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from colour_words import (
    ColourEncoder,
    ColourWordsEncoder,
    image_vector,
    png,
    solid,
    text_vector,
    unit,
)
from helpers import run_cli
from inprocess import serve_in_process
from phantoscope.client import PhantoscopeClient, PhantoscopeError

COLOURS = {"red": (230, 20, 20), "purple": (150, 20, 170), "blue": (20, 40, 230),
           "green": (20, 220, 60)}
QUERY = (30, 30, 220)


@dataclass(frozen=True)
class Paired:
    app: str
    pipeline: str
    words: str


@pytest.fixture(scope="module")
def paired(server) -> Iterator[Paired]:
    """An application on a colour encoder paired with a colour-words text encoder, holding
    the four colours (each named by its colour)."""
    suffix = secrets.token_hex(3)
    names = Paired(f"colours-{suffix}", f"paired-{suffix}", f"words-{suffix}")
    with serve_in_process(ColourEncoder()) as images, \
            serve_in_process(ColourWordsEncoder()) as words, \
            PhantoscopeClient(server.url) as client:
        client.operators.register(f"colour-{suffix}", f"127.0.0.1:{images.port}")
        client.operators.register(names.words, f"127.0.0.1:{words.port}")
        env = {"PHANTOSCOPE_URL": server.url}
        made = run_cli("pipeline", "create", names.pipeline, "--encoder", f"colour-{suffix}",
                       "--text-encoder", names.words, env=env)
        assert made.returncode == 0, made.stdout + made.stderr
        assert names.words in made.stdout
        client.applications.create(names.app, pipeline=names.pipeline)
        for name, colour in COLOURS.items():
            client.upload(names.app, png(solid(colour)), name=name)
        yield names
        client.applications.delete(names.app, force=True)
        client.pipelines.delete(names.pipeline)
        client.operators.delete(names.words)
        client.operators.delete(f"colour-{suffix}")


def _order(query) -> list[str]:
    return sorted(COLOURS, key=lambda name: -float(query @ image_vector(COLOURS[name])))


def test_the_client_creates_shows_and_searches_a_pair(client, paired):
    pipeline = client.pipelines.get(paired.pipeline)
    assert (pipeline.text_encoder, pipeline.dimension) == (paired.words, 3)
    assert {p.name: p.text_encoder for p in client.pipelines.list()}[paired.pipeline] == \
        paired.words
    hits = client.search(paired.app, text="red", topk=4)
    assert hits.matched_by == "text_encoder" and (hits.terms, hits.unmatched) == ((), ())
    assert [hit.name for hit in hits] == _order(text_vector("red"))
    query = png(solid(QUERY))
    mixed = client.search(paired.app, query, topk=4, text="red", weights=(0.5, 0.5))
    expected = _order(unit(text_vector("red") + image_vector(QUERY)))
    assert [hit.name for hit in mixed] == expected and expected[0] == "purple"
    assert [hit.name for hit in client.search(paired.app, query, text="red", weights=[1, 0],
                                              topk=4)] == [hit.name for hit in hits]
    assert [hit.name for hit in client.search(paired.app, query, text="red", weights=[0, 1],
                                              topk=4)] == \
        [hit.name for hit in client.search(paired.app, query, topk=4)]
    with pytest.raises(PhantoscopeError) as refused:
        client.search(paired.app, query, text="red", weights=[0, 0])
    assert (refused.value.status, refused.value.code) == (400, "INVALID_WEIGHTS")
    with pytest.raises(PhantoscopeError) as refused:
        client.search(paired.app, query, weights=[1, 1])
    assert refused.value.code == "INVALID_WEIGHTS"


def test_a_mixed_query_by_url_answers_as_by_file(client, paired, image_host, tmp_path):
    (tmp_path / "q.png").write_bytes(png(solid(QUERY)))
    by_url = client.search(paired.app, f"{image_host}/q.png", text="red", weights=(0.2, 0.8),
                           topk=4)
    by_file = client.search(paired.app, tmp_path / "q.png", text="red", weights=(0.2, 0.8),
                            topk=4)
    assert [(h.name, round(h.score, 5)) for h in by_url] == \
        [(h.name, round(h.score, 5)) for h in by_file]
    assert [h.name for h in by_url] == _order(unit(0.2 * text_vector("red")
                                                   + 0.8 * image_vector(QUERY)))


def test_the_cli_searches_by_words_an_image_or_both(server, paired, tmp_path):
    env = {"PHANTOSCOPE_URL": server.url, "COLUMNS": "250"}
    query = tmp_path / "q.png"
    query.write_bytes(png(solid(QUERY)))
    shown = run_cli("pipeline", "show", paired.pipeline, env=env)
    assert shown.returncode == 0 and "text encoder" in shown.stdout
    assert paired.words in shown.stdout
    words = run_cli("search", paired.app, "--text", "red", "--json", env=env)
    assert words.returncode == 0, words.stderr
    assert [hit["name"] for hit in json.loads(words.stdout)] == _order(text_vector("red"))
    both = run_cli("search", paired.app, str(query), "--text", "red", "--weights", "0.5,0.5",
                   "--json", env=env)
    assert both.returncode == 0, both.stderr
    assert [hit["name"] for hit in json.loads(both.stdout)] == \
        _order(unit(text_vector("red") + image_vector(QUERY)))
    image_only = run_cli("search", paired.app, str(query), "--text", "red", "--weights", "0,1",
                         "--json", env=env)
    assert [hit["name"] for hit in json.loads(image_only.stdout)] == _order(image_vector(QUERY))
    table = run_cli("search", paired.app, str(query), "--text", "red", env=env)
    assert table.returncode == 0 and "purple" in table.stdout
    for args, says in ((["--text", "red", "--weights", "1,0"], "give both"),
                       ([str(query), "--text", "red", "--weights", "a,b"], "two numbers"),
                       ([str(query), "--text", "red", "--weights", "1"], "two numbers")):
        refused = run_cli("search", paired.app, *args, env=env)
        assert refused.returncode == 2 and says in refused.stderr, refused.stderr
    refused = run_cli("search", paired.app, str(query), "--text", "red", "--weights", "-1,1",
                      env=env)
    assert refused.returncode != 0 and "INVALID_WEIGHTS" in refused.stdout + refused.stderr
