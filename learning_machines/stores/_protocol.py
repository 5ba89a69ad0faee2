"""The contract of a kind of learning: :class:`LearningStore`, and what a store may add to it.

A user writes a store with exactly five members (see ``examples/custom_store.py``). Everything
else on this page is optional: the machine looks for it and uses it when present.

Context keys the machine passes to every store method (as keyword arguments):
``user_id``, ``session_id``, ``agent_id``, ``team_id``, ``message`` (the user's message of the
turn), ``turn_id``, ``turn_index`` (position of the turn in its session), ``now`` (a UTC
``datetime``), plus any key the caller adds (``project_id=...``). Stores take ``**context`` and
ignore what they do not use.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pydantic import BaseModel

if TYPE_CHECKING:
    from .._messages import ChatMessage
    from .._modes import LearningMode
    from .._turn_record import TurnRecord
    from ..db import Db, Op
    from ..embedders import Embedder
    from ._gate import WriteGate
    from ._tools import ToolSpec

__all__ = [
    "AsyncExtractingStore",
    "AsyncProcessingStore",
    "AsyncRecallingStore",
    "BindableStore",
    "ExtractingStore",
    "Extraction",
    "GuidingStore",
    "LearningStore",
    "RecallReusingStore",
    "StoreResources",
    "ToolSpecStore",
    "TurnRecordingStore",
]


@runtime_checkable
class LearningStore(Protocol):
    """A kind of learning: what it recalls, how it shows it, how it learns, which tools it offers.

    The five members a store must have:

    - ``learning_type``: a short unique name (``"user_profile"``, ``"project_context"``).
    - ``recall(**context)``: what this store knows that matters for this turn (any object).
    - ``build_context(data)``: that object as text for the system prompt (``""`` for nothing).
    - ``process(messages, **context)``: learn from a finished turn (``messages`` is a list of
      :class:`~learning_machines.ChatMessage`: the user's message, the answer, tool results).
    - ``get_tools(**context)``: plain typed callables with docstrings the agent may call.

    Sync methods are run in a worker thread from async code, so they never block the event loop;
    add ``arecall`` / ``aprocess`` to provide native async versions.
    """

    @property
    def learning_type(self) -> str:
        """Short unique name of this kind of learning."""
        ...

    def recall(self, **context: Any) -> Any:
        """Return what is relevant for the current turn."""
        ...

    def process(self, messages: Sequence[ChatMessage], **context: Any) -> None:
        """Learn from a finished turn."""
        ...

    def build_context(self, data: Any) -> str:
        """Render recalled data for the system prompt."""
        ...

    def get_tools(self, **context: Any) -> list[Callable[..., Any]]:
        """Tools for the agent, bound to this turn's context."""
        ...


@runtime_checkable
class AsyncRecallingStore(Protocol):
    """A store with a native async recall."""

    async def arecall(self, **context: Any) -> Any:
        """Async :meth:`LearningStore.recall`."""
        ...


@runtime_checkable
class AsyncProcessingStore(Protocol):
    """A store with a native async process."""

    async def aprocess(self, messages: Sequence[ChatMessage], **context: Any) -> None:
        """Async :meth:`LearningStore.process`."""
        ...


@dataclass(frozen=True, kw_only=True)
class Extraction:
    """What a store wants extracted from a turn, so one model call can serve every store.

    The machine builds one structured output with a field per store (typed by ``output_type``),
    puts every store's ``instructions`` and ``current_state`` in one prompt, makes a single call,
    and hands each store its part through ``apply_extraction``.
    """

    output_type: type[BaseModel]
    """Pydantic model of this store's part of the output. Fields should have descriptions."""
    instructions: str
    """What to extract, for the model."""
    current_state: str = ""
    """What the store already knows (so the model returns changes, not repeats)."""


@runtime_checkable
class ExtractingStore(Protocol):
    """A store that describes what it extracts, and so shares the turn's single extraction call."""

    def extraction(self, **context: Any) -> Extraction | None:
        """What to extract from this turn, or ``None`` to skip this turn."""
        ...

    async def aapply_extraction(self, data: BaseModel, **context: Any) -> None:
        """Store this store's part of the extraction output (an ``output_type`` instance)."""
        ...


@runtime_checkable
class AsyncExtractingStore(Protocol):
    """A describing store with a native async ``aextraction``."""

    async def aextraction(self, **context: Any) -> Extraction | None:
        """Async :meth:`ExtractingStore.extraction`."""
        ...


@runtime_checkable
class RecallReusingStore(Protocol):
    """A describing store that builds its extraction from what the turn already recalled.

    The machine then recalls once per turn: the extraction step reuses the recalled data (and
    the message's embedding) instead of searching again.
    """

    async def aextraction_from(self, recalled: Any, **context: Any) -> Extraction | None:
        """What to extract, given this store's own recall of the turn."""
        ...


@runtime_checkable
class ToolSpecStore(Protocol):
    """A store that describes its tools as :class:`~learning_machines.stores.ToolSpec` data."""

    def tool_specs(self) -> list[ToolSpec[Any]]:
        """The tools (built once; handlers get the turn's context when called)."""
        ...


@runtime_checkable
class TurnRecordingStore(Protocol):
    """A store that keeps something of every finished turn, written with the turn itself.

    The machine calls :meth:`aturn_ops` when a turn finishes and runs the operations it returns
    in the same transaction as the turn's own row, so the record exists exactly when the turn
    does. No model is called (the decision log is such a store).
    """

    async def aturn_ops(self, record: TurnRecord) -> Sequence[Op[Any]]:
        """The operations that record this finished turn (may read the db, must not write)."""
        ...


@dataclass(frozen=True, kw_only=True)
class StoreResources:
    """What the machine lends its stores when it is built."""

    name: str
    """The slot the store sits in (``"user_profile"``, a ``custom_stores`` key)."""
    db: Db
    """Where learnings live."""
    embedder: Embedder
    """Turns text into vectors for search."""
    gate: WriteGate
    """Every write of a store goes through the gate, which enforces the store's mode."""


@runtime_checkable
class BindableStore(Protocol):
    """A store that uses the machine's db, embedder and write gate (all built-in stores do)."""

    def bind(self, resources: StoreResources) -> None:
        """Called once, when the machine is built."""
        ...


@runtime_checkable
class GuidingStore(Protocol):
    """A store that tells the agent how to use it (kept apart from the recalled data)."""

    def guidance(self, **context: Any) -> str:
        """Instructions for the agent, e.g. when to call this store's tools."""
        ...


def store_mode(store: object) -> LearningMode | None:
    """The store's learning mode, if it declares one (attribute ``mode``)."""
    from .._modes import LearningMode

    mode = getattr(store, "mode", None)
    return mode if isinstance(mode, LearningMode) else None
