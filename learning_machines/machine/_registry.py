"""The machine's stores, resolved once: what each can do is known before the first turn.

A slot accepts ``True``, a store config or a store instance (the three configuration levels).
:class:`StoreRegistry` turns them into :class:`StoreSlot` objects that record, typed, which
optional capabilities each store has (native async recall, a shared-extraction description,
tools as specs, guidance, held writes), so no turn ever probes a store again.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .._messages import ChatMessage
from .._modes import LearningMode
from .._turn_record import TurnRecord
from ..db import Db, Op
from ..embedders import Embedder
from ..exceptions import ConfigurationError
from ..stores import (
    ApplyingStore,
    AsyncProcessingStore,
    AsyncRecallingStore,
    BindableStore,
    ExtractingStore,
    Extraction,
    GuidingStore,
    LearningStore,
    StoreResources,
    ToolSpec,
    TurnRecordingStore,
    WriteGate,
    tool_from_function,
)
from ..stores._protocol import (
    AsyncExtractingStore,
    RecallReusingStore,
    ToolSpecStore,
    store_mode,
)

__all__ = ["BUILTIN_SLOTS", "StoreRegistry", "StoreSlot", "resolve_store"]

#: Built-in slot name → name of its config class in ``learning_machines.stores``.
BUILTIN_SLOTS: dict[str, str] = {
    "user_profile": "UserProfileConfig",
    "session_context": "SessionContextConfig",
    "learned_knowledge": "LearnedKnowledgeConfig",
    "entity_memory": "EntityMemoryConfig",
    "episodic_memory": "EpisodicMemoryConfig",
}

_MEMBERS = ("learning_type", "recall", "process", "build_context", "get_tools")


def resolve_store(slot: str, spec: object) -> Any:
    """The store for ``slot``: ``None`` when disabled, else a store instance.

    ``spec`` is ``True``/``False``/``None``, a store config (anything with ``create_store``),
    or a store instance.
    """
    if spec is None or spec is False:
        return None
    if slot in BUILTIN_SLOTS:
        stores = importlib.import_module("learning_machines.stores")
        config_class: type[Any] = getattr(stores, BUILTIN_SLOTS[slot])
        if spec is True:
            return config_class().create_store()
        if isinstance(spec, config_class):
            return spec.create_store()
        if hasattr(spec, "create_store") and not hasattr(spec, "recall"):
            raise ConfigurationError(
                f"{slot}= got a {type(spec).__name__}; it takes True, a "
                f"{config_class.__name__} or a store instance"
            )
        return spec
    if spec is True:
        raise ConfigurationError(f"custom store {slot!r} must be a store instance, not True")
    if hasattr(spec, "create_store") and not hasattr(spec, "recall"):
        return spec.create_store()
    return spec


def _learns_in_background(store: object, mode: LearningMode | None) -> bool:
    """Whether finished turns are handed to the store after the answer (pending work)."""
    if mode is None:
        return True
    if mode in (LearningMode.BACKGROUND, LearningMode.HITL):
        return isinstance(store, ExtractingStore) or mode is LearningMode.BACKGROUND
    return False


@dataclass(frozen=True, kw_only=True)
class StoreSlot:
    """One store of the machine, with its capabilities resolved once."""

    name: str
    """The slot name (``"user_profile"``, a ``custom_stores`` key); also its extraction key."""
    store: Any
    """The store object."""
    learning_type: str
    """Its learning type (unique in the machine)."""
    mode: LearningMode | None
    """Its learning mode, if it declares one."""
    namespace: str | None
    """Where it writes, for stores with a config (``None`` for custom stores without one)."""
    read_namespaces: tuple[str, ...]
    """Extra namespaces it reads."""
    max_tokens: int | None
    """Token budget of its block in the prompt, when it declares one."""
    required_context: tuple[str, ...]
    """Context keys every turn must carry for it."""
    learns_in_background: bool
    """Whether finished turns become pending work for it."""
    describes_extraction: bool
    """Whether it shares the turn's single extraction call (else it gets ``process``)."""
    reuses_recall: bool
    """Whether it can describe its extraction from what the turn already recalled."""
    specs: tuple[ToolSpec[Any], ...] | None
    """Its tools as :class:`ToolSpec` (built once), or ``None``: ``get_tools`` is called per
    turn and each callable becomes a spec."""
    guides: bool
    """Whether it has guidance for the agent."""
    applies_writes: bool
    """Whether held writes (proposals) can be applied to it."""
    records_turns: bool = False
    """Whether it writes a record of every finished turn with the turn (the decision log)."""

    # --- calls, each resolved to one async path --------------------------------------------------

    async def recall(self, context: Mapping[str, Any]) -> Any:
        """The store's recall for this turn (sync recalls run in a worker thread)."""
        if isinstance(self.store, AsyncRecallingStore):
            return await self.store.arecall(**context)
        return await asyncio.to_thread(self.store.recall, **context)

    async def process(self, messages: Sequence[ChatMessage], context: Mapping[str, Any]) -> None:
        """Hand a finished turn to a store that does not share the extraction call."""
        if isinstance(self.store, AsyncProcessingStore):
            await self.store.aprocess(messages, **context)
        else:
            await asyncio.to_thread(self.store.process, messages, **context)

    async def extraction(
        self, context: Mapping[str, Any], recalled: Mapping[str, Any]
    ) -> Extraction | None:
        """What the store wants extracted from this turn.

        ``recalled`` is what the turn's stores recalled, by slot (empty when the turn ran in
        another process); a store that can reuses its own part instead of recalling again.
        """
        if self.reuses_recall and self.name in recalled:
            result: Extraction | None = await self.store.aextraction_from(
                recalled[self.name], **context
            )
            return result
        if isinstance(self.store, AsyncExtractingStore):
            return await self.store.aextraction(**context)
        return await asyncio.to_thread(self.store.extraction, **context)

    async def apply_extraction(self, data: Any, context: Mapping[str, Any]) -> None:
        """Give the store its part of the extraction output."""
        await self.store.aapply_extraction(data, **context)

    async def turn_ops(self, record: TurnRecord) -> list[Op[Any]]:
        """What the store writes with a finished turn, in the turn's transaction."""
        if not self.records_turns:
            return []
        return list(await self.store.aturn_ops(record))

    def guidance(self, context: Mapping[str, Any]) -> str:
        """The store's guidance for the agent (``""`` when it has none)."""
        return str(self.store.guidance(**context)) if self.guides else ""

    def tool_specs(self, context: Mapping[str, Any]) -> list[ToolSpec[Any]]:
        """The store's tools for this turn, as specs."""
        if self.specs is not None:
            return list(self.specs)
        return [tool_from_function(fn) for fn in self.store.get_tools(**context)]

    def decode_write(self, payload: Mapping[str, Any]) -> Any:
        """A held write, read back from its proposal into the store's write model."""
        decode = getattr(self.store, "decode_write", None)
        return decode(payload) if callable(decode) else dict(payload)

    async def apply_write(self, write: Any, context: Mapping[str, Any]) -> list[str]:
        """Apply a held write (an approved proposal)."""
        if not self.applies_writes:
            raise ConfigurationError(
                f"store {self.name!r} has no apply_write; it cannot apply held writes"
            )
        ids: list[str] = await self.store.apply_write(write, **context)
        return ids

    def fingerprint(self) -> dict[str, Any]:
        """What a turn's pending work records about this store, so a worker can honour it."""
        return {
            "learning_type": self.learning_type,
            "mode": self.mode.value if self.mode else None,
            "namespace": self.namespace,
            "read_namespaces": list(self.read_namespaces),
        }


