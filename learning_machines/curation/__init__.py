"""Curation: deduplication, supersession, decay, pruning, history, forget and export."""

from ._curator import CURATION_ACTIONS, CurationAction, CurationReport, Curator
from ._dates import ResolvedDate, annotate_dates, resolve_date, resolve_dates
from ._decay import (
    DEFAULT_POLICIES,
    DEFAULT_POLICY,
    NEAR_DUPLICATE_THRESHOLD,
    VERBATIM_TYPES,
    CurationPolicy,
    policy_for,
    rerank,
    retention_score,
)
from ._export import EXPORT_FORMAT, EXPORT_VERSION, export_user, import_user
from ._judge import (
    DEFAULT_JUDGE_BAND,
    DedupJudge,
    JudgeCost,
    JudgePair,
    JudgeVerdict,
    ModelJudge,
    band_pairs,
)
from ._similar import cosine, distinguishing, is_substitution, richness, value_conflict
from ._write import (
    Confirm,
    WritePolicy,
    WriteResult,
    merge_learnings,
    model_confirmation,
    supersede_learning,
    write_learning,
)

__all__ = [
    "CURATION_ACTIONS",
    "DEFAULT_JUDGE_BAND",
    "DEFAULT_POLICIES",
    "DEFAULT_POLICY",
    "EXPORT_FORMAT",
    "EXPORT_VERSION",
    "NEAR_DUPLICATE_THRESHOLD",
    "VERBATIM_TYPES",
    "Confirm",
    "CurationAction",
    "CurationPolicy",
    "CurationReport",
    "Curator",
    "DedupJudge",
    "JudgeCost",
    "JudgePair",
    "JudgeVerdict",
    "ModelJudge",
    "ResolvedDate",
    "WritePolicy",
    "WriteResult",
    "annotate_dates",
    "band_pairs",
    "cosine",
    "distinguishing",
    "export_user",
    "import_user",
    "is_substitution",
    "merge_learnings",
    "model_confirmation",
    "policy_for",
    "rerank",
    "resolve_date",
    "resolve_dates",
    "retention_score",
    "richness",
    "supersede_learning",
    "value_conflict",
    "write_learning",
]
