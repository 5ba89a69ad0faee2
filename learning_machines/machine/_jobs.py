"""Pending work as typed jobs, with one codec to and from the ``pending_work`` table (pure).

An :class:`ExtractionJob` learns from one finished turn: it carries the turn's context (with
the message's embedding, so no worker embeds it again), the stores it is for and what each store
was when the turn was written (mode, namespaces), and its progress (stores done, the model's
saved output) so a retry resumes instead of redoing. The turn's messages are not copied into
it: the worker reads them from the turn's row by id. A :class:`CurationJob` is a curation run;
a :class:`ReflectionJob` is one agent's reflection (self-improvement).
"""

from __future__ import annotations

import base64
import struct
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from .._turn_context import TurnContext
from ..db import PendingWork, new_id, utcnow
from ..exceptions import ValidationError
from ..improvement._model import ReflectionJob

__all__ = [
    "CURATE",
    "EXTRACT",
    "REFLECT",
    "CurationJob",
    "CurationSchedule",
    "ExtractionJob",
    "Job",
    "ReflectionJob",
    "decode_job",
    "encode_job",
    "extraction_kind",
]

EXTRACT = "extract"
CURATE = "curate"
REFLECT = "reflect"


def extraction_kind(route: str) -> str:
    """The kind of a turn's extraction work for machines configured as ``route`` says.

    Machines with other stores, modes or namespaces on the same db leave it alone; a worker
    that claims every kind (``learning-machines worker``) refuses it loudly instead.
    """
    return f"{EXTRACT}:{route}"


@dataclass(frozen=True, kw_only=True)
class ExtractionJob:
    """Learn from one finished turn, for the stores named."""

    context: TurnContext
    """The turn (its message and embedding included)."""
    stores: tuple[str, ...]
    """Slots that learn from it."""
    fingerprint: Mapping[str, Mapping[str, Any]]
    """Per slot: learning type, mode and namespaces when the turn was written."""
    done: tuple[str, ...] = ()
    """Slots already applied (a retry skips them)."""
    errors: Mapping[str, str] = field(default_factory=dict)
    """Slots whose last attempt failed, with the error."""
    extraction: Mapping[str, Any] | None = None
    """The extraction call's output per slot, saved so a retry never calls the model again."""
    messages: tuple[Mapping[str, Any], ...] | None = None
    """The turn's messages, only for work written by older versions (now read by turn id)."""


@dataclass(frozen=True, kw_only=True)
class CurationJob:
    """A curation run (dedup, supersession, decay, caps)."""

    options: Mapping[str, Any] = field(default_factory=dict)
    """Keyword arguments of the run."""
    key: str | None = None
    """Enqueueing two jobs with one key keeps one (one run per schedule window)."""


Job = ExtractionJob | CurationJob | ReflectionJob


def _pack_vector(vector: tuple[float, ...] | None) -> str | None:
    if vector is None:
        return None
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


def _unpack_vector(text: str | None) -> tuple[float, ...] | None:
    if not text:
        return None
    raw = base64.b64decode(text)
    return tuple(struct.unpack(f"<{len(raw) // 4}f", raw))


def _context_json(ctx: TurnContext) -> dict[str, Any]:
    return {
        "user_id": ctx.user_id,
        "session_id": ctx.session_id,
        "agent_id": ctx.agent_id,
        "team_id": ctx.team_id,
        "turn_id": ctx.turn_id,
        "turn_index": ctx.turn_index,
        "now": ctx.now.isoformat(),
        "message": ctx.message,
        "query_vector": _pack_vector(ctx.query_vector),
        "extra": dict(ctx.extra),
    }


_CONTEXT_KEYS = frozenset(
    {"user_id", "session_id", "agent_id", "team_id", "turn_id", "turn_index", "now", "message"}
)


def _context_from(data: Mapping[str, Any]) -> TurnContext:
    now = data.get("now")
    extra = data.get("extra")
    if not isinstance(extra, Mapping):  # written by an older version: extras at the top
        extra = {k: v for k, v in data.items() if k not in _CONTEXT_KEYS and k != "query_vector"}
    vector = data.get("query_vector")
    return TurnContext(
        user_id=data.get("user_id"),
        session_id=str(data.get("session_id") or ""),
        agent_id=data.get("agent_id"),
        team_id=data.get("team_id"),
        turn_id=str(data.get("turn_id") or ""),
        turn_index=int(data.get("turn_index") or 0),
        now=datetime.fromisoformat(now) if isinstance(now, str) else utcnow(),
        message=data.get("message"),
        query_vector=_unpack_vector(vector) if isinstance(vector, str) else None,
        extra=dict(extra),
    )


