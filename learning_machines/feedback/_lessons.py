"""The lesson store: "when C, do / avoid A, because E", distilled from recurring outcomes.

Each rated turn with a clear outcome adds support to a *candidate* (its approach, for requests
like its message; a ``lesson_candidate`` row in the lessons' namespace, never recalled). When
enough sessions — and, in a shared namespace, users — agree, the candidate becomes a lesson,
written through the store's write gate (so a shared lesson waits for a reviewer by default).
Lessons are recalled when a new message matches their condition, each with one raw example
turn, and retired when the turns that recalled them go wrong.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from .._modes import LearningMode
from ..curation._evidence import helpfulness, strongly_harmful
from ..curation._forget import ForgetRequest, register_forget_step
from ..curation._plan import HARMFUL_EVIDENCE
from ..db import (
    PRIVATE_NAMESPACE,
    Change,
    GetLearnings,
    Learning,
    LearningFilter,
    ListLearnings,
    PatchContent,
    PutLearning,
    ScoredLearning,
    SearchLearnings,
    SetEvidence,
    new_id,
    stable_id,
    utcnow,
)
from ..db._records import ALL_STATUSES
from ..embedders import aembed
from ..exceptions import ConflictError
from ..stores import BaseStore, StoreConfig
from ..stores._config_values import mode_value, number_value, whole_number
from ..stores._decision_model import CLEAR_OUTCOME, DecisionRecord, call_text, outcome_phrase
from ..stores._shared import fit_lines, relevant, require_user_for_private, search
from ._distill import (
    Approach,
    LessonExample,
    LessonWrite,
    add_support,
    approach_of,
    drop_user,
    lesson_line,
    lesson_search_text,
    tally,
    verdict,
)
from ._signals import TurnOutcome

if TYPE_CHECKING:
    from .._messages import ChatMessage

__all__ = [
    "CANDIDATE_TYPE",
    "LESSON_TYPE",
    "LessonConfig",
    "LessonStore",
    "scrub_shared_lessons",
]

#: Learning type of lessons (recalled).
LESSON_TYPE = "lesson"
#: Learning type of lesson candidates (support gathered per approach; never recalled).
CANDIDATE_TYPE = "lesson_candidate"

_RETRIES = 5
_EXAMPLES = 5


def _example(record: DecisionRecord, user_id: str | None, outcome: TurnOutcome) -> dict[str, Any]:
    return LessonExample(
        turn_id=record.turn_id,
        user_id=user_id,
        at=record.at,
        message=record.message[:300],
        answer=record.answer[:300],
        calls=[call_text(c) for c in record.tool_calls if c.source == "app"],
        outcome=outcome_phrase(outcome.summary()),
    ).model_dump(mode="json") | {"score": outcome.score, "comment": outcome.comment}


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
        return LessonStore(self)


class LessonStore(BaseStore):
    """Lessons distilled from outcomes, recalled when their condition matches the message."""

    learning_type: ClassVar[str] = LESSON_TYPE
    supported_modes: ClassVar[frozenset[LearningMode]] = frozenset(LearningMode)
    required_context: ClassVar[tuple[str, ...]] = ()
    write_model = LessonWrite

    config: LessonConfig

    def __init__(self, config: LessonConfig | None = None) -> None:
        config = config or LessonConfig()
        super().__init__(config)
        self.config = config

    @property
    def mode(self) -> LearningMode:
        """``shared_mode`` for a shared namespace, else ``mode``."""
        return self.config.effective_mode

    def require_context(self, context: Mapping[str, Any]) -> None:
        """A user is needed only when lessons are private."""
        require_user_for_private(self, context)

    def _filter(self, learning_type: str, user_id: str | None) -> LearningFilter:
        namespaces = (self.config.namespace, *self.config.read_namespaces)
        return LearningFilter(
            namespaces=tuple(dict.fromkeys(namespaces)),
            reader_user_id=user_id,
            learning_types=(learning_type,),
        )

    # --- recall -------------------------------------------------------------------------------

    async def arecall(self, **context: Any) -> list[ScoredLearning]:
        """Lessons whose condition matches the turn's message."""
        message = str(context.get("message") or "")
        user_id = context.get("user_id")
        if not message.strip() or (not user_id and not self.config.shared):
            return []
        found = await search(
            self,
            message,
            self._filter(LESSON_TYPE, user_id),
            limit=self.config.limit,
            vector=await self.query_vector(context),
        )
        return relevant(found, self.config.min_similarity)

    def build_context(self, data: Any) -> str:
        """Recalled lessons, each with its example turn."""
        if not isinstance(data, list):
            return ""
        lines = [lesson_line(s.learning) for s in data if isinstance(s, ScoredLearning)]
        return fit_lines(
            "## Lessons (from how earlier turns turned out; follow them when they match)",
            lines,
            self.config.max_tokens,
        )

    async def aprocess(self, messages: Sequence[ChatMessage], **context: Any) -> None:
        """Nothing per turn: lessons learn from outcomes, through the feedback store."""

    # --- writing a lesson (through the gate) -------------------------------------------------

    async def apply_write(self, write: Any, **context: Any) -> list[str]:
        """Write one lesson (applied at once, or on approval of its proposal)."""
        item = write if isinstance(write, LessonWrite) else self.decode_write(write)
        user_id = context.get("user_id")
        if self.config.namespace == PRIVATE_NAMESPACE and not user_id:
            require_user_for_private(self, context)
        text = lesson_search_text(item)
        vector = (await aembed(self.embedder, [text]))[0]
        now = utcnow()
        learning = Learning(
            id=stable_id("lesson", item.candidate_id, item.action),
            learning_type=LESSON_TYPE,
            namespace=self.config.namespace,
            user_id=user_id,
            content=item.model_dump(mode="json"),
            search_text=text,
            embedding=tuple(float(x) for x in vector),
            embedder=self.embedder.name,
            created_at=now,
            updated_at=now,
            provenance={
                "user_id": user_id,
                "turn_id": context.get("turn_id"),
                "store": self.resources.name,
                "mode": str(context.get("mode") or self.mode.value),
                "candidate_id": item.candidate_id,
                **({"approved_by": context["approved_by"]} if context.get("approved_by") else {}),
            },
        )
        change = Change(
            action="create",
            actor={"store": self.resources.name, "user_id": user_id},
            reason=f"lesson: {item.action} {item.approach}",
            turn_id=context.get("turn_id"),
        )
        await self.db.arun(PutLearning(learning=learning, change=change))
        return [learning.id]

    # --- distilling ---------------------------------------------------------------------------

    async def _candidates(
        self, record: DecisionRecord, decision: Learning, user_id: str | None
    ) -> list[ScoredLearning]:
        """Candidates for requests like this one (any approach), most similar first."""
        vector = decision.embedding
        return await self.db.arun(
            SearchLearnings(
                filter=self._filter(CANDIDATE_TYPE, user_id),
                query=record.message,
                vector=vector,
                embedder=decision.embedder if vector is not None else None,
                limit=20,
                method="hybrid" if vector is not None else "keyword",
            )
        )

    def _similar(self, hit: ScoredLearning) -> bool:
        if hit.vector_score is None:
            return hit.keyword_score is not None
        return hit.vector_score >= self.config.condition_similarity

    async def alearn(self, decision: Learning, outcome: TurnOutcome | None) -> str | None:
        """Count a rated turn for its approach; write a lesson when enough agree.

        Returns the lesson id (or ``proposal:<id>``) written now, else ``None``.
        """
        record = DecisionRecord.model_validate(decision.content)
        approach = approach_of(record)
        if approach is None or outcome is None:
            return None
        user_id = decision.user_id
        for _ in range(_RETRIES):
            hits = await self._candidates(record, decision, user_id)
            similar = [h for h in hits if self._similar(h)]
            mine = next(
                (h.learning for h in similar if h.learning.content.get("key") == approach.key),
                None,
            )
            try:
                candidate = await self._add(mine, approach, record, decision, outcome)
            except ConflictError:
                continue
            if candidate is None:
                return None
            others = [h.learning for h in similar if h.learning.id != candidate.id]
            return await self._promote(candidate, approach, record, others)
        raise ConflictError(
            f"lesson candidate for {approach.text!r} kept changing under concurrent writers"
        )

    async def _add(
        self,
        candidate: Learning | None,
        approach: Approach,
        record: DecisionRecord,
        decision: Learning,
        outcome: TurnOutcome,
    ) -> Learning | None:
        """Add the turn's outcome to its candidate (a new one for a new approach)."""

        def supported(earlier: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
            return add_support(
                earlier,
                user_id=decision.user_id or "",
                session_id=record.session_id,
                turn_id=record.turn_id,
                score=outcome.score,
                at=record.at,
            )

        clear = abs(outcome.score) >= self.config.min_outcome
        if candidate is None:
            if not clear:
                return None
            support = supported([])
            t = tally(support, min_outcome=self.config.min_outcome)
            row = Learning(
                id=new_id(),
                learning_type=CANDIDATE_TYPE,
                namespace=self.config.namespace,
                user_id=decision.user_id,
                content={
                    "key": approach.key,
                    "approach": approach.text,
                    "condition": record.message[:300],
                    "condition_turn": record.turn_id,
                    "support": support,
                    "examples": [_example(record, decision.user_id, outcome)],
                    "promoted": {},
                },
                search_text=record.message,
                embedding=decision.embedding,
                embedder=decision.embedder,
                helpful=float(t.good_sessions),
                harmful=float(t.bad_sessions),
                provenance={"user_id": decision.user_id, "store": self.resources.name},
            )
            change = Change(action="create", actor={"store": self.resources.name}, reason="new")
            return await self.db.arun(PutLearning(learning=row, change=change))
        support = supported(candidate.content.get("support") or [])
        examples = [
            e for e in candidate.content.get("examples") or [] if e.get("turn_id") != record.turn_id
        ]
        examples = [*examples, _example(record, decision.user_id, outcome)][-_EXAMPLES:]
        t = tally(support, min_outcome=self.config.min_outcome)
        change = Change(
            action="update",
            actor={"store": self.resources.name},
            reason=f"outcome {outcome.score:+.2f} of turn {record.turn_id}",
        )
        results = await self.db.abatch(
            [
                SetEvidence(
                    id=candidate.id,
                    helpful=float(t.good_sessions),
                    harmful=float(t.bad_sessions),
                    expected_helpful=candidate.helpful,
                    expected_harmful=candidate.harmful,
                ),
                PatchContent(
                    id=candidate.id,
                    filter=self._filter(CANDIDATE_TYPE, decision.user_id),
                    patch={"support": support, "examples": examples},
                    change=change,
                ),
            ]
        )
        patched: Learning | None = results[1]
        if patched is None:
            return None  # forgotten meanwhile
        return dataclasses.replace(
            patched, helpful=float(t.good_sessions), harmful=float(t.bad_sessions)
        )

    async def _promote(
        self,
        candidate: Learning,
        approach: Approach,
        record: DecisionRecord,
        others: Sequence[Learning],
    ) -> str | None:
        """Write the candidate's lesson once its outcomes agree (once per direction)."""
        cfg = self.config
        support = candidate.content.get("support") or []
        t = tally(support, min_outcome=cfg.min_outcome)
        failed = sorted(
            (o for o in others if o.harmful >= 1 and o.content.get("key") != approach.key),
            key=lambda o: -o.harmful,
        )
        instead = str(failed[0].content.get("approach")) if failed else None
        direction = verdict(
            t,
            min_sessions=cfg.min_sessions,
            min_users=cfg.min_users if cfg.shared else 1,
            agreement=cfg.agreement,
            contrast=instead is not None,
        )
        promoted = dict(candidate.content.get("promoted") or {})
        if direction is None or direction in promoted:
            return None
        sign = -1.0 if direction == "avoid" else 1.0
        examples = [
            e for e in candidate.content.get("examples") or [] if sign * float(e["score"]) > 0
        ]
        example = examples[-1] if examples else None
        commented = [e for e in examples if e.get("comment")]
        write = LessonWrite(
            candidate_id=candidate.id,
            condition=str(candidate.content.get("condition") or record.message)[:300],
            condition_turn=candidate.content.get("condition_turn"),
            action=direction,
            approach=approach.text,
            because=str(commented[-1]["comment"]) if commented else "",
            because_turn=str(commented[-1]["turn_id"]) if commented else None,
            instead=instead if direction == "do" else None,
            sessions=t.bad_sessions if direction == "avoid" else t.good_sessions,
            users=t.bad_users if direction == "avoid" else t.good_users,
            example=None if example is None else LessonExample.model_validate(example),
        )
        context = {
            "user_id": record_user(example, candidate),
            "session_id": record.session_id,
            "turn_id": record.turn_id,
            "agent_id": record.agent_id,
        }
        outcome = await self.submit(
            write,
            summary=f"lesson: when a request is like {write.condition!r}, {direction} "
            f"{approach.text} ({write.sessions} sessions, {write.users} users)",
            context=context,
            text=lesson_search_text(write),
        )
        ref = outcome.learning_ids[0] if outcome.applied else f"proposal:{outcome.proposal_id}"
        promoted[direction] = ref
        await self.db.arun(
            PatchContent(
                id=candidate.id,
                filter=self._filter(CANDIDATE_TYPE, candidate.user_id),
                patch={"promoted": promoted},
                change=Change(
                    action="update", actor={"store": self.resources.name}, reason="promoted"
                ),
            )
        )
        return ref

    async def aretire(self, ids: Sequence[str], *, user_id: str | None) -> list[str]:
        """Retire lessons among ``ids`` whose turns went wrong too often; returns those retired."""
        if not ids:
            return []
        cfg = self.config
        rows = await self.db.arun(
            GetLearnings(ids=tuple(ids), filter=self._filter(LESSON_TYPE, user_id))
        )
        retired = []
        for row in rows:
            if row.status != "active" or not strongly_harmful(
                row, min_evidence=cfg.retire_min_evidence, below=cfg.retire_below
            ):
                continue
            change = Change(
                action="archive",
                actor={"store": self.resources.name, "rule": HARMFUL_EVIDENCE},
                reason=f"lesson retired: {row.harmful:g} harmful, {row.helpful:g} helpful "
                f"outcomes (helpfulness {helpfulness(row):.2f} < {cfg.retire_below})",
            )
            archived = dataclasses.replace(row, status="archived", updated_at=utcnow())
            await self.db.arun(PutLearning(learning=archived, change=change))
            retired.append(row.id)
        return retired


def record_user(example: Mapping[str, Any] | None, candidate: Learning) -> str | None:
    """Whose turn a promotion is attributed to: the example's user, else the candidate's."""
    if example is not None and example.get("user_id"):
        return str(example["user_id"])
    return candidate.user_id


async def scrub_shared_lessons(db: Any, user_id: str, *, embedder: Any = None) -> int:
    """Remove ``user_id``'s turns from shared lessons and candidates (before forgetting them).

    A shared lesson keeps its counts but loses the user's example and support entries; when its
    condition was the user's own request, another example's request takes its place (and it is
    re-embedded with ``embedder``, or left without a vector). Returns the rows changed.
    """
    rows: list[Learning] = await db.arun(
        ListLearnings(
            filter=LearningFilter(
                namespaces=None, learning_types=(LESSON_TYPE, CANDIDATE_TYPE), statuses=ALL_STATUSES
            ),
            limit=None,
        )
    )
    ops = []
    for row in rows:
        content = drop_user(row.content, user_id)
        if content is None:
            continue
        if row.learning_type == LESSON_TYPE:
            text = lesson_search_text(LessonWrite.model_validate(content))
        else:
            text = str(content.get("condition") or "")
        changed = dataclasses.replace(row, content=content, search_text=text, updated_at=utcnow())
        if text != row.search_text:
            vector = None
            if embedder is not None and text:
                vector = tuple(float(x) for x in (await aembed(embedder, [text]))[0])
            changed = dataclasses.replace(
                changed,
                embedding=vector,
                embedder=None if vector is None else embedder.name,
            )
        ops.append(
            PutLearning(
                learning=changed,
                change=Change(action="update", actor={"forget": True}, reason="a user forgotten"),
            )
        )
    if ops:
        await db.abatch(ops)
    return len(ops)


async def _scrub_on_forget(request: ForgetRequest) -> int:
    return await scrub_shared_lessons(request.db, request.user_id, embedder=request.embedder)


# Shared lessons keep what many users taught, not a forgotten user's example turns.
register_forget_step("lessons_scrubbed", _scrub_on_forget)
