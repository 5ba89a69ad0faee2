"""Curation: deduplication, supersession, decay, pruning, history, forget and export."""

from ._dates import ResolvedDate, annotate_dates, resolve_date, resolve_dates
from ._decay import (
    DEFAULT_POLICIES,
    DEFAULT_POLICY,
    NEAR_DUPLICATE_THRESHOLD,
    CurationPolicy,
    policy_for,
    rerank,
    retention_score,
)
from ._similar import cosine, distinguishing, is_substitution, richness, value_conflict
from ._write import WritePolicy, WriteResult, write_learning

__all__ = [
    "DEFAULT_POLICIES",
    "DEFAULT_POLICY",
    "NEAR_DUPLICATE_THRESHOLD",
    "CurationPolicy",
    "ResolvedDate",
    "WritePolicy",
    "WriteResult",
    "annotate_dates",
    "cosine",
    "distinguishing",
    "is_substitution",
    "policy_for",
    "rerank",
    "resolve_date",
    "resolve_dates",
    "retention_score",
    "richness",
    "value_conflict",
    "write_learning",
]
