"""Decay: how much a learning is still worth keeping, and ranking that uses it.

Pure functions over :class:`~learning_machines.db.Learning` rows; no I/O. The signals are the ones
every row carries: recency (``last_recalled_at`` or ``updated_at``), ``recall_count``,
``feedback`` and the outcome evidence behind it (``helpful``/``harmful``). See
``docs/curation.md`` for the defaults and how to tune them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from ..db import Learning, ScoredLearning
from ..exceptions import ConfigurationError
from ._evidence import evidence_score

__all__ = [
    "DEFAULT_POLICIES",
    "DEFAULT_POLICY",
    "NEAR_DUPLICATE_THRESHOLD",
    "VERBATIM_TYPES",
    "CurationPolicy",
    "check_policies",
    "policy_for",
    "rerank",
    "retention_score",
]

#: Cosine similarity at or above which two learnings of one scope are the same thing, calibrated
#: for the default embedder (all-MiniLM-L6-v2) by ``benchmarks/calibrate_dedup.py``; see
#: :mod:`learning_machines.curation._write` for the measured figures.
NEAR_DUPLICATE_THRESHOLD = 0.88

#: Learning types whose rows are what was said, word for word: curation never merges or
#: supersedes them (two people saying "ok" are two episodes), whatever their policy's threshold,
#: unless a policy says ``deduplicate=True`` explicitly.
VERBATIM_TYPES = frozenset({"episode"})

# Store slot names people may mistake for learning types (policies are keyed by learning type).
_SLOT_TYPES: Mapping[str, tuple[str, ...]] = {
    "episodic_memory": ("episode",),
    "decision_log": ("decision",),
    "entity_memory": ("entity", "entity_fact", "entity_event", "entity_relation"),
}


@dataclass(frozen=True, kw_only=True)
class CurationPolicy:
    """How one kind of learning decays, is pruned and deduplicated. All fields have defaults."""

    half_life_days: float | None = 90.0
    """Days after which an unused learning's recency halves; ``None``: it never decays."""
    recall_weight: float = 0.5
    """How much recalls keep a learning alive: usage is ``1 - 1/(1 + w·ln(1 + recalls))``."""
    feedback_weight: float = 0.25
    """Added to the score per unit of ``tanh(feedback)`` (negative feedback lowers it)."""
    archive_below: float | None = 0.05
    """Learnings whose retention score falls below this are archived; ``None``: never."""
    max_per_scope: int | None = None
    """At most this many active learnings per scope; the weakest are archived first."""
    near_duplicate_threshold: float = NEAR_DUPLICATE_THRESHOLD
    """Cosine at or above which two learnings of one scope are merged by curation."""
    min_age_days: float = 1.0
    """Never archive a learning younger than this (new facts have had no chance to be used)."""
    proposal_ttl_days: float | None = 14.0
    """Pending proposals older than this (without ``expires_at``) are expired; ``None``: never."""
    harmful_min_evidence: float | None = None
    """Archive a learning once this much harmful evidence (feedback) is credited to it and its
    helpfulness falls under :attr:`harmful_below`; ``None``: never archive on evidence."""
    harmful_below: float = 0.25
    """Helpfulness (Beta posterior mean, see ``curation._evidence``) under which harmful evidence
    archives a learning."""
    deduplicate: bool | None = None
    """Whether curation runs merge duplicates and supersede rows sharing a conflict key.
    ``None``: yes, except for :data:`VERBATIM_TYPES` (episodes), which are never merged."""

    def deduplicates(self, learning_type: str) -> bool:
        """Whether a curation run merges and supersedes rows of ``learning_type``."""
        if self.deduplicate is not None:
            return self.deduplicate
        return learning_type not in VERBATIM_TYPES


#: The policy of a learning type not in :data:`DEFAULT_POLICIES`.
DEFAULT_POLICY = CurationPolicy()

#: Defaults per built-in learning type. Profiles and entities describe stable facts and never
#: decay; episodes and session summaries lose value fastest; knowledge and facts sit between.
DEFAULT_POLICIES: Mapping[str, CurationPolicy] = {
    "user_profile": CurationPolicy(half_life_days=None, archive_below=None),
    "entity": CurationPolicy(half_life_days=None, archive_below=None),
    "entity_fact": CurationPolicy(half_life_days=365.0),
    "entity_event": CurationPolicy(half_life_days=180.0),
    "entity_relation": CurationPolicy(half_life_days=365.0),
    "learned_knowledge": CurationPolicy(
        half_life_days=180.0, max_per_scope=10_000, harmful_min_evidence=3.0
    ),
    "episode": CurationPolicy(half_life_days=60.0, max_per_scope=2_000, deduplicate=False),
    "session_context": CurationPolicy(half_life_days=30.0),
    # Phase 2 records: a decision and a feedback signal are events, kept (and never merged);
    # lessons are retired by their own evidence; a lesson candidate holds support counts.
    "decision": CurationPolicy(
        half_life_days=None, archive_below=None, max_per_scope=20_000, deduplicate=False
    ),
    "feedback_signal": CurationPolicy(half_life_days=None, archive_below=None, deduplicate=False),
    "lesson": CurationPolicy(half_life_days=None, archive_below=None, harmful_min_evidence=2.0),
    "lesson_candidate": CurationPolicy(half_life_days=None, archive_below=None, deduplicate=False),
}


