"""Curation: deduplication, supersession, decay, pruning, history, forget and export.

The layers above (feedback, self-improvement, custom stores) plug into ``forget`` with
:func:`register_forget_step`; curation imports nothing from them.
"""

from ._curator import CURATION_ACTIONS, Curator
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
from ._evidence import evidence_score, has_evidence, helpfulness, strongly_harmful
from ._export import EXPORT_FORMAT, EXPORT_VERSION, export_user, import_user
from ._forget import ForgetRequest, ForgetStep, forget_steps, register_forget_step
from ._judge import (
    DEFAULT_JUDGE_BAND,
    DedupJudge,
    JudgeCost,
    JudgePair,
    JudgeVerdict,
    ModelJudge,
    band_pairs,
)
from ._report import CurationAction, CurationReport
from ._similar import cosine, distinguishing, is_substitution, richness, value_conflict
from ._write import (
    CONFLICT_ATTEMPTS,
    Confirm,
    WritePolicy,
    WriteResult,
    merge_learnings,
    model_confirmation,
    retry_conflicts,
    supersede_learning,
    write_learning,
)

__all__ = [
    "CONFLICT_ATTEMPTS",
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
    "ForgetRequest",
    "ForgetStep",
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
    "evidence_score",
    "export_user",
    "forget_steps",
    "has_evidence",
    "helpfulness",
    "import_user",
    "is_substitution",
    "merge_learnings",
    "model_confirmation",
    "policy_for",
    "register_forget_step",
    "rerank",
    "resolve_date",
    "resolve_dates",
    "retention_score",
    "retry_conflicts",
    "richness",
    "strongly_harmful",
    "supersede_learning",
    "value_conflict",
    "write_learning",
]
