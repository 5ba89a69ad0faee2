"""What a curation run did: its actions and report (data only)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ._judge import JudgeCost

__all__ = ["CurationAction", "CurationReport"]


@dataclass(frozen=True, kw_only=True)
class CurationAction:
    """One thing a curation run did (or would do, in a dry run)."""

    action: Literal["merge", "supersede", "archive", "expire"]
    """``merge`` (this learning was folded into ``into``), ``supersede`` (replaced by ``into``),
    ``archive``, or ``expire`` (a proposal)."""
    id: str
    """The learning (or proposal) acted on."""
    reason: str
    """Why, in words."""
    into: str | None = None
    """The learning it was merged into or superseded by."""
    learning_type: str | None = None
    """Its learning type."""


@dataclass(frozen=True, kw_only=True)
class CurationReport:
    """What a curation run merged, superseded, archived and expired."""

    merged: list[CurationAction] = field(default_factory=list)
    """Learnings folded into another (the other keeps both provenances)."""
    superseded: list[CurationAction] = field(default_factory=list)
    """Older facts replaced by newer ones with the same conflict key."""
    archived: list[CurationAction] = field(default_factory=list)
    """Learnings archived for low retention or to respect a cap."""
    expired: list[CurationAction] = field(default_factory=list)
    """Proposals expired."""
    scopes: int = 0
    """Scopes examined."""
    examined: int = 0
    """Active learnings examined."""
    dry_run: bool = False
    """``True`` when nothing was written."""
    judge: JudgeCost | None = None
    """What the near-duplicate judge was asked and cost (``None``: no judge configured)."""

    @property
    def actions(self) -> list[CurationAction]:
        """Every action, in the order merged, superseded, archived, expired."""
        return [*self.merged, *self.superseded, *self.archived, *self.expired]

    @property
    def changed(self) -> int:
        """Learnings changed (merged, superseded or archived); expired proposals not counted."""
        return len(self.merged) + len(self.superseded) + len(self.archived)

    def summary(self) -> str:
        """One line for people: what was examined, and how many of each change."""
        verb = "would change" if self.dry_run else "changed"
        return (
            f"curation examined {self.examined} learnings in {self.scopes} scopes and {verb} "
            f"{self.changed}: {len(self.merged)} merged, {len(self.superseded)} superseded, "
            f"{len(self.archived)} archived; {len(self.expired)} proposals expired"
            + (
                f"; judge {self.judge.judge}: {self.judge.same}/{self.judge.pairs} pairs the same "
                f"in {self.judge.calls} call(s), "
                f"{self.judge.input_tokens + self.judge.output_tokens} tokens"
                if self.judge is not None
                else ""
            )
        )
