"""Processing durable pending work: extraction of finished turns, and curation runs.

A finished turn is written as a ``pending_work`` row before the answer returns. Any worker — the
machine's own background task, ``machine.wait_idle()``, or ``learning-machines worker`` in another
process — claims it atomically, makes the single extraction call, saves the model's output into
the item (so a retry resumes and never calls the model twice for the same turn), applies each
store's part, and records progress store by store. A crash leaves the item claimable again when its
lease expires; failures are retried with exponential backoff and finally parked as ``failed``
with the error (and raw model output) visible.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic_ai.usage import RunUsage

from .._messages import ChatMessage, to_chat_messages
from ..db import ClaimWork, FailWork, FinishWork, PendingWork, UpdateWork, new_id, utcnow
from ..exceptions import ConfigurationError, LearningMachinesError, NotFoundError
from ..stores import AsyncProcessingStore, ExtractingStore, Extraction, LearningStore
from ..stores._protocol import store_mode
from ._extraction import dump_parts, extract, load_part

if TYPE_CHECKING:
    from ._machine import LearningMachine

__all__ = ["LearningUsage", "WorkResult", "check_stores", "process_claimed", "run_pending"]

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
    """What one pass of :func:`run_pending` did."""

    done: list[str] = field(default_factory=list)
    """Items finished."""
    failed: list[str] = field(default_factory=list)
    """Items that failed (retrying later, or parked)."""


def default_worker_id() -> str:
    """``host:pid:random`` — unique per worker."""
    return f"{socket.gethostname()}:{os.getpid()}:{new_id()[:8]}"


def _context_from_payload(payload: Mapping[str, Any]) -> dict[str, Any]:
    context = dict(payload.get("context", {}))
    now = context.get("now")
    if isinstance(now, str):
        context["now"] = datetime.fromisoformat(now)
    return context


async def _call_process(
    store: object, messages: Sequence[ChatMessage], context: dict[str, Any]
) -> None:
    if isinstance(store, AsyncProcessingStore):
        await store.aprocess(messages, **context)
    else:
        assert isinstance(store, LearningStore)
        await asyncio.to_thread(store.process, messages, **context)


async def _extract_turn(machine: LearningMachine, item: PendingWork, worker_id: str) -> PendingWork:
    payload = dict(item.payload)
    context = _context_from_payload(payload)
    messages = to_chat_messages(payload.get("messages", []))
    done: list[str] = list(payload.get("done", []))
    names = list(payload.get("stores", []))
    check_stores(machine, names, payload.get("modes", {}))
    extracting = {
        name: machine.stores[name]
        for name in names
        if name not in done and isinstance(machine.stores[name], ExtractingStore)
    }
    extractions: dict[str, Extraction] = {}
    for name, store in extracting.items():
        assert isinstance(store, ExtractingStore)
        aextraction = getattr(store, "aextraction", None)
        if aextraction is not None and asyncio.iscoroutinefunction(aextraction):
            spec = await aextraction(**context)
        else:
            spec = await asyncio.to_thread(store.extraction, **context)
        if spec is not None:
            extractions[name] = spec
    saved: dict[str, Any] | None = payload.get("extraction")
    if extractions and saved is None:
        model = machine.require_learning_model()
        result = await extract(
            model=model,
            messages=messages,
            extractions=extractions,
            now=(context.get("now") or utcnow()).isoformat(),
            retries=machine.extraction_retries,
        )
        machine.usage.add(result.usage)
        saved = dump_parts(result.parts)
        payload["extraction"] = saved
        item = await machine.require_db().arun(
            UpdateWork(id=item.id, worker_id=worker_id, payload=payload)
        )
    for name in names:
        if name in done:
            continue
        store = machine.stores[name]
        if name in extracting:
            spec = extractions.get(name)
            if spec is not None and saved is not None:
                part = load_part(spec, saved.get(name))
                if part is not None:
                    assert isinstance(store, ExtractingStore)
                    await store.aapply_extraction(part, **context)
        else:
            await _call_process(store, messages, context)
        done.append(name)
        payload["done"] = done
        item = await machine.require_db().arun(
            UpdateWork(id=item.id, worker_id=worker_id, payload=payload)
        )
    machine.usage.turns += 1
    return item


def check_stores(machine: LearningMachine, names: Sequence[str], modes: Mapping[str, Any]) -> None:
    """Refuse to process a turn with a machine set up differently from the one that wrote it.

    A worker missing a store would drop that store's learning; one with another mode would, say,
    apply a HITL store's extraction without review. Both fail loudly (the item is parked with
    this message) instead.
    """
    for name in names:
        store = machine.stores.get(name)
        if store is None:
            raise ConfigurationError(
                f"this turn is for store {name!r}, which this worker's machine does not have; "
                "run the worker with the app's own machine (learning-machines worker --machine "
                "module:attribute)"
            )
        recorded = modes.get(name)
        mode = store_mode(store)
        if recorded is not None and (mode is None or mode.value != recorded):
            raise ConfigurationError(
                f"store {name!r} learned in mode {recorded!r} when the turn was written, but "
                f"this worker's machine has it in mode {mode.value if mode else None!r}; run the "
                "worker with the app's own machine (--machine module:attribute)"
            )


async def process_claimed(machine: LearningMachine, item: PendingWork, worker_id: str) -> bool:
    """Process one claimed item; ``True`` if it finished, ``False`` if it failed (recorded)."""
    try:
        if item.kind == "extract":
            await _extract_turn(machine, item, worker_id)
        elif item.kind == "curate":
            await machine.acurate(**dict(item.payload.get("options", {})))
        else:
            raise ValueError(f"unknown kind of pending work {item.kind!r}")
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - recorded on the item, retried, then parked visibly
        attempts = item.attempts
        retry_at = None
        if attempts < item.max_attempts:
            retry_at = utcnow() + timedelta(seconds=machine.retry_backoff * 2 ** (attempts - 1))
        message = f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, LearningMachinesError):
            message += "\n" + "".join(traceback.format_exception(exc)[-3:])
        try:
            await machine.require_db().arun(
                FailWork(
                    id=item.id,
                    worker_id=worker_id,
                    error=message,
                    raw_output=getattr(exc, "raw_output", None),
                    retry_at=retry_at,
                )
            )
        except NotFoundError:
            # Our lease expired and another worker claimed the item: it is theirs now.
            logger.warning("lost the claim on pending work %s (%s)", item.id, message)
        return False
    await machine.require_db().arun(FinishWork(id=item.id, worker_id=worker_id))
    return True


async def run_pending(
    machine: LearningMachine,
    *,
    worker_id: str,
    limit: int | None = None,
    kinds: tuple[str, ...] | None = None,
) -> WorkResult:
    """Claim and process items until none is claimable (or ``limit`` were processed)."""
    result = WorkResult()
    while limit is None or len(result.done) + len(result.failed) < limit:
        claimed = await machine.require_db().arun(
            ClaimWork(
                worker_id=worker_id, kinds=kinds, limit=1, lease_seconds=machine.lease_seconds
            )
        )
        if not claimed:
            break
        item = claimed[0]
        if await process_claimed(machine, item, worker_id):
            result.done.append(item.id)
        else:
            result.failed.append(item.id)
    return result
