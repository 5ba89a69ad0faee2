from datetime import UTC, datetime, timedelta

from learning_machines.curation import (
    DEFAULT_POLICIES,
    CurationPolicy,
    policy_for,
    rerank,
    retention_score,
)
from learning_machines.db import Learning, ScoredLearning

NOW = datetime(2026, 6, 1, tzinfo=UTC)
POLICY = CurationPolicy(half_life_days=30.0)


def row(days_old: float, *, recalls: int = 0, feedback: float = 0.0, text: str = "x") -> Learning:
    t = NOW - timedelta(days=days_old)
    return Learning(
        learning_type="note", search_text=text, created_at=t, updated_at=t,
        recall_count=recalls, feedback=feedback,
    )  # fmt: skip


def test_recency_halves_every_half_life() -> None:
    assert retention_score(row(0), now=NOW, policy=POLICY) == 1.0
    assert abs(retention_score(row(30), now=NOW, policy=POLICY) - 0.5) < 1e-9
    assert abs(retention_score(row(60), now=NOW, policy=POLICY) - 0.25) < 1e-9


def test_recalls_and_feedback_keep_a_learning_alive() -> None:
    plain = retention_score(row(90), now=NOW, policy=POLICY)
    recalled = retention_score(row(90, recalls=20), now=NOW, policy=POLICY)
    liked = retention_score(row(90, feedback=2.0), now=NOW, policy=POLICY)
    disliked = retention_score(row(90, feedback=-2.0), now=NOW, policy=POLICY)
    assert recalled > plain
    assert liked > plain
    assert disliked == 0.0 < plain


def test_a_recent_recall_counts_as_use() -> None:
    old = row(120)
    used = Learning(**{**old.__dict__, "last_recalled_at": NOW - timedelta(days=1)})
    assert (
        retention_score(used, now=NOW, policy=POLICY)
        > 0.9
        > retention_score(old, now=NOW, policy=POLICY)
    )


def test_no_half_life_never_decays() -> None:
    assert retention_score(row(10_000), now=NOW, policy=CurationPolicy(half_life_days=None)) == 1.0
    assert policy_for("user_profile").half_life_days is None
    assert policy_for("unknown_type") == CurationPolicy()
    custom = CurationPolicy(half_life_days=1.0)
    assert policy_for("user_profile", {"user_profile": custom}) is custom
    assert set(DEFAULT_POLICIES) >= {"user_profile", "learned_knowledge", "episode"}


def test_rerank_blends_relevance_and_retention() -> None:
    stale = ScoredLearning(learning=row(365, text="stale"), score=1.00)
    fresh = ScoredLearning(learning=row(0, text="fresh"), score=0.95)
    far = ScoredLearning(learning=row(0, text="far"), score=0.0)
    kept = rerank([stale, fresh, far], now=NOW, policy=POLICY, weight=0.0)
    assert [s.learning.search_text for s in kept] == ["stale", "fresh", "far"]
    ranked = rerank([stale, fresh, far], now=NOW, policy=POLICY, weight=0.3)
    assert [s.learning.search_text for s in ranked] == ["fresh", "stale", "far"]
    assert ranked[0].score > ranked[1].score
    assert rerank([], now=NOW) == []


def _scored(
    text: str, score: float, *, helpful: float = 0.0, harmful: float = 0.0
) -> ScoredLearning:
    learning = Learning(
        learning_type="note", search_text=text, created_at=NOW, updated_at=NOW,
        helpful=helpful, harmful=harmful, feedback=helpful - harmful,
    )  # fmt: skip
    return ScoredLearning(learning=learning, score=score)


def test_outcome_evidence_moves_ranking_within_its_bound() -> None:
    misled = _scored("misled", 1.0, harmful=4.0)
    runner_up = _scored("runner up", 0.9)
    far = _scored("far", 0.0)
    order = rerank([misled, runner_up, far], now=NOW, weight=0.0, evidence_weight=0.3)
    assert [s.learning.search_text for s in order] == ["runner up", "misled", "far"]
    # Bounded: evidence alone never lifts the least relevant result over a clearly better one.
    praised = _scored("praised but far", 0.0, helpful=100.0)
    order = rerank([runner_up, praised, far], now=NOW, weight=0.0, evidence_weight=0.3)
    assert [s.learning.search_text for s in order] == ["runner up", "praised but far", "far"]
    assert order[0].score - order[1].score >= 1.0 - 0.3  # it rose by less than its bound
    # Without evidence the order is the search order.
    plain = rerank([runner_up, far], now=NOW, weight=0.0, evidence_weight=0.3)
    assert [s.learning.search_text for s in plain] == ["runner up", "far"]


def test_helpfulness_is_a_beta_posterior_mean() -> None:
    from learning_machines.curation import evidence_score, helpfulness, strongly_harmful

    fresh = row(0)
    assert helpfulness(fresh) == 0.5
    assert evidence_score(fresh) == 0.0
    bad = Learning(learning_type="note", search_text="x", helpful=1.0, harmful=4.0)
    assert helpfulness(bad) == 2 / 7
    assert not strongly_harmful(bad, min_evidence=5.0, below=0.5)
    assert strongly_harmful(bad, min_evidence=3.0, below=0.3)
