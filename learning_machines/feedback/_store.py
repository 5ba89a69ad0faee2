"""The feedback store: signals on turns, and the credit they give to what the turns recalled.

Signals are learnings of type ``feedback_signal``, private to the user whose turn they rate
(one per turn and rater: a new rating replaces the rater's earlier one). Recording a signal
recomputes the turn's outcome from all its signals (explicit beats implicit), sets it on the
turn's decision record, and moves the evidence of every learning the turn recalled by the
difference — all in one transaction that is refused (and retried) if another rater changed the
turn first, so evidence is never counted twice. Then lessons learn from the outcome, and a
lesson that misled is retired.

Where signals come from: ``machine.feedback(...)`` (explicit), the decision log's section of the
turn's single extraction call (implicit: the user's next message), and rules that need no model
— a failed tool call (written with the turn) and the same question asked again (after it).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from .._ids import check_optional_id
from .._modes import LearningMode
from .._turn_record import TurnRecord
from ..db import (
    PRIVATE_NAMESPACE,
    AddEvidence,
    Change,
    Learning,
    LearningFilter,
    ListLearnings,
    LocateLearnings,
    Op,
    PatchContent,
    PutLearning,
    SetEvidence,
)
from ..exceptions import ConfigurationError, ConflictError, NotFoundError
from ..stores import BaseStore, StoreConfig
from ..stores._config_values import flag_value, number_value
from ..stores._decision_model import credit_weights, decision_id
from ._lessons import LessonConfig, LessonStore
from ._signals import (
    DEFAULT_TRUST,
    MAX_COMMENT_CHARS,
    SIGNAL_TYPE,
    FeedbackSignal,
    SignalSource,
    TurnOutcome,
    aggregate,
    check_score,
    is_repeat,
    tool_error_signal,
)

if TYPE_CHECKING:
    from .._messages import ChatMessage
    from ..stores.decision_log import DecisionLogStore

__all__ = ["FeedbackConfig", "FeedbackStore"]

logger = logging.getLogger("learning_machines")

_RETRIES = 8
_ACTOR = {"store": "feedback"}


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
        return FeedbackStore(self)


class FeedbackStore(BaseStore):
    """Feedback signals on turns, credit assignment, and the lessons that follow."""

    learning_type: ClassVar[str] = SIGNAL_TYPE
    supported_modes: ClassVar[frozenset[LearningMode]] = frozenset({LearningMode.BACKGROUND})
    required_context: ClassVar[tuple[str, ...]] = ("user_id",)

    config: FeedbackConfig

    def __init__(self, config: FeedbackConfig | None = None) -> None:
        config = config or FeedbackConfig()
        super().__init__(config)
        self.config = config
        self.decisions: DecisionLogStore | None = None
        """The decision log, whose records hold each turn's recalls and outcome."""
        self.lessons: LessonStore | None = None
        """The lesson store, when lessons are on."""

    def connect(self, *, decisions: DecisionLogStore, lessons: LessonStore | None) -> None:
        """Give the store the decision log it credits through, and the lessons it feeds."""
        self.decisions = decisions
        self.lessons = lessons

    def _log(self) -> DecisionLogStore:
        if self.decisions is None:
            raise ConfigurationError(
                "feedback needs the decision log: build the machine with "
                "LearningMachine(feedback=True) (it turns the decision log on)"
            )
        return self.decisions

    # --- the store protocol: nothing to recall or show ----------------------------------------

    async def arecall(self, **context: Any) -> None:
        """Signals are not shown to the agent (their effect is in ranking and lessons)."""
        return None

    def build_context(self, data: Any) -> str:
        """Nothing: see :meth:`arecall`."""
        return ""

    # --- reading ------------------------------------------------------------------------------

    def _owner_filter(self, user_id: str, **extra: Any) -> LearningFilter:
        return LearningFilter(
            namespaces=(PRIVATE_NAMESPACE,),
            reader_user_id=user_id,
            learning_types=(SIGNAL_TYPE,),
            **extra,
        )

    async def asignals(self, turn_id: str, *, user_id: str) -> list[FeedbackSignal]:
        """The signals on one of ``user_id``'s turns, oldest first."""
        rows = await self.db.arun(
            ListLearnings(
                filter=self._owner_filter(user_id, entity_ids=(turn_id,)),
                limit=None,
                order_by="created_at",
                ascending=True,
            )
        )
        return [FeedbackSignal.from_learning(r) for r in rows]

    async def aowner(self, turn_id: str) -> str:
        """The user whose turn ``turn_id`` is (see :meth:`DecisionLogStore.aowner`)."""
        return await self._log().aowner(turn_id)

    # --- recording ----------------------------------------------------------------------------

    async def arate(
        self,
        *,
        turn_id: str,
        score: float,
        comment: str | None = None,
        by: str | None = None,
        user_id: str | None = None,
    ) -> FeedbackSignal:
        """An explicit rating of a turn by ``by`` (default: the turn's user); see :meth:`arecord`.

        ``user_id`` (whose turn it is) is looked up when not given; ids are checked first.
        """
        rater = check_optional_id(by, name="by")
        owner = check_optional_id(user_id, name="user_id") or await self.aowner(turn_id)
        return await self.arecord(
            turn_id=turn_id,
            score=score,
            source="explicit",
            rater=f"explicit:{rater or owner}",
            comment=comment,
            user_id=owner,
        )

    async def arecord(
        self,
        *,
        turn_id: str,
        score: float,
        source: SignalSource,
        rater: str,
        comment: str | None = None,
        user_id: str | None = None,
    ) -> FeedbackSignal:
        """Record one rater's signal on a turn and credit the outcome (see the module doc).

        Raises :class:`ValidationError` for a score outside ``[-1, 1]`` and
        :class:`NotFoundError` for a turn that is not ``user_id``'s (or not in the log).
        """
        value = check_score(score)
        log = self._log()
        owner = user_id or await self.aowner(turn_id)
        row = await log.aget_record(turn_id, user_id=owner)
        if row is None:
            raise NotFoundError(
                f"no turn {turn_id!r} of user {owner!r} in the decision log (another user's "
                "turn, a wrong id, or a turn recorded before feedback was on)"
            )
        signal = FeedbackSignal(
            turn_id=turn_id,
            user_id=owner,
            session_id=row.session_id,
            agent_id=row.agent_id,
            source=source,
            rater=rater,
            score=value,
            trust=float(self.config.trust[source]),
            comment=(comment or "").strip()[:MAX_COMMENT_CHARS] or None,
        )
        outcome = await self._settle(row, signal)
        await self._after(turn_id, owner, outcome)
        return signal

    async def _settle(self, row: Learning, signal: FeedbackSignal) -> TurnOutcome | None:
        """Write the signal and the turn's new outcome; retried when another rater raced us."""
        log = self._log()
        creditable = await self._creditable(row)
        written = False
        for _ in range(_RETRIES):
            signals = {
                s.rater: s for s in await self.asignals(signal.turn_id, user_id=signal.user_id)
            }
            if not written:
                signals[signal.rater] = signal
            outcome = aggregate(signals.values())
            ops: list[Op[Any]] = []
            if not written:
                change = Change(
                    action="create",
                    actor={**_ACTOR, "rater": signal.rater},
                    reason=f"{signal.source} {signal.score:+.2f}",
                    turn_id=signal.turn_id,
                )
                ops.append(PutLearning(learning=signal.to_learning(), change=change))
            ops += self._credit(row, outcome, creditable)
            try:
                await self.db.abatch(ops)
            except ConflictError:
                fresh = await log.aget_record(signal.turn_id, user_id=signal.user_id)
                if fresh is None:
                    raise
                row = fresh
                continue
            written = True
            # Another rater may have written between our read and our write, with the same
            # evidence as before: check that what we set is what all the signals say.
            settled = aggregate(await self.asignals(signal.turn_id, user_id=signal.user_id))
            if _evidence(settled) == _evidence(outcome):
                return outcome
            fresh = await log.aget_record(signal.turn_id, user_id=signal.user_id)
            if fresh is None:
                return outcome
            row = fresh
        raise ConflictError(
            f"feedback on turn {signal.turn_id} kept changing under concurrent raters; the "
            "signal was kept, retry to settle its credit"
        )

    async def _creditable(self, row: Learning) -> set[str]:
        """Ids of the record's credit its user could have recalled: theirs, or shared.

        A turn only recalls what its user may read, so any other id (a record imported from a
        forged export, naming another user's private learning) is never credited.
        """
        credit = _credit_of(row)
        if not credit:
            return set()
        found = await self.db.arun(LocateLearnings(ids=tuple(credit)))
        return {
            x.id
            for x in found
            if x.namespace != PRIVATE_NAMESPACE
            or (x.user_id is not None and x.user_id == row.user_id)
        }

    def _credit(
        self, row: Learning, outcome: TurnOutcome | None, creditable: set[str] | None = None
    ) -> list[Op[Any]]:
        """Set the turn's outcome on its record; move what it recalled by the difference.

        ``creditable`` limits the learnings moved (see :meth:`_creditable`); ``None``: the whole
        credit (a record built from the turn itself).
        """
        helpful, harmful = _evidence(outcome)
        ops: list[Op[Any]] = [
            SetEvidence(
                id=row.id,
                helpful=helpful,
                harmful=harmful,
                expected_helpful=row.helpful,
                expected_harmful=row.harmful,
            )
        ]
        d_helpful, d_harmful = helpful - row.helpful, harmful - row.harmful
        shares: dict[float, list[str]] = {}
        for learning_id, share in _credit_of(row).items():
            if creditable is None or learning_id in creditable:
                shares.setdefault(share, []).append(learning_id)
        if d_helpful or d_harmful:
            for share, ids in sorted(shares.items()):
                ops.append(
                    AddEvidence(
                        ids=tuple(ids), helpful=d_helpful * share, harmful=d_harmful * share
                    )
                )
        turn_id = str(row.content.get("turn_id"))
        ops.append(
            PatchContent(
                id=row.id,
                filter=self._log().owner_filter(str(row.user_id)),
                patch={"outcome": None if outcome is None else outcome.summary().model_dump()},
                change=Change(
                    action="update",
                    actor=_ACTOR,
                    reason="outcome" if outcome is None else f"outcome {outcome.score:+.2f}",
                    turn_id=turn_id,
                ),
            )
        )
        return ops

    async def _after(self, turn_id: str, user_id: str, outcome: TurnOutcome | None) -> None:
        """Lessons learn from the outcome; lessons the turn recalled may be retired."""
        if self.lessons is None:
            return
        row = await self._log().aget_record(turn_id, user_id=user_id)
        if row is None:
            return
        await self.lessons.alearn(row, outcome)
        await self.lessons.aretire(list(_credit_of(row)), user_id=user_id)

    async def arecord_reaction(
        self, *, turn_id: str, user_id: str, score: float, reason: str
    ) -> None:
        """Implicit feedback: the model read the user's next message as a verdict on a turn."""
        if not self.config.implicit:
            return
        await self.arecord(
            turn_id=turn_id,
            score=max(-1.0, min(1.0, float(score))),
            source="implicit",
            rater="implicit:model",
            comment=reason,
            user_id=user_id,
        )

    # --- rules that need no model ---------------------------------------------------------------

    async def aturn_ops(self, record: TurnRecord) -> Sequence[Op[Any]]:
        """A failed app tool call: a signal on the turn, written with the turn itself."""
        ctx = record.context
        found = tool_error_signal(record.tool_runs) if self.config.rules else None
        if found is None or not ctx.user_id or self.decisions is None:
            return []
        score, comment = found
        signal = FeedbackSignal(
            turn_id=ctx.turn_id,
            user_id=ctx.user_id,
            session_id=ctx.session_id,
            agent_id=ctx.agent_id,
            source="rule:tool_error",
            rater="rule:tool_error",
            score=score,
            trust=float(self.config.trust["rule:tool_error"]),
            comment=comment[:MAX_COMMENT_CHARS],
            created_at=ctx.now,
        )
        # The record is new in this same transaction: its evidence is 0, its credit is known.
        blank = Learning(
            id=decision_id(ctx.turn_id),
            learning_type="decision",
            user_id=ctx.user_id,
            content={"turn_id": ctx.turn_id, "credit": credit_weights(record)},
        )
        change = Change(
            action="create",
            actor={**_ACTOR, "rater": signal.rater},
            reason=f"{signal.source} {signal.score:+.2f}",
            turn_id=ctx.turn_id,
        )
        return [
            PutLearning(learning=signal.to_learning(), change=change),
            *self._credit(blank, aggregate([signal])),
        ]

    async def aprocess(self, messages: Sequence[ChatMessage], **context: Any) -> None:
        """After a turn: the same question asked again rates the previous answer; lessons."""
        user_id = context.get("user_id")
        turn_id = context.get("turn_id")
        if not user_id or not turn_id or not self.config.rules:
            return
        log = self._log()
        previous = await log.aprevious(context)
        message = str(context.get("message") or "")
        if previous is not None and is_repeat(str(previous.content.get("message", "")), message):
            await self.arecord(
                turn_id=str(previous.content["turn_id"]),
                score=-1.0,
                source="rule:repeat",
                rater="rule:repeat",
                comment="the user asked the same again",
                user_id=str(user_id),
            )
        row = await log.aget_record(str(turn_id), user_id=str(user_id))
        if row is not None and row.content.get("outcome") and self.lessons is not None:
            # An outcome written with the turn (a tool failed): lessons learn from it now.
            await self._after(
                str(turn_id),
                str(user_id),
                aggregate(await self.asignals(str(turn_id), user_id=str(user_id))),
            )


def _credit_of(row: Learning) -> dict[str, float]:
    """A decision record's credit: learning id → its share of the turn's outcome."""
    credit = row.content.get("credit") or {}
    if isinstance(credit, list):  # a list of ids: full shares
        return {str(i): 1.0 for i in credit}
    return {str(i): float(share) for i, share in credit.items()}


def _evidence(outcome: TurnOutcome | None) -> tuple[float, float]:
    return (0.0, 0.0) if outcome is None else (outcome.helpful, outcome.harmful)
