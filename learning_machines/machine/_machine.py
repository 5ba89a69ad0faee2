"""The LearningMachine: recall → context → (agent answers with tools) → extract → store."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic_ai.models import Model

from .._messages import to_chat_messages
from .._modes import LearningMode
from .._sync import run_sync, submit
from ..db import CountWork, Db, EnqueueWork, ListWork, PendingWork, new_id, utcnow
from ..embedders import Embedder
from ..exceptions import (
    BackendError,
    ConfigurationError,
    NotFoundError,
    PermissionDenied,
    ValidationError,
)
from ..stores import (
    ApplyingStore,
    AsyncRecallingStore,
    BindableStore,
    ExtractingStore,
    GuidingStore,
    LearningStore,
    StoreResources,
    WriteGate,
)
from ..stores._protocol import store_mode
from ._context import LearningContext, assemble_context
from ._proposals import ProposalBook
from ._slots import BUILTIN_SLOTS, StoreSpec, resolve_store
from ._worker import LearningUsage, WorkResult, default_worker_id, run_pending

if TYPE_CHECKING:
    from ..curation import Curator

__all__ = ["LearningMachine"]

logger = logging.getLogger("learning_machines")

#: Context keys the machine itself sets; callers may not pass them.
_RESERVED = frozenset({"turn_id", "turn_index", "now", "query_vector", "mode"})


class LearningMachine:
    """Runs the learning loop for a set of stores.

    Three levels of configuration, as users write them::

        LearningMachine(user_profile=True)                       # flags
        LearningMachine(learned_knowledge=LearnedKnowledgeConfig(
            mode=LearningMode.PROPOSE, namespace="engineering"))  # full configs
        LearningMachine(custom_stores={"project": ProjectContextStore()})

    Each slot accepts ``True``, a config or a store instance. Usable without our ``Agent``:
    :meth:`build_context` gives one system-prompt block, :meth:`get_tools` plain callables, and
    :meth:`process` learns from a finished turn (durably, in the background).
    """

    def __init__(
        self,
        *,
        db: Db | None = None,
        model: Model | str | None = None,
        embedder: Embedder | None = None,
        user_profile: StoreSpec = False,
        session_context: StoreSpec = False,
        learned_knowledge: StoreSpec = False,
        entity_memory: StoreSpec = False,
        episodic_memory: StoreSpec = False,
        custom_stores: Mapping[str, object] | None = None,
        context_budget: int | None = 2000,
        background: bool = True,
        extraction_retries: int = 2,
        max_attempts: int = 5,
        retry_backoff: float = 2.0,
        lease_seconds: float = 300.0,
        curate_every_turns: int | None = 100,
        curate_every: timedelta | None = None,
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
            custom_stores: Your own stores, by name.
            context_budget: Token budget of the combined context block (``None``: no limit).
            background: Process pending work in a background task of this process. Set ``False``
                when a separate ``learning-machines worker`` does it.
            extraction_retries: Times an invalid extraction output is sent back to the model.
            max_attempts: Tries of a piece of pending work before it is parked as failed.
            retry_backoff: Seconds before the first retry; doubles with each attempt.
            lease_seconds: A claimed item whose worker died is claimable again after this.
            curate_every_turns: Enqueue a curation run every this many turns (``None``: never).
            curate_every: Also enqueue a curation run at most once per this interval.

        """
        self.db: Db | None = db
        self.model: Model | str | None = model
        self._embedder = embedder
        self.context_budget = context_budget
        self.background = background
        self.extraction_retries = extraction_retries
        self.max_attempts = max_attempts
        self.retry_backoff = retry_backoff
        self.lease_seconds = lease_seconds
        self.curate_every_turns = curate_every_turns
        self.curate_every = curate_every
        self.usage = LearningUsage()
        self.stores: dict[str, object] = {}
        for slot, spec in (
            ("user_profile", user_profile),
            ("session_context", session_context),
            ("learned_knowledge", learned_knowledge),
            ("entity_memory", entity_memory),
            ("episodic_memory", episodic_memory),
        ):
            store = resolve_store(slot, spec)
            if store is not None:
                self.stores[slot] = store
        for name, store in (custom_stores or {}).items():
            if name in self.stores or name in BUILTIN_SLOTS:
                raise ConfigurationError(
                    f"custom store name {name!r} is taken by a built-in store; pick another name"
                )
            self.stores[name] = resolve_store(name, store)
        self._check_stores()
        self._bound = False
        self._proposals: ProposalBook | None = None
        self._curator: Curator | None = None
        self._wake: asyncio.Event | None = None
        self._woken = False
        self._loop_running = False
        self._background_future: Any = None
        self._lock = threading.Lock()
        self._turns_since_curation = 0
        if db is not None:
            self.bind(db=db, model=model)

    # --- building -----------------------------------------------------------------------------

    def _check_stores(self) -> None:
        types: dict[str, str] = {}
        for name, store in self.stores.items():
            if not isinstance(store, LearningStore):
                missing = [
                    member
                    for member in (
                        "learning_type",
                        "recall",
                        "process",
                        "build_context",
                        "get_tools",
                    )
                    if not hasattr(store, member)
                ]
                raise ConfigurationError(
                    f"store {name!r} ({type(store).__name__}) is not a LearningStore: it lacks "
                    f"{', '.join(missing)}. See learning_machines.LearningStore."
                )
            learning_type = store.learning_type
            if learning_type in types:
                raise ConfigurationError(
                    f"stores {types[learning_type]!r} and {name!r} both have learning_type "
                    f"{learning_type!r}; learning types must be unique"
                )
            types[learning_type] = name

    @property
    def embedder(self) -> Embedder:
        """The machine's embedder (the bundled offline MiniLM unless one was given)."""
        if self._embedder is None:
            from ..embedders import default_embedder

            self._embedder = default_embedder()
        return self._embedder

    def bind(self, *, db: Db | None, model: Model | str | None = None) -> None:
        """Attach the db (and a default learning model) and check the whole configuration.

        ``Agent`` calls this with its own db and model. Raises :class:`ConfigurationError` for a
        configuration that could not learn: no db, or background stores but no model.
        """
        if self._bound:
            if db is not None and db is not self.db:
                raise ConfigurationError(
                    "this LearningMachine is already attached to another db; build one machine "
                    "per db"
                )
            if self.model is None:
                self.model = model
            self._check_model()
            return
        if db is None:
            raise ConfigurationError(
                "learning needs a db: pass db=SqliteDb('learnings.db') to Agent(...) or "
                "LearningMachine(...)"
            )
        self.db = db
        if self.model is None:
            self.model = model
        self._check_model()
        for name, store in self.stores.items():
            if isinstance(store, BindableStore):
                mode = store_mode(store) or LearningMode.BACKGROUND
                gate = WriteGate(
                    store_name=name,
                    learning_type=_learning_type(store),
                    mode=mode,
                    db=db,
                    store=store if isinstance(store, ApplyingStore) else _NoApply(name),
                )
                store.bind(StoreResources(name=name, db=db, embedder=self.embedder, gate=gate))
        self._proposals = ProposalBook(db=db, stores=self.stores)
        self._bound = True

    def _check_model(self) -> None:
        needs_model = [
            name
            for name, store in self.stores.items()
            if isinstance(store, ExtractingStore) and _learns_in_background(store)
        ]
        if needs_model and self.model is None:
            raise ConfigurationError(
                f"stores {', '.join(needs_model)} learn in the background and need a model: pass "
                "model='provider:model' to LearningMachine(...) (or use it through Agent, whose "
                "model is used by default)"
            )

    def require_db(self) -> Db:
        """The machine's db; raises :class:`ConfigurationError` when it has none."""
        if self.db is None or not self._bound:
            raise ConfigurationError(
                "this LearningMachine has no db: pass db=... to LearningMachine(...) or give the "
                "machine to Agent(db=..., learning=machine)"
            )
        return self.db

    def require_learning_model(self) -> Model | str:
        """The model for extraction; raises :class:`ConfigurationError` when there is none."""
        if self.model is None:
            raise ConfigurationError("no model for background extraction: set model=...")
        return self.model

    @property
    def proposals(self) -> ProposalBook:
        """Proposals waiting for approval (PROPOSE and HITL stores)."""
        self.require_db()
        assert self._proposals is not None
        return self._proposals

    @property
    def curator(self) -> Curator:
        """Curation of this machine's db (dedup, decay, history, forget, export)."""
        if self._curator is None:
            from ..curation import Curator

            self._curator = Curator(db=self.require_db(), embedder=self.embedder)
        return self._curator

    # --- context and turn keys ------------------------------------------------------------------

    def _turn_context(self, context: Mapping[str, Any]) -> dict[str, Any]:
        reserved = _RESERVED & set(context)
        if reserved - {"turn_id", "turn_index", "now"}:
            raise ValidationError(
                f"{', '.join(sorted(reserved))} are set by the machine; do not pass them"
            )
        ctx = dict(context)
        ctx.setdefault("now", utcnow())
        ctx.setdefault("turn_id", new_id())
        for name, store in self.stores.items():
            required = getattr(store, "required_context", ())
            missing = [key for key in required if not ctx.get(key)]
            if missing:
                raise ConfigurationError(
                    f"store {name!r} needs {', '.join(missing)} for every turn: pass "
                    f"{', '.join(f'{k}=...' for k in missing)} to run()/build_context()/process()"
                )
        return ctx

    # --- recall ---------------------------------------------------------------------------------

    async def abuild_context(
        self, *, message: str | None = None, **context: Any
    ) -> LearningContext:
        """Recall from every store and render one system-prompt block (data and guidance apart).

        ``message`` is the user's current message; relevant learnings are chosen for it.
        """
        self.require_db()
        ctx = self._turn_context({**context, "message": message})
        if message and any(isinstance(s, BindableStore) for s in self.stores.values()):
            ctx["query_vector"] = tuple(
                float(x) for x in (await _aembed(self.embedder, [message]))[0]
            )

        async def recall(store: object) -> Any:
            if isinstance(store, AsyncRecallingStore):
                return await store.arecall(**ctx)
            assert isinstance(store, LearningStore)
            return await asyncio.to_thread(store.recall, **ctx)

        names = list(self.stores)
        results = await asyncio.gather(*(recall(self.stores[name]) for name in names))
        recalled = dict(zip(names, results, strict=True))
        blocks: dict[str, str] = {}
        guidance: dict[str, str] = {}
        budgets: dict[str, int | None] = {}
        for name in names:
            store = self.stores[name]
            assert isinstance(store, LearningStore)
            blocks[name] = store.build_context(recalled[name]) or ""
            config = getattr(store, "config", None)
            budgets[name] = getattr(config, "max_tokens", None)
            if isinstance(store, GuidingStore):
                guidance[name] = store.guidance(**ctx)
        if self._has_mode(LearningMode.PROPOSE):
            guidance["_proposals"] = (
                "Some things you save become proposals: tell the user what you proposed and ask "
                "them to confirm. When they confirm in a later message, call approve_proposal."
            )
        text, kept = assemble_context(
            blocks=blocks, guidance=guidance, budgets=budgets, total_budget=self.context_budget
        )
        return LearningContext(text=text, recalled=recalled, blocks=kept, guidance=guidance)

    def build_context(self, *, message: str | None = None, **context: Any) -> LearningContext:
        """Sync :meth:`abuild_context`."""
        return run_sync(self.abuild_context(message=message, **context))

    # --- tools ----------------------------------------------------------------------------------

    def _has_mode(self, mode: LearningMode) -> bool:
        return any(store_mode(store) is mode for store in self.stores.values())

    def get_tools(self, **context: Any) -> list[Callable[..., Any]]:
        """Every store's tools for this turn, bound to its context (names are unique)."""
        self.require_db()
        ctx = self._turn_context(context)
        tools: list[Callable[..., Any]] = []
        seen: dict[str, str] = {}
        for name, store in self.stores.items():
            assert isinstance(store, LearningStore)
            for tool in store.get_tools(**ctx):
                tool_name = getattr(tool, "__name__", repr(tool))
                if tool_name in seen:
                    raise ConfigurationError(
                        f"stores {seen[tool_name]!r} and {name!r} both offer a tool named "
                        f"{tool_name!r}; tool names must be unique"
                    )
                seen[tool_name] = name
                tools.append(tool)
        if self._has_mode(LearningMode.PROPOSE):
            tools.append(self._approve_tool(ctx))
        return tools

    def _approve_tool(self, ctx: Mapping[str, Any]) -> Callable[..., Any]:
        book = self.proposals

        async def approve_proposal(proposal_id: str) -> str:
            """Record that the user confirmed a proposal you made in an EARLIER turn.

            Call this only when the user's current message says yes to it. It fails for
            proposals made in this same turn, by another user, or needing a human reviewer.

            Args:
                proposal_id: The id you were given when you proposed it.

            """
            try:
                proposal = await book.aapprove_in_chat(
                    proposal_id,
                    user_id=ctx.get("user_id"),
                    session_id=ctx.get("session_id"),
                    turn_index=ctx.get("turn_index"),
                    message=ctx.get("message"),
                )
            except (PermissionDenied, ValidationError, NotFoundError) as refused:
                # The refusal is the tool's answer: the model must tell the user, not retry.
                return f"NOT approved: {refused}"
            return f"approved; saved as learning {proposal.learning_id}"

        return approve_proposal

    # --- learning from a finished turn ----------------------------------------------------------

    def extraction_work(self, messages: str | Sequence[Any], **context: Any) -> PendingWork | None:
        """The pending work that learns from a finished turn (``None`` if no store learns from it).

        ``Agent`` writes it in the same transaction as the turn itself.
        """
        self.require_db()
        ctx = self._turn_context(context)
        names = [name for name, store in self.stores.items() if _learns_in_background(store)]
        if not names:
            return None
        chat = [m.to_dict() for m in to_chat_messages(messages)]
        json_ctx: dict[str, Any] = {}
        for key, value in ctx.items():
            if key == "query_vector":
                continue
            if isinstance(value, datetime):
                json_ctx[key] = value.isoformat()
                continue
            try:
                json.dumps(value)
            except TypeError as exc:
                raise ValidationError(
                    f"context value {key}={value!r} is not JSON-serialisable; pending work is "
                    "stored in the db, so pass strings, numbers, lists or dicts"
                ) from exc
            json_ctx[key] = value
        return PendingWork(
            kind="extract",
            payload={
                "messages": chat,
                "context": json_ctx,
                "stores": names,
                "modes": {
                    name: (mode.value if (mode := store_mode(self.stores[name])) else None)
                    for name in names
                },
            },
            dedupe_key=f"extract:{ctx['turn_id']}",
            user_id=ctx.get("user_id"),
            max_attempts=self.max_attempts,
        )

    async def aprocess(self, messages: str | Sequence[Any], **context: Any) -> PendingWork | None:
        """Learn from a finished turn: writes durable pending work, returns at once.

        The work is done in the background (or by :meth:`wait_idle` / a worker process). Pass the
        whole turn — the user's message, the answer, tool results — as ``messages``.
        """
        db = self.require_db()
        work = self.extraction_work(messages, **context)
        items: list[PendingWork] = []
        if work is not None:
            items.append(work)
        curate = self._curation_work()
        if curate is not None:
            items.append(curate)
        if not items:
            return None
        stored = await db.abatch([EnqueueWork(work=item) for item in items])
        self.notify()
        return stored[0] if work is not None else None

    def process(self, messages: str | Sequence[Any], **context: Any) -> PendingWork | None:
        """Sync :meth:`aprocess`."""
        return run_sync(self.aprocess(messages, **context))

    def _curation_work(self) -> PendingWork | None:
        due_key: str | None = None
        with self._lock:
            self._turns_since_curation += 1
            if self.curate_every_turns and self._turns_since_curation >= self.curate_every_turns:
                self._turns_since_curation = 0
                due_key = f"curate:turns:{new_id()}"
        if due_key is None and self.curate_every is not None:
            window = int(utcnow().timestamp() // self.curate_every.total_seconds())
            due_key = f"curate:window:{window}"
        if due_key is None:
            return None
        return PendingWork(kind="curate", payload={"options": {}}, dedupe_key=due_key)

    def curation_work(self) -> PendingWork | None:
        """The curation run due after one more turn, if any (``Agent`` enqueues it)."""
        return self._curation_work()

    # --- workers --------------------------------------------------------------------------------

    def notify(self) -> None:
        """Wake the background worker (pending work was added)."""
        if not self.background:
            return
        with self._lock:
            # Set under the lock the loop reads before it stops: a wake-up is never lost.
            self._woken = True
            if not self._loop_running:
                self._loop_running = True
                self._background_future = submit(self._background_loop())
                return
        self._wake_loop()

    def _wake_loop(self) -> None:
        wake = self._wake
        if wake is not None:
            from .._sync import portal_loop

            portal_loop().call_soon_threadsafe(wake.set)

    async def _background_loop(self) -> None:
        self._wake = asyncio.Event()
        worker_id = default_worker_id()
        failures = 0
        try:
            while self.background:
                self._wake.clear()
                with self._lock:
                    self._woken = False
                try:
                    result = await run_pending(self, worker_id=worker_id, limit=1)
                    failures = 0
                except (BackendError, NotFoundError) as exc:
                    # The db is unreachable or closed: the work stays durable in it. Back off,
                    # and stop once the machine is closed; a later notify() starts a new loop.
                    if not self.background or self.require_db().closed:
                        return
                    failures += 1
                    logger.warning("learning worker: %s (attempt %d)", exc, failures)
                    if failures >= 5:
                        return
                    await asyncio.sleep(min(30.0, self.retry_backoff * 2**failures))
                    continue
                if result.done or result.failed:
                    continue
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=1.0)
                except TimeoutError:
                    pending = await self.require_db().arun(CountWork(statuses=("pending",)))
                    with self._lock:
                        if pending == 0 and not self._woken:
                            self._loop_running = False
                            return
        finally:
            with self._lock:
                self._loop_running = False

    def close(self, *, timeout: float = 30.0) -> None:
        """Stop this process's background worker after the item it is on.

        Work not yet done stays pending in the db, for the next process or a worker command.
        """
        self.background = False
        future = self._background_future
        if future is None or future.done():
            return
        self._wake_loop()
        try:
            future.result(timeout=timeout)
        except TimeoutError:
            future.cancel()

    async def arun_pending(self, *, limit: int | None = None) -> WorkResult:
        """Process claimable pending work in this task (what a worker does)."""
        self.require_db()
        return await run_pending(self, worker_id=default_worker_id(), limit=limit)

    async def await_idle(self, *, timeout: float | None = 60.0, poll: float = 0.05) -> None:
        """Wait until no work is pending or running, processing claimable work meanwhile.

        Raises ``TimeoutError`` after ``timeout`` seconds. Failed (parked) work does not count.
        """
        db = self.require_db()
        worker_id = default_worker_id()
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            await run_pending(self, worker_id=worker_id)
            if await db.arun(CountWork(statuses=("pending", "running"))) == 0:
                return
            if deadline is not None and loop.time() > deadline:
                raise TimeoutError(
                    f"learning work still pending after {timeout} s; see machine.pending()"
                )
            await asyncio.sleep(poll)

    def wait_idle(self, *, timeout: float | None = 60.0) -> None:
        """Sync :meth:`await_idle`: block until background learning has caught up."""
        run_sync(self.await_idle(timeout=timeout))

    def pending(self, *, status: str | None = None, limit: int | None = 100) -> list[PendingWork]:
        """Pending work (``status`` ``"pending"``, ``"running"``, ``"failed"``, ``"done"``)."""
        statuses = None if status is None else (status,)
        return self.require_db().run(ListWork(statuses=statuses, limit=limit))  # type: ignore[arg-type]

    def failures(self) -> list[PendingWork]:
        """Work parked as failed, with its error and raw model output."""
        return self.pending(status="failed")

    # --- curation -------------------------------------------------------------------------------

    async def acurate(self, **options: Any) -> Any:
        """Run curation now (dedup, supersession, decay, pruning); returns its report."""
        return await self.curator.acurate(**options)

    def curate(self, **options: Any) -> Any:
        """Sync :meth:`acurate`."""
        return run_sync(self.acurate(**options))

    def history(self, learning_id: str) -> Any:
        """Every recorded change of a learning, oldest first."""
        return run_sync(self.curator.ahistory(learning_id))

    def restore(self, learning_id: str, **options: Any) -> Any:
        """Undo the last curation step on a learning."""
        return run_sync(self.curator.arestore(learning_id, **options))

    def forget(self, *, user_id: str, **options: Any) -> dict[str, int]:
        """Delete everything private to ``user_id``; returns what was deleted, per table."""
        result: dict[str, int] = run_sync(self.curator.aforget(user_id, **options))
        return result

    def export(self, *, user_id: str) -> dict[str, Any]:
        """Everything private to ``user_id``, as JSON-ready data."""
        result: dict[str, Any] = run_sync(self.curator.aexport(user_id))
        return result

    def import_(self, data: Mapping[str, Any]) -> dict[str, int]:
        """Restore an :meth:`export` into this machine's db."""
        result: dict[str, int] = run_sync(self.curator.aimport(data))
        return result


class _NoApply:
    """Gate target for stores that cannot apply held writes (they cannot be PROPOSE/HITL)."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def apply_write(self, payload: Mapping[str, Any], **context: Any) -> list[str]:
        raise ConfigurationError(f"store {self.name!r} has no apply_write; it cannot apply writes")


def _learning_type(store: object) -> str:
    assert isinstance(store, LearningStore)
    return store.learning_type


def _learns_in_background(store: object) -> bool:
    mode = store_mode(store)
    if mode is None:
        return True
    if mode in (LearningMode.BACKGROUND, LearningMode.HITL):
        return isinstance(store, ExtractingStore) or mode is LearningMode.BACKGROUND
    return False


async def _aembed(embedder: Embedder, texts: list[str]) -> Any:
    from ..embedders import aembed

    return await aembed(embedder, texts)