def encode_job(job: Job, *, max_attempts: int, route: str = "") -> PendingWork:
    """The ``pending_work`` row for a new job.

    ``route`` is the writing machine's (see :func:`extraction_kind`); it routes extraction
    only. Curation and reflection are not tied to a store configuration: a reflection is one
    agent's, read from the agent's own records, so it is of kind ``reflect`` whatever the
    route, claimed by every machine with self-improvement and by no machine without it.
    """
    if isinstance(job, CurationJob):
        return PendingWork(
            kind=CURATE,
            payload={"options": dict(job.options)},
            dedupe_key=job.key or f"curate:{new_id()}",
            max_attempts=max_attempts,
        )
    if isinstance(job, ReflectionJob):
        return PendingWork(
            kind=REFLECT,
            payload={"agent_id": job.agent_id, "team_id": job.team_id},
            dedupe_key=job.key or f"reflect:{new_id()}",
            max_attempts=max_attempts,
        )
    return PendingWork(
        kind=extraction_kind(route) if route else EXTRACT,
        payload=job_payload(job),
        dedupe_key=f"extract:{job.context.turn_id}",
        user_id=job.context.user_id,
        max_attempts=max_attempts,
    )


def job_payload(job: ExtractionJob) -> dict[str, Any]:
    """The JSON payload of an extraction job (progress included)."""
    payload: dict[str, Any] = {
        "version": 2,
        "context": _context_json(job.context),
        "stores": list(job.stores),
        "fingerprint": {name: dict(fp) for name, fp in job.fingerprint.items()},
        "done": list(job.done),
        "errors": dict(job.errors),
    }
    if job.extraction is not None:
        payload["extraction"] = dict(job.extraction)
    if job.messages is not None:
        payload["messages"] = [dict(m) for m in job.messages]
    return payload


def decode_job(item: PendingWork) -> Job:
    """The job a ``pending_work`` row holds (rows written by older versions included).

    Raises :class:`ValidationError` for a kind or payload this version cannot read.
    """
    payload = item.payload
    if item.kind == CURATE:
        return CurationJob(options=dict(payload.get("options") or {}), key=item.dedupe_key)
    if item.kind == REFLECT:
        return ReflectionJob(
            agent_id=payload.get("agent_id"), team_id=payload.get("team_id"), key=item.dedupe_key
        )
    if item.kind != EXTRACT and not item.kind.startswith(EXTRACT + ":"):
        raise ValidationError(
            f"pending work {item.id} is of kind {item.kind!r}, which this version cannot process"
        )
    context = payload.get("context")
    if not isinstance(context, Mapping):
        raise ValidationError(f"pending work {item.id} has no turn context in its payload")
    fingerprint = payload.get("fingerprint")
    if not isinstance(fingerprint, Mapping):  # older versions recorded modes only
        modes = payload.get("modes") or {}
        fingerprint = {name: {"mode": mode} for name, mode in dict(modes).items()}
    messages = payload.get("messages")
    return ExtractionJob(
        context=_context_from(context),
        stores=tuple(payload.get("stores") or ()),
        fingerprint={str(k): dict(v) for k, v in fingerprint.items()},
        done=tuple(payload.get("done") or ()),
        errors=dict(payload.get("errors") or {}),
        extraction=payload.get("extraction"),
        messages=tuple(messages) if isinstance(messages, list) else None,
    )


def with_progress(job: ExtractionJob, **changes: Any) -> ExtractionJob:
    """The job with progress recorded (``done``, ``errors``, ``extraction``)."""
    return replace(job, **changes)


class CurationSchedule:
    """Says when a curation run is due: every N turns and/or once per time window."""

    def __init__(self, *, every_turns: int | None, every: timedelta | None) -> None:
        self.every_turns = every_turns
        self.every = every
        self._turns = 0
        self._lock = threading.Lock()

    def after_turn(self) -> CurationJob | None:
        """Count one finished turn; the curation run now due, if any."""
        with self._lock:
            self._turns += 1
            if self.every_turns and self._turns >= self.every_turns:
                self._turns = 0
                return CurationJob(key=f"curate:turns:{new_id()}")
        if self.every is not None:
            window = int(utcnow().timestamp() // self.every.total_seconds())
            return CurationJob(key=f"curate:window:{window}")
        return None
