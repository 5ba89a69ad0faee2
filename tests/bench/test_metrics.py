import math

import pytest

from learning_machines.bench import aggregate, ndcg_at_k, recall_at_k, score_question


def test_recall_at_k_counts_fraction_of_evidence_found():
    ranked = ["D1:1", "D1:2", "D2:3"]
    assert recall_at_k(ranked, ["D1:2"], 1) == 0.0
    assert recall_at_k(ranked, ["D1:2"], 2) == 1.0
    assert recall_at_k(ranked, ["D1:2", "D9:9"], 10) == 0.5
    assert recall_at_k(ranked, [], 10) == 0.0


def test_ndcg_binary_relevance():
    assert ndcg_at_k(["a", "b"], ["a"]) == 1.0
    assert ndcg_at_k(["x", "a"], ["a"]) == pytest.approx(1 / math.log2(3))
    # two relevant, one found at rank 1: DCG 1, ideal 1 + 1/log2(3)
    assert ndcg_at_k(["a", "x"], ["a", "b"]) == pytest.approx(1 / (1 + 1 / math.log2(3)))
    assert ndcg_at_k(["x"] * 10 + ["a"], ["a"], 10) == 0.0
    assert ndcg_at_k(["a"], []) == 0.0


def test_score_question_session_level():
    s = score_question(2, ["D1:5", "D3:1"], ["D1:2", "D3:1"])
    assert s.recall == {1: 0.0, 5: 0.5, 10: 0.5}
    assert s.session_recall10 == 1.0  # both sessions hit, though D1:2 itself was missed
    assert s.category == 2


def test_aggregate_overall_and_per_category():
    scores = [
        score_question(1, ["a"], ["a"]),
        score_question(1, ["b"], ["a"]),
        score_question(4, ["a"], ["a"]),
    ]
    agg = aggregate(scores)
    assert agg["overall"]["n"] == 3
    assert agg["overall"]["R@1"] == pytest.approx(2 / 3)
    assert agg["1"]["R@10"] == 0.5
    assert agg["4"]["NDCG@10"] == 1.0
    assert set(agg) == {"overall", "1", "4"}
