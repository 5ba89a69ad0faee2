"""The worker: claims pending work and does it — extraction of finished turns, curation runs.

A finished turn is a ``pending_work`` row written before the answer returns. Any worker — the
machine's background runner, ``machine.wait_idle()``, or ``learning-machines worker`` in another
process — claims it atomically, checks that it can honour what the turn was written with (the
stores, their modes and namespaces), makes the single extraction call, saves the model's output
into the item (a retry resumes and never calls the model twice for one turn), and applies each
store's part on its own: one store failing never stops the others. A crash leaves the item
claimable when its lease expires; failures are logged, retried with backoff and finally parked
as ``failed`` with the error (and the raw model output) visible.

The worker holds the db, the store registry, the model and its settings; it knows no machine.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import traceback
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from pydantic_ai.models import Model
from pydantic_ai.usage import RunUsage

from .._messages import ChatMessage, from_stored_json, to_chat_messages
from .._sync import on_portal
from .._turn_context import TurnContext
from ..db import (
    ClaimWork,
    CountWork,
    Db,
    FailWork,
    FinishWork,
    GetMessage,
    PendingWork,
    UpdateWork,
    new_id,
    utcnow,
)
from ..exceptions import ConfigurationError, ConflictError, LearningMachinesError, NotFoundError
from ..stores import Extraction
from ._extraction import Extractor, clip_output, dump_parts, load_part
from ._jobs import (
    CurationJob,
    ExtractionJob,
    Job,
    ReflectionJob,
    decode_job,
    job_payload,
    with_progress,
)
from ._recall import RecallCache
from ._registry import StoreRegistry

__all__ = ["LearningUsage", "WorkResult", "Worker", "WorkerSettings", "default_worker_id"]

logger = logging.getLogger("learning_machines")


@dataclass
class LearningUsage:
    """Model use for learning, counted in this process (for cost reports and tests)."""

    calls: int = 0
    """Extraction calls made."""
    input_tokens: int = 0
    """Input tokens spent on learning."""
    output_tokens: int = 0
    """Output tokens spent on learning."""
    turns: int = 0
    """Turns processed."""

    def add(self, usage: RunUsage) -> None:
        """Add one call's usage."""
        self.calls += 1
        self.input_tokens += usage.input_tokens or 0
        self.output_tokens += usage.output_tokens or 0


@dataclass
class WorkResult:
    """What one pass of :meth:`Worker.run_pending` did."""

    done: list[str] = field(default_factory=list)
    """Items finished."""
    failed: list[str] = field(default_factory=list)
    """Items that failed (retrying later, or parked)."""


@dataclass(frozen=True, kw_only=True)
class WorkerSettings:
    """How a worker retries and leases."""

    extraction_retries: int = 2
    """Times an invalid extraction output is sent back to the model."""
    retry_backoff: float = 2.0
    """Seconds before the first retry; doubles with each attempt."""
    lease_seconds: float = 300.0
    """A claimed item whose worker died is claimable again after this."""
    max_items_per_store: int = 50
    """Items of one kind a store takes from one turn's extraction (the rest is dropped, logged)."""
    max_text_chars: int = 4_000
    """Characters of one extracted text value (longer values are cut, logged)."""
    concurrency: int = 16
    """Items processed at once (a user's own turns always one after another)."""


def default_worker_id() -> str:
    """``host:pid:random`` — unique per worker."""
    return f"{socket.gethostname()}:{os.getpid()}:{new_id()[:8]}"


class _Refused(ConfigurationError):
    """The worker cannot honour the turn (parked at once: retrying cannot help)."""