def _slot(name: str, store: object) -> StoreSlot:
    if not isinstance(store, LearningStore):
        missing = [member for member in _MEMBERS if not hasattr(store, member)]
        raise ConfigurationError(
            f"store {name!r} ({type(store).__name__}) is not a LearningStore: it lacks "
            f"{', '.join(missing)}. See learning_machines.LearningStore."
        )
    mode = store_mode(store)
    config = getattr(store, "config", None)
    namespace = getattr(config, "namespace", None)
    read = getattr(config, "read_namespaces", ())
    budget = getattr(config, "max_tokens", None)
    return StoreSlot(
        name=name,
        store=store,
        learning_type=store.learning_type,
        mode=mode,
        namespace=namespace if isinstance(namespace, str) else None,
        read_namespaces=tuple(read) if isinstance(read, tuple | list) else (),
        max_tokens=budget if isinstance(budget, int) else None,
        required_context=tuple(getattr(store, "required_context", ())),
        learns_in_background=_learns_in_background(store, mode),
        describes_extraction=isinstance(store, ExtractingStore),
        reuses_recall=isinstance(store, RecallReusingStore),
        specs=tuple(store.tool_specs()) if isinstance(store, ToolSpecStore) else None,
        guides=isinstance(store, GuidingStore),
        applies_writes=isinstance(store, ApplyingStore),
        records_turns=isinstance(store, TurnRecordingStore),
    )


