"""What a machine is built with: the stores and the settings of its parts, checked once."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from ..exceptions import ConfigurationError
from ..feedback import behaviour_slots
from ..improvement import SelfImprovementConfig
from ..stores._config_values import whole_number
from ._jobs import CurationSchedule
from ._registry import StoreRegistry
from ._worker import WorkerSettings

__all__ = ["MachineOptions"]


@dataclass(frozen=True, kw_only=True)
class MachineOptions:
    """The checked configuration of a :class:`LearningMachine`; its parts are built from it.

    Build it with :meth:`build` from the machine's keyword arguments (documented there).
    """

    registry: StoreRegistry
    """The stores, resolved once."""
    improvement: SelfImprovementConfig | None
    """Self-improvement's configuration (``None``: off)."""
    context_budget: int | None
    """Token budget of the combined context block (``None``: no limit)."""
    settings: WorkerSettings
    """How the worker retries, leases and caps extraction output."""
    max_attempts: int
    """Tries of a piece of pending work before it is parked as failed."""
    schedule: CurationSchedule
    """When a curation run is due."""
    drain_on_exit: float
    """Seconds a process keeps learning when the interpreter exits."""

    @classmethod
    def build(
        cls,
        *,
        stores: Mapping[str, object],
        custom_stores: Mapping[str, object] | None,
        decision_log: object,
        feedback: object,
        self_improvement: object,
        context_budget: int | None,
        extraction_retries: int,
        max_attempts: int,
        retry_backoff: float,
        lease_seconds: float,
        worker_concurrency: int,
        max_items_per_store: int,
        max_text_chars: int,
        curate_every_turns: int | None,
        curate_every: timedelta | None,
        drain_on_exit: float,
    ) -> MachineOptions:
        """Check the machine's arguments; :class:`ConfigurationError` says how to fix one."""
        registry = StoreRegistry.from_config(
            {**stores, **behaviour_slots(decision_log=decision_log, feedback=feedback)},
            custom_stores,
        )
        improvement = SelfImprovementConfig.resolve(self_improvement)
        if improvement is not None and "feedback" not in registry:
            raise ConfigurationError(
                "self_improvement=... reflects on the outcomes of turns: turn on feedback too "
                "(LearningMachine(feedback=True, self_improvement=True))"
            )
        return cls(
            registry=registry,
            improvement=improvement,
            context_budget=context_budget,
            settings=WorkerSettings(
                extraction_retries=extraction_retries,
                retry_backoff=retry_backoff,
                lease_seconds=lease_seconds,
                concurrency=whole_number(worker_concurrency, field="worker_concurrency", minimum=1),
                max_items_per_store=whole_number(
                    max_items_per_store, field="max_items_per_store", minimum=1
                ),
                max_text_chars=whole_number(max_text_chars, field="max_text_chars", minimum=1),
            ),
            max_attempts=max_attempts,
            schedule=CurationSchedule(every_turns=curate_every_turns, every=curate_every),
            drain_on_exit=drain_on_exit,
        )
