"""What the built-in stores share: config fields, binding to the machine, sync wrappers."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel

from .._modes import LearningMode
from .._sync import run_sync
from .._turn_context import TurnContext
from ..db import PRIVATE_NAMESPACE, LearningFilter
from ..exceptions import ConfigurationError
from ._config_values import (
    choice_value,
    mode_value,
    namespace_value,
    namespaces_value,
    number_value,
    whole_number,
)
from ._gate import WriteGate, WriteOutcome
from ._tools import BoundTools, ToolSpec

if TYPE_CHECKING:
    from .._messages import ChatMessage
    from ..db import Db
    from ..embedders import Embedder
    from ._protocol import StoreResources

__all__ = ["Approval", "BaseStore", "Screen", "StoreConfig"]

logger = logging.getLogger("learning_machines")

#: Who approves a PROPOSE store's writes to a shared namespace (see :attr:`StoreConfig.approval`).
Approval = Literal["user", "others"]
#: What screening does to flagged writes to a shared namespace (see :attr:`StoreConfig.screen`).
Screen = Literal["hold", "flag", "off"]


@dataclass(kw_only=True)
class StoreConfig:
    """Settings every built-in store has. Store configs subclass this.

    Values are checked when the config is built. What has one reading is coerced, as configs
    often come from YAML or environment variables: a mode as a string in any case
    (``mode="propose"``), one namespace where several are expected
    (``read_namespaces="global"`` → ``("global",)``), numbers written as strings (``"5"``,
    ``"0.2"``). Anything else — an unknown mode, ``namespace=123``, ``max_tokens=-1``, a
    namespace spelled ``"User"`` — raises :class:`~learning_machines.ConfigurationError` naming
    the field.
    """

    mode: LearningMode = LearningMode.BACKGROUND
    """How the store learns (see :class:`~learning_machines.LearningMode`)."""
    namespace: str = PRIVATE_NAMESPACE
    """Where it writes: ``"user"`` (private to the turn's user), ``"global"``, or a shared name."""
    read_namespaces: tuple[str, ...] = ()
    """Extra namespaces it reads besides ``namespace`` (e.g. ``("global",)``)."""
    max_tokens: int = 500
    """Token budget of this store's block in the system prompt (``0``: no block; tools still
    work)."""
    decay_weight: float = 0.15
    """How much a learning's retention (recency, recalls, feedback; see
    ``learning_machines.curation.retention_score``) counts in search ranking, against relevance.
    ``0`` ranks by relevance alone."""
    feedback_weight: float = 1.0
    """How far outcome evidence from feedback moves a learning in search ranking: at most this
    much on a ``[0, 1]`` relevance scale (a learning that misled sinks, one that helped rises;
    see ``docs/feedback.md`` for how it was measured). ``0`` ignores feedback in ranking; at
    most 10 (past 1, feedback can already outrank any difference in relevance)."""
    screen: Screen = "hold"
    """BACKGROUND and AGENTIC writes to a *shared* namespace are screened for instructions
    addressed to the model, markup, secrets, URLs and personal data (``stores/_screen.py``).
    ``"hold"``: a flagged write is held as a proposal for a reviewer (HITL) instead of reaching
    other users' prompts. ``"flag"``: it is written, with the findings in its provenance and a
    warning logged. ``"off"``: no screening."""
    approval: Approval = "user"
    """PROPOSE only: who approves writes to a *shared* namespace. ``"user"``: the user whose turn
    proposed it (in chat or through the API) — their consent, which protects them but not the
    other readers of the namespace. ``"others"``: only someone else, through the API or the CLI,
    as in HITL. Private-namespace writes are always approved by their own user; HITL always
    needs someone else."""

    def __post_init__(self) -> None:
        """Check and coerce the values (see the class docstring)."""
        self.mode = mode_value(self.mode, field=self._field("mode"))
        self.namespace = namespace_value(self.namespace, field=self._field("namespace"))
        self.read_namespaces = namespaces_value(
            self.read_namespaces, field=self._field("read_namespaces")
        )
        self.max_tokens = whole_number(self.max_tokens, field=self._field("max_tokens"), minimum=0)
        self.decay_weight = number_value(
            self.decay_weight, field=self._field("decay_weight"), low=0.0, high=1.0
        )
        self.feedback_weight = number_value(
            self.feedback_weight, field=self._field("feedback_weight"), low=0.0, high=10.0
        )
        self.screen = choice_value(
            self.screen, field=self._field("screen"), choices=("hold", "flag", "off")
        )
        self.approval = choice_value(
            self.approval, field=self._field("approval"), choices=("user", "others")
        )
        if self.approval == "others" and not self.mode.needs_approval:
            raise ConfigurationError(
                f"{self._field('approval')}='others' only applies to writes held for approval; "
                f"in {self.mode.name} nothing is approved. Use mode=LearningMode.PROPOSE (or "
                "HITL, where someone else always approves)."
            )

    def _field(self, name: str) -> str:
        """``"LearnedKnowledgeConfig(limit)"``-style name for messages."""
        return f"{type(self).__name__}.{name}"


class BaseStore:
    """Base of the built-in stores: binding, scoping, sync wrappers over the async core.

    Subclasses set ``learning_type``, ``supported_modes`` and ``write_model`` and implement
    ``arecall``, ``build_context``, ``aprocess`` (or ``aextraction_from``/``aapply_extraction``),
    ``apply_write`` and ``tool_specs``. ``get_tools`` is derived from ``tool_specs``.
    """

    learning_type: ClassVar[str] = "base"
    supported_modes: ClassVar[frozenset[LearningMode]] = frozenset(LearningMode)
    #: Context keys a turn must carry for this store to work.
    required_context: ClassVar[tuple[str, ...]] = ("user_id",)
    #: The pydantic model of one write (what a proposal holds until it is approved).
    write_model: Any = None

    def __init__(self, config: StoreConfig) -> None:
        self.config = config
        self._resources: StoreResources | None = None
        if config.mode not in self.supported_modes:
            raise ConfigurationError(
                f"{type(self).__name__} cannot learn in mode {config.mode.name}; it supports "
                f"{', '.join(sorted(m.name for m in self.supported_modes))}."
            )

    # --- binding -----------------------------------------------------------------------------

    @property
    def mode(self) -> LearningMode:
        """The store's learning mode."""
        return self.config.mode

    def bind(self, resources: StoreResources) -> None:
        """Attach the machine's db, embedder and write gate (called once by the machine)."""
        self._resources = resources

    @property
    def resources(self) -> StoreResources:
        """The machine's resources; raises if the store is used outside a machine."""
        if self._resources is None:
            raise ConfigurationError(
                f"{type(self).__name__} is not attached to a LearningMachine: pass it to "
                "LearningMachine(...) (or Agent(learning=...)) together with a db."
            )
        return self._resources

    @property
    def db(self) -> Db:
        """The machine's backend."""
        return self.resources.db

    @property
    def embedder(self) -> Embedder:
        """The machine's embedder."""
        return self.resources.embedder

    @property
    def gate(self) -> WriteGate:
        """The write gate enforcing this store's mode."""
        return self.resources.gate

    # --- scoping -----------------------------------------------------------------------------

    def require_context(self, context: Mapping[str, Any]) -> None:
        """Raise :class:`ConfigurationError` if a required context key is missing."""
        missing = [key for key in self.required_context if not context.get(key)]
        if missing:
            raise ConfigurationError(
                f"{type(self).__name__} needs {', '.join(missing)} for every turn: pass "
                f"{', '.join(f'{k}=...' for k in missing)} to run()/recall()/process()."
            )

    def read_filter(self, **context: Any) -> LearningFilter:
        """Filter for what this store may read in this turn (own + extra namespaces)."""
        namespaces = (self.config.namespace, *self.config.read_namespaces)
        return LearningFilter(
            namespaces=tuple(dict.fromkeys(namespaces)),
            reader_user_id=context.get("user_id"),
            learning_types=(self.learning_type,),
        )

    async def query_vector(self, context: Mapping[str, Any]) -> tuple[float, ...] | None:
        """Embedding of the turn's ``message``.

        The machine's precomputed ``query_vector`` when present (one embedding per turn for all
        stores), otherwise computed here.
        """
        vector = context.get("query_vector")
        if vector is not None:
            return tuple(vector)
        message = context.get("message")
        if not message:
            return None
        from ..embedders import aembed

        return tuple(float(x) for x in (await aembed(self.embedder, [str(message)]))[0])

    # --- writes and tools ------------------------------------------------------------------------

    async def apply_write(self, write: Any, **context: Any) -> list[str]:
        """Apply one write now; returns the ids of the learnings written or changed (override)."""
        raise NotImplementedError

    def decode_write(self, payload: Mapping[str, Any]) -> Any:
        """Read a held write back from its proposal's payload (a :attr:`write_model` instance)."""
        if self.write_model is None:
            return dict(payload)
        return self.write_model.model_validate(payload)

    async def submit(
        self, write: BaseModel, *, summary: str, context: Mapping[str, Any], text: str = ""
    ) -> WriteOutcome:
        """Send ``write`` through the gate: applied now, or held as a proposal.

        ``summary`` is the line a reviewer judges a proposal by; ``text`` is what the write would
        put where other users read it (screened for shared namespaces).
        """
        decision = self.gate.decide(namespace=self.config.namespace, text=text or summary)
        if not decision.apply:
            return await self.gate.propose(
                write,
                summary=summary,
                namespace=self.config.namespace,
                context=context,
                decision=decision,
            )
        applied = {**context, "mode": self.mode.value}
        if decision.flags:
            applied["screened"] = list(decision.flags)
            logger.warning(
                "%s wrote to shared namespace %r text that screening flagged: %s",
                type(self).__name__,
                self.config.namespace,
                "; ".join(decision.flags),
            )
        ids = await self.apply_write(write, **applied)
        return WriteOutcome(applied=True, learning_ids=ids)

    def tool_specs(self) -> list[ToolSpec[Any]]:
        """The tools this store offers in its mode (override; built once per store)."""
        return []

    @functools.cached_property
    def _specs(self) -> list[ToolSpec[Any]]:
        return self.tool_specs()

    def get_tools(self, **context: Any) -> list[Callable[..., Any]]:
        """The store's tools as plain sync callables bound to this turn's ``context``."""
        return BoundTools(self._specs, TurnContext.from_kwargs(context)).sync_callables()

    # --- sync wrappers over the async core ----------------------------------------------------

    async def arecall(self, **context: Any) -> Any:
        """What is relevant for this turn (override)."""
        raise NotImplementedError

    async def aprocess(self, messages: Sequence[ChatMessage], **context: Any) -> None:
        """Learn from a finished turn (override, or rely on the machine's shared extraction)."""
        raise NotImplementedError

    def recall(self, **context: Any) -> Any:
        """Sync :meth:`arecall`."""
        return run_sync(self.arecall(**context))

    def process(self, messages: Sequence[ChatMessage], **context: Any) -> None:
        """Sync :meth:`aprocess`."""
        run_sync(self.aprocess(messages, **context))