class StoreRegistry(Mapping[str, StoreSlot]):
    """The machine's stores by slot name, in configuration order, checked once."""

    def __init__(self, stores: Mapping[str, object]) -> None:
        slots = {name: _slot(name, store) for name, store in stores.items()}
        types: dict[str, str] = {}
        for name, slot in slots.items():
            if slot.learning_type in types:
                raise ConfigurationError(
                    f"stores {types[slot.learning_type]!r} and {name!r} both have learning_type "
                    f"{slot.learning_type!r}; learning types must be unique"
                )
            types[slot.learning_type] = name
        self._slots = slots

    @classmethod
    def from_config(
        cls, builtins: Mapping[str, object], custom: Mapping[str, object] | None
    ) -> StoreRegistry:
        """Resolve the machine's slots: built-in ones by name, then ``custom_stores``."""
        stores: dict[str, object] = {}
        for slot, spec in builtins.items():
            store = resolve_store(slot, spec)
            if store is not None:
                stores[slot] = store
        for name, spec in (custom or {}).items():
            if name in stores or name in BUILTIN_SLOTS:
                raise ConfigurationError(
                    f"custom store name {name!r} is taken by a built-in store; pick another name"
                )
            store = resolve_store(name, spec)
            if store is None:
                continue
            stores[name] = store
        return cls(stores)

    def __getitem__(self, name: str) -> StoreSlot:
        return self._slots[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._slots)

    def __len__(self) -> int:
        return len(self._slots)

    @property
    def stores(self) -> dict[str, Any]:
        """The store objects by slot name."""
        return {name: slot.store for name, slot in self._slots.items()}

    def background(self) -> list[StoreSlot]:
        """Slots that learn from finished turns after the answer."""
        return [s for s in self._slots.values() if s.learns_in_background]

    def turn_recorders(self) -> list[StoreSlot]:
        """Slots that write a record of every finished turn with the turn."""
        return [s for s in self._slots.values() if s.records_turns]

    def needing_a_model(self) -> list[str]:
        """Slots whose background learning makes a model call."""
        return [
            name
            for name, slot in self._slots.items()
            if slot.describes_extraction and slot.learns_in_background
        ]

    def route(self) -> str:
        """A short hash of what background learning here is (stores, modes, namespaces).

        Pending work carries it, so machines configured differently on one db each take only
        the work they can honour.
        """
        data = {slot.name: slot.fingerprint() for slot in self.background()}
        text = json.dumps(data, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def has_mode(self, mode: LearningMode) -> bool:
        """Whether any store learns in ``mode``."""
        return any(slot.mode is mode for slot in self._slots.values())

    def uses_query_vector(self) -> bool:
        """Whether any store searches by the message's embedding (so it is computed once)."""
        return any(isinstance(slot.store, BindableStore) for slot in self._slots.values())

    def bind(self, *, db: Db, embedder: Embedder) -> None:
        """Lend every bindable store the db, the embedder and a write gate for its mode."""
        for name, slot in self._slots.items():
            if isinstance(slot.store, BindableStore):
                config = getattr(slot.store, "config", None)
                gate = WriteGate(
                    store_name=name,
                    learning_type=slot.learning_type,
                    mode=slot.mode or LearningMode.BACKGROUND,
                    db=db,
                    approval=str(getattr(config, "approval", "user")),
                    screen=str(getattr(config, "screen", "hold")),
                )
                slot.store.bind(StoreResources(name=name, db=db, embedder=embedder, gate=gate))

    def tool_specs(
        self, context: Mapping[str, Any], *, extra: Sequence[ToolSpec[Any]] = ()
    ) -> list[ToolSpec[Any]]:
        """Every store's tools for a turn, then ``extra``; a name offered twice is refused."""
        specs: list[ToolSpec[Any]] = []
        owner: dict[str, str] = {}
        for name, slot in self._slots.items():
            for spec in slot.tool_specs(context):
                if spec.name in owner:
                    raise ConfigurationError(
                        f"stores {owner[spec.name]!r} and {name!r} both offer a tool named "
                        f"{spec.name!r}; tool names must be unique"
                    )
                owner[spec.name] = name
                specs.append(spec)
        return specs + list(extra)

    def check_context(self, context: Mapping[str, Any]) -> None:
        """Raise :class:`ConfigurationError` when a store's required context key is missing."""
        for name, slot in self._slots.items():
            missing = [key for key in slot.required_context if not context.get(key)]
            if missing:
                raise ConfigurationError(
                    f"store {name!r} needs {', '.join(missing)} for every turn: pass "
                    f"{', '.join(f'{k}=...' for k in missing)} to "
                    "run()/begin()/build_context()/process()"
                )
