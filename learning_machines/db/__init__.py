"""Backends: where learnings live.

``SqliteDb`` is the embedded default (a file, or ``":memory:"``); ``PostgresDb`` is the production
backend (PostgreSQL full-text search and pgvector; ``pip install "learning-machines[postgres]"``).
Both implement the same contract, :class:`Db`: operations as typed data run in one transaction.
"""

from typing import TYPE_CHECKING, Any

from ._base import Db
from ._clean import MAX_KEY_CHARS, MAX_SEARCH_TEXT_CHARS, MAX_TEXT_CHARS
from ._fusion import zscore_fuse
from ._ops import (
    AddEvidence,
    AppendMessage,
    ClaimWork,
    CountLearnings,
    CountWork,
    DeleteLearnings,
    EnqueueWork,
    FailWork,
    FinishWork,
    GetLearnings,
    GetMessage,
    GetProposal,
    ListEmbedders,
    ListHistory,
    ListLearnings,
    ListMessages,
    ListProposals,
    ListScopes,
    ListUserMessages,
    ListWork,
    LocateLearnings,
    MarkRecalled,
    MatchIds,
    Op,
    PatchContent,
    PurgeUser,
    PutHistory,
    PutLearning,
    PutProposal,
    ReleaseWork,
    ScopeCount,
    SearchLearnings,
    SetEmbeddings,
    SetEvidence,
    UpdateWork,
)
from ._records import (
    GLOBAL_NAMESPACE,
    PRIVATE_NAMESPACE,
    Change,
    HistoryEntry,
    Learning,
    LearningFilter,
    LearningLocation,
    Message,
    PendingWork,
    Proposal,
    ScoredLearning,
    content_hash,
    new_id,
    normalize_text,
    stable_id,
    utcnow,
)
from ._sqlite import SqliteDb

if TYPE_CHECKING:
    from ._postgres import PostgresDb


def __getattr__(name: str) -> Any:
    # PostgresDb needs the optional ``postgres`` extra (psycopg); import it only when asked for,
    # so ``import learning_machines.db`` works with the base install.
    if name == "PostgresDb":
        from ._postgres import PostgresDb

        return PostgresDb
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "GLOBAL_NAMESPACE",
    "MAX_KEY_CHARS",
    "MAX_SEARCH_TEXT_CHARS",
    "MAX_TEXT_CHARS",
    "PRIVATE_NAMESPACE",
    "AddEvidence",
    "AppendMessage",
    "Change",
    "ClaimWork",
    "CountLearnings",
    "CountWork",
    "Db",
    "DeleteLearnings",
    "EnqueueWork",
    "FailWork",
    "FinishWork",
    "GetLearnings",
    "GetMessage",
    "GetProposal",
    "HistoryEntry",
    "Learning",
    "LearningFilter",
    "LearningLocation",
    "ListEmbedders",
    "ListHistory",
    "ListLearnings",
    "ListMessages",
    "ListProposals",
    "ListScopes",
    "ListUserMessages",
    "ListWork",
    "LocateLearnings",
    "MarkRecalled",
    "MatchIds",
    "Message",
    "Op",
    "PatchContent",
    "PendingWork",
    "PostgresDb",
    "Proposal",
    "PurgeUser",
    "PutHistory",
    "PutLearning",
    "PutProposal",
    "ReleaseWork",
    "ScopeCount",
    "ScoredLearning",
    "SearchLearnings",
    "SetEmbeddings",
    "SetEvidence",
    "SqliteDb",
    "UpdateWork",
    "content_hash",
    "new_id",
    "normalize_text",
    "stable_id",
    "utcnow",
    "zscore_fuse",
]
