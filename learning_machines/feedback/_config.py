"""Settings of behavioural feedback and of the lessons it distils."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .._modes import LearningMode
from ..db import PRIVATE_NAMESPACE
from ..exceptions import ConfigurationError
from ..stores import StoreConfig
from ..stores._config_values import flag_value, mode_value, number_value, whole_number
from ..stores._decision_model import CLEAR_OUTCOME
from ._signals import DEFAULT_TRUST

if TYPE_CHECKING:
    from ._lessons import LessonStore
    from ._store import FeedbackStore

__all__ = ["FeedbackConfig", "LessonConfig"]


@dataclass(kw_only=True)
class LessonConfig(StoreConfig):
    """Settings of lessons: "when C, do / avoid A, because E", distilled from outcomes.

    A lesson is written once the same approach, for similar requests, turned out the same way
    in at least ``min_sessions`` sessions (and, in a shared namespace, for at least
    ``min_users`` users). It is recalled when a new message matches its condition, with one raw
    example turn, and retired when its own confidence falls.
    """

    namespace: str = PRIVATE_NAMESPACE
    """Where lessons live: ``"user"`` (each user's own) or a shared namespace (``"global"``, a
    team's name), where lessons from several users' outcomes teach everyone."""
    mode: LearningMode = LearningMode.BACKGROUND
    """How a lesson is written in the private namespace (applied at once by default)."""
    shared_mode: LearningMode = LearningMode.HITL
    """How a lesson is written in a shared namespace: HITL by default (a reviewer approves it
    before it teaches anyone); PROPOSE, or BACKGROUND to apply at once, when you choose."""
    min_sessions: int = 3
    """Distinct sessions in which an approach must have turned out the same way."""
    min_users: int = 2
    """Distinct users that must share the outcome before a lesson enters a shared namespace."""
    agreement: float = 0.75
    """Share of those sessions that must agree (the rest turned out the other way)."""
    min_outcome: float = CLEAR_OUTCOME
    """How clear a turn's outcome must be (absolute score) to count for or against a lesson."""
    condition_similarity: float = 0.5
    """Cosine above which two requests count as the same condition (the default MiniLM
    embedder; the offline HashEmbedder needs a similar value for shared words)."""
    limit: int = 3
    """Lessons recalled for a turn."""
    min_similarity: float = 0.35
    """Lessons whose condition is less similar than this to the message are not recalled."""
    max_tokens: int = 500
    """Token budget of the lessons block in the system prompt."""
    retire_below: float = 0.35
    """A lesson whose helpfulness (Beta posterior mean) falls under this is retired..."""
    retire_min_evidence: float = 2.0
    """... once at least this much harmful evidence was credited to it."""

    def __post_init__(self) -> None:
        """Check and coerce the values (see :class:`StoreConfig`)."""
        super().__post_init__()
        self.shared_mode = mode_value(self.shared_mode, field=self._field("shared_mode"))
        for name in ("min_sessions", "min_users", "limit"):
            setattr(
                self, name, whole_number(getattr(self, name), field=self._field(name), minimum=1)
            )
        self.agreement = number_value(
            self.agreement, field=self._field("agreement"), low=0.5, high=1.0
        )
        for name in ("min_outcome", "retire_below"):
            setattr(
                self,
                name,
                number_value(getattr(self, name), field=self._field(name), low=0, high=1),
            )
        for name in ("condition_similarity", "min_similarity"):
            setattr(
                self,
                name,
                number_value(getattr(self, name), field=self._field(name), low=-1, high=1),
            )
        self.retire_min_evidence = number_value(
            self.retire_min_evidence, field=self._field("retire_min_evidence"), low=0, high=1e9
        )

    @property
    def shared(self) -> bool:
        """Whether lessons are shared across users."""
        return self.namespace != PRIVATE_NAMESPACE

    @property
    def effective_mode(self) -> LearningMode:
        """The mode lessons are written in (``shared_mode`` for a shared namespace)."""
        return self.shared_mode if self.shared else self.mode

    def create_store(self) -> LessonStore:
        """Build the store from this config."""
        from ._lessons import LessonStore

        return LessonStore(self)


@dataclass(kw_only=True)
class FeedbackConfig(StoreConfig):
    """Settings of behavioural feedback: signals on turns, credit, and lessons.

    Explicit feedback (``machine.feedback(turn_id=..., score=...)``) always counts. Implicit
    feedback is read from the user's next message inside the turn's single extraction call
    (the decision log's section; no extra call), and rules need no model at all: a failed tool
    call, the same question asked again. A turn's outcome is credited to every learning it
    recalled and to its decision record.
    """

    implicit: bool = True
    """Read the user's next message as a verdict on the previous answer (in the one
    extraction call that already runs; needs the decision log in BACKGROUND mode)."""
    rules: bool = True
    """Signals that need no model: the app's tool failed; the user asked the same again."""
    trust: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_TRUST))
    """How much each kind of signal counts: ``explicit``, ``implicit``, ``rule:tool_error``,
    ``rule:repeat`` (explicit feedback, when given, beats the others anyway)."""
    lessons: LessonConfig | bool = True
    """Distil lessons from recurring outcomes (``True``: each user's own; a
    :class:`LessonConfig` to share them through a namespace)."""

    def __post_init__(self) -> None:
        """Check and coerce the values (see :class:`StoreConfig`)."""
        super().__post_init__()
        self.implicit = flag_value(self.implicit, field=self._field("implicit"))
        self.rules = flag_value(self.rules, field=self._field("rules"))
        if not isinstance(self.trust, Mapping):
            raise ConfigurationError(
                f"{self._field('trust')} must be a mapping of source to weight, e.g. "
                "{'implicit': 0.3}, not " + type(self.trust).__name__
            )
        if not isinstance(self.lessons, bool | LessonConfig):
            raise ConfigurationError(
                f"{self._field('lessons')} must be True, False or a LessonConfig(...), not "
                f"{type(self.lessons).__name__}"
            )
        if self.namespace != PRIVATE_NAMESPACE:
            raise ConfigurationError(
                "feedback signals are private to the turn's user: leave FeedbackConfig's "
                "namespace as 'user' (share what was learned with LessonConfig(namespace=...))"
            )
        if self.mode is not LearningMode.BACKGROUND:
            raise ConfigurationError("FeedbackConfig: feedback is recorded in BACKGROUND mode")
        unknown = sorted(set(self.trust) - set(DEFAULT_TRUST))
        if unknown:
            raise ConfigurationError(
                f"FeedbackConfig.trust has unknown sources {unknown}; use {sorted(DEFAULT_TRUST)}"
            )
        self.trust = {
            **DEFAULT_TRUST,
            **{
                source: number_value(
                    weight, field=f"{self._field('trust')}[{source!r}]", low=0, high=1
                )
                for source, weight in self.trust.items()
            },
        }

    @property
    def lesson_config(self) -> LessonConfig | None:
        """The lessons' settings, or ``None`` when lessons are off."""
        if self.lessons is True:
            return LessonConfig()
        return self.lessons or None

    def create_store(self) -> FeedbackStore:
        """Build the feedback store from this config."""
        from ._store import FeedbackStore

        return FeedbackStore(self)
