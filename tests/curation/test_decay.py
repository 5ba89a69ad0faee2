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
