"""Retrieval metrics against hand computation on tiny ranked lists."""

from __future__ import annotations

import pytest

from phantoscope.evaluation.scoring import (
    average_precision_at_k,
    latency_summary,
    mean_scores,
    precision_at_k,
    query_scores,
    recall_at_k,
)

# Query of class "a"; the collection holds 4 other "a" images (R = 4). Answers, best first:
#   rank:  1  2  3  4  5
#   label: a  b  a  a  c      rel: 1 0 1 1 0      P@i at the hits: P@1 = 1, P@3 = 2/3, P@4 = 3/4
RANKED = ["a", "b", "a", "a", "c"]


@pytest.mark.parametrize(
    ("k", "ap", "recall", "precision"),
    [
        (1, 1.0, 1 / 4, 1.0),
        (2, (1 / 2) * 1, 1 / 4, 1 / 2),
        (3, (1 / 3) * (1 + 2 / 3), 2 / 4, 2 / 3),
        (5, (1 / 4) * (1 + 2 / 3 + 3 / 4), 3 / 4, 3 / 5),  # = 29/48
    ],
)
def test_hand_computed_case(k, ap, recall, precision):
    assert average_precision_at_k(RANKED, "a", k, relevant=4) == pytest.approx(ap)
    assert recall_at_k(RANKED, "a", k, relevant=4) == pytest.approx(recall)
    assert precision_at_k(RANKED, "a", k) == pytest.approx(precision)


def test_ap_at_5_is_29_48():
    assert average_precision_at_k(RANKED, "a", 5, relevant=4) == pytest.approx(29 / 48)


def test_perfect_top_k_scores_one_when_class_is_larger_than_k():
    # R = 5 > k = 3: divided by min(R, k) = 3, so three hits in three answers make 1.
    assert average_precision_at_k(["a", "a", "a"], "a", 3, relevant=5) == 1.0
    assert recall_at_k(["a", "a", "a"], "a", 3, relevant=5) == pytest.approx(3 / 5)


def test_no_relevant_items_leaves_the_query_undefined():
    ranked = ["b", "c", "b"]
    assert average_precision_at_k(ranked, "a", 3, relevant=0) is None
    assert recall_at_k(ranked, "a", 3, relevant=0) is None
    assert precision_at_k(ranked, "a", 3) == 0.0
    assert set(query_scores(ranked, "a", 0, [1, 3]).values()) == {None}


def test_relevant_items_exist_but_none_retrieved():
    scores = query_scores(["b", "c"], "a", 2, [1, 2])
    assert scores == {
        "AP@1": 0.0, "recall@1": 0.0, "precision@1": 0.0,
        "AP@2": 0.0, "recall@2": 0.0, "precision@2": 0.0,
    }


def test_k_larger_than_the_list_counts_missing_answers_as_not_relevant():
    # Two answers for k = 10, R = 3: one hit at rank 1.
    ranked = ["a", "b"]
    assert precision_at_k(ranked, "a", 10) == pytest.approx(1 / 10)
    assert recall_at_k(ranked, "a", 10, relevant=3) == pytest.approx(1 / 3)
    assert average_precision_at_k(ranked, "a", 10, relevant=3) == pytest.approx((1 / 3) * 1)
    assert average_precision_at_k([], "a", 10, relevant=3) == 0.0


def test_ties_are_broken_by_list_order():
    # Equal scores or not, the metrics see only the order given: the same two answers
    # score differently in the two orders.
    assert average_precision_at_k(["a", "b"], "a", 2, relevant=1) == 1.0
    assert average_precision_at_k(["b", "a"], "a", 2, relevant=1) == pytest.approx(1 / 2)
    assert precision_at_k(["a", "b"], "a", 2) == precision_at_k(["b", "a"], "a", 2) == 0.5


def test_labels_may_be_any_hashable_and_unknown_answers_are_not_relevant():
    assert average_precision_at_k([None, 7, 7], 7, 3, relevant=2) == pytest.approx(
        (1 / 2) * (1 / 2 + 2 / 3)
    )


def test_mean_over_queries_leaves_out_undefined_ones():
    ks = [1, 5]
    per_query = [
        query_scores(RANKED, "a", 4, ks),  # AP@1 = 1, AP@5 = 29/48
        query_scores(["b", "a"], "a", 1, ks),  # AP@1 = 0, AP@5 = 1/2
        query_scores(["b"], "c", 0, ks),  # R = 0: left out
    ]
    means = mean_scores(per_query, ks)
    assert means["mAP@1"] == pytest.approx((1 + 0) / 2)
    assert means["mAP@5"] == pytest.approx((29 / 48 + 1 / 2) / 2)
    assert means["recall@5"] == pytest.approx((3 / 4 + 1) / 2)
    assert means["precision@1"] == pytest.approx(1 / 2)
    assert means["precision@5"] == pytest.approx((3 / 5 + 1 / 5) / 2)
    assert mean_scores([query_scores(["b"], "c", 0, ks)], ks)["mAP@5"] is None


def test_k_must_be_positive():
    with pytest.raises(ValueError, match="k must be at least 1"):
        precision_at_k(["a"], "a", 0)


def test_latency_percentiles_interpolate_linearly():
    # 4 values: p95 lies at index 0.95 * 3 = 2.85 of the sorted list, between 30 and 40.
    assert latency_summary([40.0, 10.0, 30.0, 20.0]) == pytest.approx(
        {"p50": 25.0, "p95": 38.5, "mean": 25.0}
    )
    assert latency_summary([]) == {"p50": None, "p95": None, "mean": None}