def policy_for(
    learning_type: str, policies: Mapping[str, CurationPolicy] | None = None
) -> CurationPolicy:
    """Return the policy of ``learning_type``: from ``policies``, else the default for it."""
    if policies is not None and learning_type in policies:
        return policies[learning_type]
    return DEFAULT_POLICIES.get(learning_type, DEFAULT_POLICY)


def check_policies(policies: Mapping[str, CurationPolicy]) -> None:
    """Refuse policies that would silently never apply (keyed by a store slot, or not policies).

    Policies are keyed by *learning type* (``"episode"``), not by the machine's store slot
    (``"episodic_memory"``); a policy under a slot name would match no row.
    """
    for key, policy in policies.items():
        if key in _SLOT_TYPES:
            types = ", ".join(repr(t) for t in _SLOT_TYPES[key])
            raise ConfigurationError(
                f"curation policies are keyed by learning type, and {key!r} is a store slot: "
                f"key the policy by {types} instead"
            )
        if not isinstance(policy, CurationPolicy):
            raise ConfigurationError(
                f"the curation policy for {key!r} is a {type(policy).__name__}; pass a "
                "CurationPolicy(...)"
            )


def _last_used(learning: Learning) -> datetime:
    times = [learning.updated_at, learning.created_at]
    if learning.last_recalled_at is not None:
        times.append(learning.last_recalled_at)
    return max(times)


def retention_score(learning: Learning, *, now: datetime, policy: CurationPolicy) -> float:
    """How much ``learning`` is still worth keeping, in ``[0, 1]``.

    ``recency = 0.5 ** (days since last used / half_life_days)`` (last used: the latest of
    ``last_recalled_at``, ``updated_at``, ``created_at``); recalls then fill part of what recency
    lost: ``score = recency + (1 - recency) · usage``; feedback adds
    ``feedback_weight · tanh(feedback)``. The result is clipped to ``[0, 1]``.
    """
    if policy.half_life_days is None:
        recency = 1.0
    else:
        days = max(0.0, (now - _last_used(learning)).total_seconds() / 86_400)
        recency = 0.5 ** (days / policy.half_life_days)
    usage = 1.0 - 1.0 / (1.0 + policy.recall_weight * math.log1p(max(0, learning.recall_count)))
    score = recency + (1.0 - recency) * usage
    score += policy.feedback_weight * math.tanh(learning.feedback)
    return min(1.0, max(0.0, score))


def rerank(
    scored: Sequence[ScoredLearning],
    *,
    now: datetime,
    policy: CurationPolicy | Mapping[str, CurationPolicy] | None = None,
    weight: float = 0.2,
    evidence_weight: float = 0.0,
) -> list[ScoredLearning]:
    """Blend search relevance with retention and outcome evidence, and sort, best first.

    Relevance scores (fused, comparable only within one search) are min-max scaled to ``[0, 1]``;
    the new score is ``(1 - weight) · relevance + weight · retention + evidence_weight · e`` where
    ``e`` in ``(-1, 1)`` is the learning's :func:`~learning_machines.curation.evidence_score`
    (0 without feedback). The evidence term is bounded by ``evidence_weight``: a learning that
    misled sinks, but a much more relevant one is never buried by feedback alone. ``policy`` is
    one policy, or a mapping per learning type (missing types use their defaults). ``weight=0``
    and ``evidence_weight=0`` keep the search order (ties by retention).
    """
    if not scored:
        return []
    low = min(s.score for s in scored)
    high = max(s.score for s in scored)
    span = high - low
    out: list[tuple[float, float, ScoredLearning]] = []
    for s in scored:
        if policy is None or isinstance(policy, Mapping):
            p = policy_for(s.learning.learning_type, policy)
        else:
            p = policy
        relevance = (s.score - low) / span if span > 0 else 1.0
        retention = retention_score(s.learning, now=now, policy=p)
        blended = (1.0 - weight) * relevance + weight * retention
        if evidence_weight:
            blended += evidence_weight * evidence_score(s.learning)
        out.append((blended, retention, replace(s, score=blended)))
    out.sort(key=lambda t: (-t[0], -t[1], t[2].learning.id))
    return [t[2] for t in out]
