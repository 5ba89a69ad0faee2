"""The LearningMachine: recall → context → (agent answers with tools) → extract → store.

The machine builds its parts once, when it gets a db, and holds them: the store registry, the
recaller, the turn recorder, the worker and its background runner, the proposal book and the
admin service. None of them knows the machine.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from pydantic_ai.models import Model

from .._messages import to_chat_messages
from .._models import check_learning_model, resolve_model
from .._sync import on_portal, run_sync, sync_twin
from .._turn_context import TurnContext
from ..db import Db, PendingWork, new_id, utcnow
from ..embedders import BatchingEmbedder, Embedder
from ..exceptions import ConfigurationError, LearningFailedError
from ..feedback import FeedbackSignal
from ..improvement import (
    ActiveInstructions,
    ImprovementBook,
    ReflectionReport,
)
from ._context import LearningContext
from ._decisions import DecisionBook
from ._open_turns import OpenTurns
from ._options import MachineOptions
from ._parts import Parts
from ._proposals import ProposalBook
from ._registry import StoreRegistry
from ._service import LearningService
from ._turn import Turn
from ._worker import LearningUsage, Worker

__all__ = ["LearningMachine"]


class LearningMachine:
    """Runs the learning loop for a set of stores.

    Three levels of configuration, as users write them::

        LearningMachine(user_profile=True)                       # flags
        LearningMachine(learned_knowledge=LearnedKnowledgeConfig(
            mode=LearningMode.PROPOSE, namespace="engineering"))  # full configs
        LearningMachine(custom_stores={"project": ProjectContextStore()})

    Each slot accepts ``True``, a config or a store instance. A turn is driven with
    :meth:`abegin` → the agent answers with ``turn.learned.text`` and ``turn.tools`` →
    ``await turn.afinish(messages)``. Without that, :meth:`build_context`, :meth:`get_tools`
    and :meth:`process` called with the same ``user_id`` and ``session_id`` share one turn.
    """

    def __init__(
        self,
        *,
        db: Db | None = None,
        model: Model | str | None = None,
        embedder: Embedder | None = None,
        user_profile: object = False,
        session_context: object = False,
        learned_knowledge: object = False,
        entity_memory: object = False,
        episodic_memory: object = False,
        decision_log: object = None,
        feedback: object = False,
        self_improvement: object = False,
        custom_stores: Mapping[str, object] | None = None,
        context_budget: int | None = 2000,
        background: bool = True,
        extraction_retries: int = 2,
        max_attempts: int = 5,
        retry_backoff: float = 2.0,
        lease_seconds: float = 300.0,
        worker_concurrency: int = 16,
        max_items_per_store: int = 50,
        max_text_chars: int = 4_000,
        curate_every_turns: int | None = 100,
        curate_every: timedelta | None = None,
        drain_on_exit: float = 10.0,
        dedup_judge: Model | str | bool = True,
    ) -> None:
        """Build a machine.

        Args:
            db: Where learnings live. May be left out when the machine is given to ``Agent``,
                which lends its own.
            model: The model used for background extraction (a pydantic-ai ``Model`` or a
                ``"provider:model"`` string); may be cheaper than the agent's. Defaults to the
                agent's model when used through ``Agent``.
            embedder: Turns text into vectors; defaults to the bundled offline MiniLM embedder.
            user_profile: ``True``, a ``UserProfileConfig`` or a store instance.
            session_context: ``True``, a ``SessionContextConfig`` or a store instance.
            learned_knowledge: ``True``, a ``LearnedKnowledgeConfig`` or a store instance.
            entity_memory: ``True``, an ``EntityMemoryConfig`` or a store instance.
            episodic_memory: ``True``, an ``EpisodicMemoryConfig`` or a store instance.
            decision_log: ``True``, a ``DecisionLogConfig`` or a store: every turn's message,
                answer, tool calls, recalls, model and outcome, recalled for similar requests
                (on by default when ``feedback`` is on).
            feedback: ``True`` or a ``FeedbackConfig``: signals on turns (explicit with
                :meth:`feedback`, implicit from the next message, rules), credited to what each
                turn recalled, and lessons distilled from recurring outcomes.
            self_improvement: ``True`` or a ``SelfImprovementConfig``: reflection on each
                agent's turns proposes small rule changes, replayed by a gate, approved by a
                person (``machine.improvements``); needs ``feedback``.
            custom_stores: Your own stores, by name (the name is also its extraction key).
            context_budget: Token budget of the combined context block (``None``: no limit).
            background: Process pending work in a background task of this process. Set ``False``
                when a separate ``learning-machines worker`` does it (then no model is needed
                here).
            extraction_retries: Times an invalid extraction output is sent back to the model.
            max_attempts: Tries of a piece of pending work before it is parked as failed.
            retry_backoff: Seconds before the first retry; doubles with each attempt.
            lease_seconds: A claimed item whose worker died is claimable again after this.
            worker_concurrency: Turns a worker learns from at once (their model calls overlap,
                their texts share embedding calls; one user's turns stay in order). Lower it if
                your model provider limits concurrent requests.
            max_items_per_store: Items of one kind (entities, facts, insights...) a store takes
                from one turn's extraction; the rest is dropped and logged.
            max_text_chars: Characters of one extracted text value; longer values are cut and
                logged.
            curate_every_turns: Enqueue a curation run every this many turns (``None``: never).
            curate_every: Also enqueue a curation run at most once per this interval.
            drain_on_exit: Seconds this process keeps learning when the interpreter exits
                (a script that ends right after its last turn), before handing back the rest.
            dedup_judge: Who decides near duplicates similarity cannot (paraphrases in the
                uncertain band): ``True`` asks the learning model, once per curation run (its
                cost is in the run's report); a model of its own; or ``False`` (similarity and
                lexical guards alone).

        """
        self.options = MachineOptions.build(
            stores={
                "user_profile": user_profile,
                "session_context": session_context,
                "learned_knowledge": learned_knowledge,
                "entity_memory": entity_memory,
                "episodic_memory": episodic_memory,
            },
            custom_stores=custom_stores,
            decision_log=decision_log,
            feedback=feedback,
            self_improvement=self_improvement,
            context_budget=context_budget,
            extraction_retries=extraction_retries,
            max_attempts=max_attempts,
            retry_backoff=retry_backoff,
            lease_seconds=lease_seconds,
            worker_concurrency=worker_concurrency,
            max_items_per_store=max_items_per_store,
            max_text_chars=max_text_chars,
            curate_every_turns=curate_every_turns,
            curate_every=curate_every,
            drain_on_exit=drain_on_exit,
        )
        self.db: Db | None = None
        self._model: Model | str | None = model
        self._embedder = embedder
        self._background = background
        self._dedup_judge = dedup_judge
        self.usage = LearningUsage()
        self._open = OpenTurns()
        self._parts: Parts | None = None
        if db is not None:
            self.bind(db=db, model=model)

    # --- building -----------------------------------------------------------------------------

    @property
    def registry(self) -> StoreRegistry:
        """The stores, resolved once: slots, capabilities, tools, routing."""
        return self.options.registry

    @property
    def stores(self) -> dict[str, Any]:
        """The store objects, by slot name."""
        return self.registry.stores

    @property
    def embedder(self) -> Embedder:
        """The machine's embedder (the bundled offline MiniLM unless one was given).

        Concurrent async calls share model calls (:class:`BatchingEmbedder`); results, name and
        dimensions are the given embedder's.
        """
        if not isinstance(self._embedder, BatchingEmbedder):
            from ..embedders import default_embedder

            self._embedder = BatchingEmbedder(self._embedder or default_embedder())
        return self._embedder

    @property
    def model(self) -> Model | str | None:
        """The model background extraction uses."""
        return self._model

    @model.setter
    def model(self, model: Model | str | None) -> None:
        self._model = model
        if self._parts is not None:
            self._parts.worker.model = resolve_model(model) if model is not None else None

    @property
    def dedup_judge(self) -> Model | str | None:
        """The model curation asks about uncertain near duplicates (``None``: none)."""
        if self._dedup_judge is True:
            return self._model
        if self._dedup_judge is False:
            return None
        return self._dedup_judge

    @property
    def background(self) -> bool:
        """Whether this process learns in a background task."""
        return self._background

    @background.setter
    def background(self, value: bool) -> None:
        self._background = value
        if self._parts is not None:
            self._parts.runner.enabled = value

    def bind(self, *, db: Db | None, model: Model | str | None = None) -> None:
        """Attach the db (and a default learning model) and check the whole configuration.

        ``Agent`` calls this with its own db and model. Raises :class:`ConfigurationError` for a
        configuration that could not learn: no db, or background learning without a usable
        model (a ``"provider:model"`` string whose SDK or API key is missing included).
        """
        if self._parts is not None:
            if db is not None and db is not self.db:
                raise ConfigurationError(
                    "this LearningMachine is already attached to another db; build one machine "
                    "per db"
                )
            if self._model is None and model is not None:
                self.model = model
            self._check_model()
            return
        if db is None:
            raise ConfigurationError(
                "learning needs a db: pass db=SqliteDb('learnings.db') to Agent(...) or "
                "LearningMachine(...)"
            )
        if self._model is None:
            self._model = model
        self._check_model()
        self.db = db
        self.registry.bind(db=db, embedder=self.embedder)
        self._parts = Parts(
            self.options,
            db=db,
            embedder=self.embedder,
            model=lambda: self._model,
            dedup_judge=self.dedup_judge,
            background=self._background,
            usage=self.usage,
        )

    def _check_model(self) -> None:
        check_learning_model(
            self._model, needed_by=self.registry.needing_a_model(), background=self._background
        )

    def _require(self) -> Parts:
        if self._parts is None:
            raise ConfigurationError(
                "this LearningMachine has no db: pass db=... to LearningMachine(...) or give the "
                "machine to Agent(db=..., learning=machine)"
            )
        return self._parts

    @property
    def proposals(self) -> ProposalBook:
        """Proposals waiting for approval (PROPOSE and HITL stores)."""
        return self._require().proposals

    @property
    def service(self) -> LearningService:
        """Admin of what was learned: inspect, curate, history, restore, forget, export."""
        return self._require().service

    @property
    def decisions(self) -> DecisionBook:
        """The decision log: list, get and search records, with their outcomes and signals."""
        parts = self._require()
        if parts.decisions is None:
            raise ConfigurationError(
                "this machine has no decision log: build it with LearningMachine(decision_log="
                "True) (or feedback=True, which turns it on)"
            )
        return parts.decisions

    async def afeedback(
        self,
        *,
        turn_id: str,
        score: float,
        comment: str | None = None,
        by: str | None = None,
        user_id: str | None = None,
    ) -> FeedbackSignal:
        """Rate a turn: ``score`` from -1 (bad) to 1 (good); thumbs are -1 and 1.

        ``by`` is who rates (default: the turn's user); rating the same turn again replaces
        that rater's earlier signal. The outcome is credited to what the turn recalled and to
        its decision record. ``user_id`` (whose turn it is) is looked up when not given.
        """
        feedback = self._require().feedback
        if feedback is None:
            raise ConfigurationError(
                "this machine takes no feedback: build it with LearningMachine(feedback=True)"
            )
        return await feedback.arate(
            turn_id=turn_id, score=score, comment=comment, by=by, user_id=user_id
        )

    feedback = sync_twin(afeedback)

    # --- self-improvement ---------------------------------------------------------------------

    @property
    def improvements(self) -> ImprovementBook:
        """Self-improvement: proposals to review (approve, reject), versions, rollback, effect."""
        parts = self._require()
        if parts.improvements is None:
            raise ConfigurationError(
                "this machine has no self-improvement: build it with LearningMachine("
                "feedback=True, self_improvement=True)"
            )
        return parts.improvements

    async def aimprove(
        self, *, agent_id: str | None = None, team_id: str | None = None
    ) -> ReflectionReport:
        """Reflect now on an agent's turns: one model call, then screen and gate each change.

        Returns what it proposed; the proposals that passed wait in ``machine.improvements``.
        """
        return await self.improvements.aimprove(agent_id=agent_id, team_id=team_id)

    improve = sync_twin(aimprove)

    async def ainstructions(
        self, *, agent_id: str | None = None, team_id: str | None = None
    ) -> ActiveInstructions:
        """An agent's active instructions: its base text plus the approved rules.

        Record its ``version`` on each turn: ``RunInfo(instructions_version=...)``.
        """
        return await self.improvements.ainstructions(agent_id=agent_id, team_id=team_id)

    instructions = sync_twin(ainstructions)

    @property
    def worker(self) -> Worker:
        """The worker that processes pending work (what ``learning-machines worker`` runs)."""
        return self._require().worker

    # --- a turn -------------------------------------------------------------------------------

    async def abegin(
        self,
        /,
        message: str | None,
        *,
        user_id: str | None = None,
        session_id: str | None = None,
        agent_id: str | None = None,
        team_id: str | None = None,
        history_turns: int = 0,
        now: datetime | None = None,
        recall: bool = True,
        message_required: bool = True,
        **extra: Any,
    ) -> Turn:
        """Begin a turn: check its inputs, recall, bind the tools.

        Every id and the message are checked before anything else happens (a clear
        :class:`ValidationError` says how to fix a bad one). ``history_turns`` of the session's
        recent turns are loaded into ``turn.history``. ``now`` is when the turn happens
        (default: now; pass it when replaying recorded conversations). ``recall=False`` skips
        recall (a turn that is only recorded). Extra keywords (``project_id="apollo"``) reach
        every store.
        """
        context = TurnContext.new(
            message=message,
            user_id=user_id,
            session_id=session_id if session_id is not None else new_id(),
            agent_id=agent_id,
            team_id=team_id,
            turn_id=new_id(),
            turn_index=0,
            now=now or utcnow(),
            extra=extra,
            message_required=message_required,
        )
        opener = self._require().opener
        return await opener.aopen(context, history_turns=history_turns, recall=recall)

    begin = sync_twin(abegin)

    # --- the three wrappers (one turn shared per user and session) ------------------------------

    @staticmethod
    def _key(context: Mapping[str, Any]) -> tuple[str | None, str | None]:
        return (context.get("user_id"), context.get("session_id"))

    async def abuild_context(
        self, /, *, message: str | None = None, **context: Any
    ) -> LearningContext:
        """Recall from every store and render one system-prompt block (data and guidance apart).

        Begins a turn for this user and session that :meth:`get_tools` and :meth:`process` then
        share. ``message`` is the user's current message; relevant learnings are chosen for it.
        """
        turn = await self.abegin(message, message_required=False, **context)
        self._open.put(self._key(context), turn)
        return turn.learned

    build_context = sync_twin(abuild_context)

    def get_tools(self, **context: Any) -> list[Callable[..., str]]:
        """The stores' tools for this turn as plain sync callables (names are unique).

        They belong to the turn :meth:`build_context` began for this user and session (or a new
        one); calling one from ordinary synchronous code runs it to completion.
        """
        message = context.pop("message", None)
        turn = self._open.get(self._key(context), message, take=False)
        if turn is None:
            turn = run_sync(self.abegin(message, recall=False, message_required=False, **context))
            self._open.put(self._key(context), turn)
        return turn.tools.sync_callables()

    async def aprocess(
        self, /, messages: str | Sequence[Any], *, message: str | None = None, **context: Any
    ) -> PendingWork | None:
        """Learn from a finished turn: writes it and its pending work durably, returns at once.

        Finishes the turn :meth:`build_context` began for this user and session when its
        message is the turn's first user message; otherwise records a new turn. Pass the
        whole turn — the user's message, the answer, tool results — as ``messages``;
        ``message`` is the user's message when it is not the first user message there.
        """
        chat = to_chat_messages(messages)
        first = message or next((m.content for m in chat if m.role == "user"), None)
        turn = self._open.get(self._key(context), first, take=True)
        if turn is None:
            turn = await self.abegin(first, recall=False, message_required=False, **context)
        return await turn.afinish(chat)

    process = sync_twin(aprocess)

    # --- background learning ------------------------------------------------------------------

    async def await_idle(
        self, *, timeout: float | None = 60.0, raise_on_failure: bool = True
    ) -> None:
        """Wait until no work is pending or running, doing claimable work meanwhile.

        Raises ``TimeoutError`` after ``timeout`` seconds, and :class:`LearningFailedError`
        (with the cause) when work of this process was parked as failed since the last call —
        unless ``raise_on_failure`` is false. Failures are also logged as they happen.
        """
        parts = self._require()
        # The worker belongs to the loop its background runner uses; wait there.
        await on_portal(parts.worker.wait_idle(timeout=timeout))
        parked = parts.worker.take_parked()
        if parked and raise_on_failure:
            raise LearningFailedError(parked)

    wait_idle = sync_twin(await_idle)

    def close(self, *, timeout: float = 30.0) -> None:
        """Stop this process's background learning after the item in hand.

        Work not yet done stays pending in the db, for the next process or a worker command.
        """
        self._background = False
        if self._parts is not None:
            self._parts.runner.stop(timeout=timeout)
