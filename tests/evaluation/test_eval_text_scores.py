"""Text-query scores against hand computation, and reading a set's queries.json."""

from __future__ import annotations

import json

import pytest

from phantoscope.evaluation.dataset import DatasetError, load_text_queries
from phantoscope.evaluation.text import TextQueryRecord, TextRun


def record(ranked_labels: list[str | None], relevant_classes: set[str], relevant: int,
           text: str = "vehicle") -> TextQueryRecord:
    return TextQueryRecord(
        text=text, relevant_classes=frozenset(relevant_classes), relevant=relevant,
        ranked_ids=list(range(len(ranked_labels))), ranked_labels=ranked_labels,
        terms=[(text, 67)], unmatched=[], latency_ms=1.0,
    )


def test_every_class_a_query_lists_is_relevant():
    # "vehicle": both motorcycles and the rocket are relevant, 7 images each: R = 21.
    #   rank:  1     2      3     4     5       rel: 1 1 0 1 0 (None: not uploaded here)
    query = record(["moto", "rocket", "cat", "moto", None], {"moto", "rocket"}, 21)
    scores = query.scores([5, 10])
    assert scores["precision@5"] == pytest.approx(3 / 5)
    assert scores["precision@10"] == pytest.approx(3 / 10)
    assert scores["AP@5"] == pytest.approx((1 + 1 + 3 / 4) / 5)  # divided by min(R, k) = 5
    assert scores["AP@10"] == pytest.approx((1 + 1 + 3 / 4) / 10)
    assert scores["recall@10"] == pytest.approx(3 / 21)


def test_a_query_that_found_nothing_scores_zero():
    scores = record([], {"astronaut"}, 7, text="astronaut").scores([5, 10])
    assert scores == {"AP@5": 0.0, "recall@5": 0.0, "precision@5": 0.0,
                      "AP@10": 0.0, "recall@10": 0.0, "precision@10": 0.0}


def test_the_run_means_and_its_json():
    run = TextRun("p", "eval-x", [5])
    run.queries += [record(["cat"] * 5, {"cat"}, 7, text="cat"),
                    record([], {"moon"}, 7, text="moon"),
                    record([], {"gone"}, 0, text="nothing indexed")]  # R = 0: not in means
    assert run.metrics() == {"mAP@5": 0.5, "recall@5": pytest.approx(5 / 14),
                             "precision@5": 0.5}
    body = run.to_json()
    assert body["queries_scored"] == 2
    assert [query["text"] for query in body["queries"]] == ["cat", "moon", "nothing indexed"]
    assert body["queries"][0]["terms"] == [{"word": "cat", "classes": 67}]
    json.dumps(body)


def test_queries_json_maps_words_to_classes(tmp_path):
    (tmp_path / "queries.json").write_text(json.dumps({"cat": ["chelsea"],
                                                       "vehicle": ["moto", "rocket"]}))
    assert load_text_queries(tmp_path, {"chelsea", "moto", "rocket", "coins"}) == {
        "cat": frozenset({"chelsea"}), "vehicle": frozenset({"moto", "rocket"})}


@pytest.mark.parametrize(("content", "message"), [
    (None, "queries.json is missing"),
    ("{not json", "not readable JSON"),
    ("[]", "must be a JSON object"),
    ("{}", "must be a JSON object"),
    ('{"cat": []}', "non-empty list of class names"),
    ('{"cat": "chelsea"}', "non-empty list of class names"),
    ('{"cat": [1]}', "non-empty list of class names"),
    ('{" ": ["chelsea"]}', "needs words"),
    ('{"cat": ["chelsea", "tiger"]}', "names classes with no images in"),
])
def test_bad_queries_files_are_refused_with_what_to_fix(tmp_path, content, message):
    if content is not None:
        (tmp_path / "queries.json").write_text(content)
    with pytest.raises(DatasetError, match=message):
        load_text_queries(tmp_path, {"chelsea"})
