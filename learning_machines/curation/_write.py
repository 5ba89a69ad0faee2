"""Writing a learning with curation on the way in: exact and near duplicates, supersession.

Every built-in store saves rows through :func:`write_learning`, never with a bare ``PutLearning``,
so duplicates are refused and merges keep both provenances in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from ..db import (
    Change,
    Db,
    Learning,
    LearningFilter,
    ListLearnings,
    PutLearning,
)
from ..embedders import Embedder, aembed

__all__ = ["WritePolicy", "WriteResult", "write_learning"]


@dataclass(frozen=True, kw_only=True)
class WritePolicy:
    """How a store's writes are curated."""

    embed: bool = True
    """Embed ``search_text`` when the learning has no embedding yet."""
    dedupe_exact: bool = True
    """Refuse a second learning with the same normalised text in the same scope."""


@dataclass(frozen=True, kw_only=True)
class WriteResult:
    """What :func:`write_learning` did."""

    learning: Learning
    """The row now stored (the existing one, for a duplicate)."""
    action: Literal["created", "updated", "duplicate", "merged", "superseded"]
    """What happened."""
    affected: tuple[str, ...] = ()
    """Other learnings changed on the way (merged into, superseded)."""


async def write_learning(
    *,
    db: Db,
    embedder: Embedder | None,
    learning: Learning,
    change: Change,
    scope: LearningFilter,
    policy: WritePolicy | None = None,
) -> WriteResult:
    """Store ``learning`` unless the same thing is already known within ``scope``.

    ``scope`` is the filter of rows that count as "the same place" (same store, same namespace,
    same owner for private rows); duplicates are only ever looked for inside it.
    """
    policy = policy or WritePolicy()
    if policy.embed and embedder is not None and learning.embedding is None and learning.search_text:
        vector = (await aembed(embedder, [learning.search_text]))[0]
        learning = replace(
            learning, embedding=tuple(float(x) for x in vector), embedder=embedder.name
        )
    if policy.dedupe_exact and change.action == "create":
        same = await db.arun(
            ListLearnings(filter=replace(scope, content_hash=learning.content_hash), limit=1)
        )
        if same:
            return WriteResult(learning=same[0], action="duplicate")
    stored = await db.arun(PutLearning(learning=learning, change=change))
    return WriteResult(learning=stored, action="created" if change.action == "create" else "updated")
