"""Forget steps: what the layers above curation scrub from shared rows when a user is forgotten.

:meth:`Curator.aforget` deletes a user's private rows in one purge. Some concepts keep traces of
a user inside *shared* rows the purge must not delete: a shared lesson's example turns (feedback),
a self-improvement proposal's evidence (improvement). Those concepts sit above curation, so
curation cannot call them; each registers a step here when its module is imported (importing
``learning_machines`` imports them all). ``aforget`` runs every step, in registration order,
before the purge, since a step may need the user's rows (their turns) to know what to scrub.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from ..db import Db
from ..embedders import Embedder
from ..exceptions import ConfigurationError

__all__ = [
    "ForgetRequest",
    "ForgetStep",
    "arun_forget_steps",
    "forget_steps",
    "register_forget_step",
]


@dataclass(frozen=True, kw_only=True)
class ForgetRequest:
    """One forget call, as a step sees it."""

    db: Db
    """The backend the user is forgotten in."""
    user_id: str
    """The user being forgotten; their private rows are still there while steps run."""
    embedder: Embedder | None
    """The curator's embedder, for a step that rewrites a row's search text (else ``None``)."""
    keep_shared: bool
    """Whether shared learnings the user authored are kept (unlinked) or deleted by the purge."""


#: A step: scrub the user from some shared rows, return how many rows it changed.
ForgetStep = Callable[[ForgetRequest], Awaitable[int]]

_STEPS: dict[str, ForgetStep] = {}


def register_forget_step(name: str, step: ForgetStep) -> None:
    """Run ``step`` on every forget; its count is reported under ``name`` when not zero.

    ``name`` says what was counted (``"lessons_scrubbed"``) and must differ from the purge's
    table names (``"learnings"``, ``"messages"``, …). Registering the same function again (a
    module imported twice) is harmless; another step under a taken name is a
    :class:`ConfigurationError`. A step that raises stops the forget before anything is purged,
    so forgetting again retries it; steps must therefore be idempotent.
    """
    if not name or not name.isidentifier():
        raise ConfigurationError(
            f"A forget step's name is one word like 'lessons_scrubbed', not {name!r}."
        )
    taken = _STEPS.get(name)
    if taken is not None and _qualname(taken) != _qualname(step):
        raise ConfigurationError(
            f"The forget step {name!r} is already registered by {_qualname(taken)}; give "
            f"{_qualname(step)} another name."
        )
    _STEPS[name] = step


def forget_steps() -> Mapping[str, ForgetStep]:
    """The registered steps by name, in the order they run (read-only)."""
    return MappingProxyType(_STEPS)


async def arun_forget_steps(request: ForgetRequest) -> dict[str, int]:
    """Run every registered step; returns the non-zero counts by step name."""
    counts: dict[str, int] = {}
    for name, step in list(_STEPS.items()):
        changed = await step(request)
        if changed:
            counts[name] = changed
    return counts


def _qualname(step: ForgetStep) -> str:
    return f"{getattr(step, '__module__', '?')}.{getattr(step, '__qualname__', repr(step))}"
