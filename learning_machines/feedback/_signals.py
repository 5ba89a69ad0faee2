"""Feedback signals and what a turn's signals add up to (pure, no I/O).

A signal says how one turn went, from one rater: a person (``explicit``), the model reading the
user's next message (``implicit``), or a rule that needs no model (``rule:tool_error``,
``rule:repeat``). Each kind has a trust level. A turn's outcome is computed from all its
signals, and explicit signals beat implicit ones: when a person rated the turn, only what people
said counts. A rater's new signal on a turn replaces their earlier one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, get_args

from .._turn_record import ToolRun
from ..curation._turn_ids import SIGNAL_TYPE, signal_id
from ..db import PRIVATE_NAMESPACE, Learning, normalize_text, utcnow
from ..exceptions import ValidationError
from ..stores._decision_model import Outcome

__all__ = [
    "DEFAULT_TRUST",
    "SIGNAL_TYPE",
    "FeedbackSignal",
    "SignalSource",
    "TurnOutcome",
    "aggregate",
    "check_score",
    "is_repeat",
    "signal_id",
    "tool_error_signal",
]

SignalSource = Literal["explicit", "implicit", "rule:tool_error", "rule:repeat"]
_SOURCES: tuple[str, ...] = get_args(SignalSource)

#: How much each kind of signal is trusted (a multiplier of its score).
DEFAULT_TRUST: Mapping[str, float] = {
    "explicit": 1.0,
    "implicit": 0.6,
    "rule:repeat": 0.5,
    "rule:tool_error": 0.5,
}

#: Characters kept of a signal's comment.
MAX_COMMENT_CHARS = 2_000


def check_score(score: object) -> float:
    """``score`` as a float in ``[-1, 1]``; :class:`ValidationError` saying how to fix it."""
    if isinstance(score, bool) or not isinstance(score, int | float):
        raise ValidationError(
            f"a feedback score is a number from -1 (bad) to 1 (good), not {score!r}; "
            "thumbs up is 1, thumbs down is -1"
        )
    value = float(score)
    if not math.isfinite(value) or not -1.0 <= value <= 1.0:
        raise ValidationError(
            f"a feedback score is a number from -1 (bad) to 1 (good); {score!r} is outside it"
        )
    return value


@dataclass(frozen=True, kw_only=True)
class FeedbackSignal:
    """One rater's verdict on one turn."""

    turn_id: str
    """The turn rated."""
    user_id: str
    """The user whose turn it is (the signal is private to them)."""
    session_id: str | None
    """The turn's session."""
    source: SignalSource
    """``explicit``, ``implicit``, ``rule:tool_error`` or ``rule:repeat``."""
    rater: str
    """Who rated: ``explicit:<who>``, ``implicit:model`` or the rule's name."""
    score: float
    """From -1 (bad) to 1 (good)."""
    trust: float
    """How much this kind of signal is trusted."""
    comment: str | None = None
    """What the rater said."""
    agent_id: str | None = None
    """The turn's agent."""
    created_at: datetime = field(default_factory=utcnow)
    """When it was given."""

    def __post_init__(self) -> None:
        if self.source not in _SOURCES:
            raise ValidationError(
                f"unknown feedback source {self.source!r}; use one of {', '.join(_SOURCES)}"
            )

    @property
    def id(self) -> str:
        """Its id (one per turn and rater)."""
        return signal_id(self.turn_id, self.rater)

    def to_learning(self) -> Learning:
        """The row it is kept in: private to the turn's user, indexed by the turn."""
        return Learning(
            id=self.id,
            learning_type=SIGNAL_TYPE,
            namespace=PRIVATE_NAMESPACE,
            user_id=self.user_id,
            session_id=self.session_id,
            agent_id=self.agent_id,
            entity_id=self.turn_id,
            content={
                "turn_id": self.turn_id,
                "source": self.source,
                "rater": self.rater,
                "score": self.score,
                "trust": self.trust,
                "comment": self.comment,
            },
            search_text=f"{self.source} {self.score:+.2f} {self.comment or ''}".strip(),
            created_at=self.created_at,
            updated_at=self.created_at,
            provenance={"user_id": self.user_id, "turn_id": self.turn_id, "rater": self.rater},
        )

    @classmethod
    def from_learning(cls, row: Learning) -> FeedbackSignal:
        """Read a stored signal back."""
        c = row.content
        return cls(
            turn_id=str(c["turn_id"]),
            user_id=str(row.user_id),
            session_id=row.session_id,
            agent_id=row.agent_id,
            source=c["source"],
            rater=str(c["rater"]),
            score=float(c["score"]),
            trust=float(c["trust"]),
            comment=c.get("comment"),
            created_at=row.created_at,
        )


@dataclass(frozen=True, kw_only=True)
class TurnOutcome:
    """What a turn's signals add up to: evidence to credit, and how to say it."""

    helpful: float
    """Evidence that the turn went well (credited to what it recalled)."""
    harmful: float
    """Evidence that it went wrong."""
    score: float
    """From -1 to 1: the trust-weighted verdict of the signals that count."""
    source: str
    """The kind of signal that decided (explicit beats the others)."""
    comment: str | None
    """The most trusted comment among them."""
    signals: int
    """Signals on the turn."""

    def summary(self) -> Outcome:
        """The outcome as the decision record keeps it."""
        return Outcome(
            score=round(self.score, 4),
            source=self.source,
            comment=self.comment,
            signals=self.signals,
        )


def aggregate(signals: Iterable[FeedbackSignal]) -> TurnOutcome | None:
    """The outcome of a turn from its signals (``None`` without any).

    Explicit signals, when there are any, are the only ones that count (their mean). Otherwise
    the signals' trust-weighted mean, scaled by the highest trust among them, so a turn judged
    only by a rule never weighs as much as one a person rated.
    """
    every = list(signals)
    if not every:
        return None
    explicit = [s for s in every if s.source == "explicit"]
    counted = explicit or every
    weight = sum(s.trust for s in counted)
    if weight <= 0:
        return None
    mean = sum(s.trust * s.score for s in counted) / weight
    value = mean * max(s.trust for s in counted)
    decided = max(counted, key=lambda s: (s.trust * abs(s.score), s.created_at))
    commented = [s for s in counted if s.comment]
    comment = max(commented, key=lambda s: (s.trust, s.created_at)).comment if commented else None
    return TurnOutcome(
        helpful=max(0.0, value),
        harmful=max(0.0, -value),
        score=mean,
        source=decided.source if not explicit else "explicit",
        comment=comment,
        signals=len(every),
    )


def tool_error_signal(runs: Sequence[ToolRun]) -> tuple[float, str] | None:
    """``(score, comment)`` when the app's tools failed in a turn: the share that failed."""
    app = [r for r in runs if r.source == "app"]
    failed = [r for r in app if r.error]
    if not failed:
        return None
    first = failed[0]
    return -len(failed) / len(app), f"{first.name} failed: {first.error}"


_WORD = re.compile(r"\w+")


def is_repeat(previous: str, message: str, *, threshold: float = 0.8) -> bool:
    """Whether ``message`` asks ``previous`` again (same words, by Jaccard overlap).

    A user who re-asks (or an app that regenerates) signals the previous answer did not do.
    """
    a, b = normalize_text(previous), normalize_text(message)
    if not a or not b:
        return False
    if a == b:
        return True
    wa, wb = set(_WORD.findall(a)), set(_WORD.findall(b))
    if len(wa) < 3 or len(wb) < 3:
        return False
    return len(wa & wb) / len(wa | wb) >= threshold