class Worker:
    """Claims and processes pending work for one store registry."""

    def __init__(
        self,
        *,
        db: Db,
        registry: StoreRegistry,
        model: Model | str | None,
        settings: WorkerSettings,
        curate: Callable[[CurationJob], Awaitable[Any]],
        recalled: RecallCache | None = None,
        usage: LearningUsage | None = None,
        worker_id: str | None = None,
        kinds: tuple[str, ...] | None = None,
        embed: Callable[[TurnContext], Awaitable[TurnContext]] | None = None,
        reflect: Callable[[ReflectionJob], Awaitable[Any]] | None = None,
    ) -> None:
        self.db = db
        self.reflect = reflect
        """Runs a reflection (self-improvement); ``None`` when the machine has none."""
        self.registry = registry
        self._model: Model | str | None = None
        self._extractor: Extractor | None = None
        self.settings = settings
        self.curate = curate
        self.recalled = recalled
        self.usage = usage or LearningUsage()
        self.worker_id = worker_id or default_worker_id()
        self.model = model
        self.kinds = kinds
        """Kinds of work it claims (``None``: every kind — a dedicated worker process)."""
        self.embed = embed
        """Adds the message's embedding to a turn that has none (one embedding per turn)."""
        self.parked: list[PendingWork] = []
        self._lock = asyncio.Lock()

    @property
    def model(self) -> Model | str | None:
        """The model extraction calls use (``None``: a turn needing one fails loudly)."""
        return self._model

    @model.setter
    def model(self, model: Model | str | None) -> None:
        self._model = model
        self._extractor = (
            None
            if model is None
            else Extractor(model=model, retries=self.settings.extraction_retries)
        )

    # --- the loop ---------------------------------------------------------------------------

    async def run_pending(self, *, limit: int | None = None) -> WorkResult:
        """Claim and process items until none is claimable (or ``limit`` were processed).

        Up to ``settings.concurrency`` items are processed at once (model calls overlap), but a
        user's turns are applied one after another, in the order they were written. Two passes
        in one process (the background runner and ``wait_idle``) take turns, never racing:
        passes run on the library's event loop whichever loop awaits them, so that one lock
        orders them (a lock awaited from two loops is never woken across them).
        """
        return await on_portal(self._run_pending(limit=limit))

    async def _run_pending(self, *, limit: int | None) -> WorkResult:
        result = WorkResult()
        while limit is None or len(result.done) + len(result.failed) < limit:
            room = self.settings.concurrency
            if limit is not None:
                room = min(room, limit - len(result.done) - len(result.failed))
            async with self._lock:
                claimed = await self.db.arun(
                    ClaimWork(
                        worker_id=self.worker_id,
                        kinds=self.kinds,
                        limit=room,
                        lease_seconds=self.settings.lease_seconds,
                    )
                )
                if not claimed:
                    break
                by_user: dict[str | None, list[PendingWork]] = {}
                for item in claimed:
                    by_user.setdefault(item.user_id, []).append(item)
                outcomes = await asyncio.gather(
                    *(self._in_order(items) for items in by_user.values())
                )
            for item_id, ok in (pair for chain in outcomes for pair in chain):
                (result.done if ok else result.failed).append(item_id)
        return result

    async def _in_order(self, items: Sequence[PendingWork]) -> list[tuple[str, bool]]:
        """Process one user's claimed items one after another."""
        return [(item.id, await self.process(item)) for item in items]

    async def wait_idle(self, *, timeout: float | None = 60.0, poll: float = 0.05) -> None:
        """Do claimable work until none of its kinds is pending or running (in any process).

        Raises ``TimeoutError`` after ``timeout`` seconds. Parked (failed) work does not count.
        """
        await on_portal(self._wait_idle(timeout=timeout, poll=poll))

    async def _wait_idle(self, *, timeout: float | None, poll: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            await self._run_pending(limit=None)
            left = await self.db.arun(CountWork(statuses=("pending", "running"), kinds=self.kinds))
            if left == 0:
                return
            if deadline is not None and loop.time() > deadline:
                raise TimeoutError(
                    f"learning work still pending after {timeout} s; see "
                    "machine.service.pending() (is a worker with the right machine running?)"
                )
            await asyncio.sleep(poll)

    def take_parked(self) -> list[PendingWork]:
        """Work this worker parked as failed since the last call (each reported once)."""
        parked, self.parked = self.parked, []
        return parked

    async def process(self, item: PendingWork) -> bool:
        """Process one claimed item; ``True`` if it finished, ``False`` if it failed (recorded)."""
        try:
            job = decode_job(item)
            await self._handlers[type(job)](self, item, job)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - recorded on the item, logged, retried, parked
            await self._record_failure(item, exc)
            return False
        try:
            await self.db.arun(FinishWork(id=item.id, worker_id=self.worker_id))
        except ConflictError as exc:
            # Our lease ran out while we worked and another worker claimed the item: its saved
            # progress lets that worker skip what we applied.
            logger.warning("finished pending work %s after losing its claim: %s", item.id, exc)
        return True

    async def _record_failure(self, item: PendingWork, exc: Exception) -> None:
        attempts = item.attempts
        final = isinstance(exc, _Refused) or attempts >= item.max_attempts
        retry_at = None
        if not final:
            delay = self.settings.retry_backoff * 2 ** (attempts - 1)
            retry_at = utcnow() + timedelta(seconds=delay)
        message = f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, LearningMachinesError):
            message += "\n" + "".join(traceback.format_exception(exc)[-3:])
        log = logger.error if final else logger.warning
        log(
            "learning %s %s failed (attempt %d of %d%s): %s",
            item.kind,
            item.id,
            attempts,
            item.max_attempts,
            "; parked as failed" if final else "; will retry",
            message,
            exc_info=not isinstance(exc, LearningMachinesError),
        )
        try:
            stored = await self.db.arun(
                FailWork(
                    id=item.id,
                    worker_id=self.worker_id,
                    error=message,
                    raw_output=getattr(exc, "raw_output", None),
                    retry_at=retry_at,
                )
            )
        except ConflictError:
            # Our lease expired and another worker claimed the item: it is theirs now.
            logger.warning("lost the claim on pending work %s (%s)", item.id, message)
            return
        if stored.status == "failed":
            self.parked.append(stored)

    # --- extraction -------------------------------------------------------------------------

    def _check(self, job: ExtractionJob) -> None:
        """Refuse a turn this worker's stores cannot honour (parked loudly, never half-done)."""
        for name in job.stores:
            slot = self.registry.get(name)
            if slot is None:
                raise _Refused(
                    f"this turn is for store {name!r}, which this worker's machine does not "
                    "have; run the worker with the app's own machine (learning-machines worker "
                    "--machine module:attribute)"
                )
            recorded = job.fingerprint.get(name, {})
            mine = slot.fingerprint()
            for key in ("mode", "namespace", "read_namespaces", "learning_type"):
                if key in recorded and recorded[key] is not None and recorded[key] != mine[key]:
                    raise _Refused(
                        f"store {name!r} had {key} {recorded[key]!r} when the turn was written, "
                        f"but this worker's machine has {mine[key]!r}; run the worker with the "
                        "app's own machine (--machine module:attribute)"
                    )

    async def _messages(self, job: ExtractionJob) -> list[ChatMessage]:
        if job.messages is not None:
            return to_chat_messages(list(job.messages))
        ctx = job.context
        row = await self.db.arun(
            GetMessage(session_id=ctx.session_id, user_id=ctx.user_id, turn_id=ctx.turn_id)
        )
        if row is None:
            raise NotFoundError(
                f"turn {ctx.turn_id} has no stored messages (was its user forgotten?); "
                "nothing to learn from"
            )
        return from_stored_json(row.messages_json)

    async def _extract(self, item: PendingWork, job: ExtractionJob) -> None:
        self._check(job)
        messages = await self._messages(job)
        recalled = (self.recalled.pop(job.context.turn_id) if self.recalled else None) or {}
        turn = job.context
        if not recalled and self.embed is not None:
            # The stores will recall for their extraction: embed the message once for all.
            turn = await self.embed(turn)
        context = turn.kwargs()
        todo = [name for name in job.stores if name not in job.done]
        done = list(job.done)
        errors: dict[str, str] = {}
        # Stores that need no model first: a failing model call never costs them the turn.
        for name in [n for n in todo if not self.registry[n].describes_extraction]:
            if await self._try(name, job, errors, self.registry[name].process(messages, context)):
                done.append(name)
        describing = [n for n in todo if self.registry[n].describes_extraction]
        specs: dict[str, Extraction] = {}
        for name in describing:
            spec = await self.registry[name].extraction(context, recalled)
            if spec is not None:
                specs[name] = spec
        saved = job.extraction
        if specs and saved is None:
            try:
                saved = await self._call_model(job, messages, specs)
            except BaseException:
                await self._save(item, with_progress(job, done=tuple(done), errors=errors))
                raise
            job = with_progress(job, extraction=saved)
        for name in describing:
            step = self._apply_part(name, specs.get(name), saved, context)
            if await self._try(name, job, errors, step):
                done.append(name)
        await self._save(item, with_progress(job, done=tuple(done), errors=errors))
        self.usage.turns += 1
        if errors:
            failed = ", ".join(f"{name} ({error})" for name, error in errors.items())
            raise _StoresFailed(f"stores failed to learn from this turn: {failed}")

    async def _call_model(
        self, job: ExtractionJob, messages: Sequence[ChatMessage], specs: Mapping[str, Extraction]
    ) -> dict[str, Any]:
        if self._extractor is None:
            raise ConfigurationError(
                "no model for background extraction: pass model=... to LearningMachine"
            )
        result = await self._extractor.extract(
            messages=messages, extractions=specs, now=job.context.now.isoformat()
        )
        self.usage.add(result.usage)
        return dump_parts(result.parts)

    async def _try(
        self, name: str, job: ExtractionJob, errors: dict[str, str], step: Awaitable[None]
    ) -> bool:
        """Run one store's step; a failure is logged and kept, and the other stores go on."""
        try:
            await step
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            errors[name] = f"{type(exc).__name__}: {exc}"
            logger.warning(
                "store %r failed to learn from turn %s: %s",
                name,
                job.context.turn_id,
                errors[name],
                exc_info=not isinstance(exc, LearningMachinesError),
            )
            return False
        return True

    async def _apply_part(
        self,
        name: str,
        spec: Extraction | None,
        saved: Mapping[str, Any] | None,
        context: Mapping[str, Any],
    ) -> None:
        """Give a store its part of the saved output, cut to the limits."""
        if spec is None or saved is None:
            return
        part = load_part(spec, saved.get(name))
        if part is None:
            return
        clipped, notes = clip_output(
            part,
            max_items=self.settings.max_items_per_store,
            max_chars=self.settings.max_text_chars,
        )
        for note in notes:
            logger.warning("extraction for store %r was cut: %s", name, note)
        await self.registry[name].apply_extraction(clipped, context)

    async def _save(self, item: PendingWork, job: ExtractionJob) -> None:
        await self.db.arun(
            UpdateWork(id=item.id, worker_id=self.worker_id, payload=job_payload(job))
        )

    async def _curate(self, item: PendingWork, job: CurationJob) -> None:
        await self.curate(job)

    async def _reflect(self, item: PendingWork, job: ReflectionJob) -> None:
        if self.reflect is None:
            raise _Refused(
                "this is a reflection (self-improvement), and this worker's machine has none; "
                "run the worker with the app's own machine (--machine module:attribute)"
            )
        await self.reflect(job)

    _handlers: Mapping[type[Job], Callable[[Worker, PendingWork, Any], Awaitable[None]]] = {
        ExtractionJob: _extract,
        CurationJob: _curate,
        ReflectionJob: _reflect,
    }


class _StoresFailed(LearningMachinesError):
    """Some stores of a turn failed; the rest were applied and are not redone on retry."""
