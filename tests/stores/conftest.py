"""Fixtures for store tests: bind a store to a backend, a hash embedder and its write gate."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest

from learning_machines._turn_context import TurnContext
from learning_machines.db import Db, LearningFilter, ListLearnings, ListProposals, Proposal
from learning_machines.embedders import HashEmbedder
from learning_machines.stores import BaseStore, BoundTools, StoreResources, WriteGate

S = TypeVar("S", bound=BaseStore)

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def bind_store(store: S, db: Db, name: str | None = None) -> S:
    """Attach ``store`` to ``db`` the way the machine does: resources plus a gate for its mode."""
    slot = name or store.learning_type
    gate = WriteGate(store_name=slot, learning_type=store.learning_type, mode=store.mode, db=db)
    store.bind(StoreResources(name=slot, db=db, embedder=HashEmbedder(), gate=gate))
    return store


@pytest.fixture
def bind(db: Db) -> Callable[..., Any]:
    """``bind(store, name=None)`` → the store, bound to this test's backend."""

    def _bind(store: S, name: str | None = None) -> S:
        return bind_store(store, db, name)

    return _bind


def ctx(
    user: str = "alice", session: str = "s1", message: str = "", **extra: Any
) -> dict[str, Any]:
    """The context kwargs the machine passes for one turn."""
    return {
        "user_id": user,
        "session_id": session,
        "agent_id": "agent",
        "message": message,
        "turn_id": f"t-{user}-{session}",
        "turn_index": 0,
        "now": NOW,
        **extra,
    }


def tool(store: BaseStore, name: str, **context: Any) -> Callable[..., Any]:
    """The tool called ``name`` that ``store`` offers in this turn, as an async callable."""
    bound = BoundTools(store.tool_specs(), TurnContext.from_kwargs(context))
    tools = {t.__name__: t for t in bound.async_callables()}
    assert name in tools, f"{name} not in {sorted(tools)}"
    return tools[name]


def tool_names(store: BaseStore, **context: Any) -> list[str]:
    """Names of the tools ``store`` offers in this turn."""
    return sorted(t.__name__ for t in store.get_tools(**context))  # type: ignore[attr-defined]


async def proposals(db: Db, **filters: Any) -> list[Proposal]:
    """Pending proposals."""
    return await db.arun(ListProposals(**filters))


async def all_rows(db: Db, learning_type: str | None = None) -> list[Any]:
    """Every active row in every namespace (maintenance view; bypasses nothing in the stores)."""
    rows = []
    for user in ("alice", "bob", None):
        flt = LearningFilter(
            namespaces=None,
            reader_user_id=user,
            learning_types=(learning_type,) if learning_type else None,
        )
        rows.extend(await db.arun(ListLearnings(filter=flt, limit=None)))
    return list({r.id: r for r in rows}.values())


async def approve(store: Any, proposal: Proposal) -> list[str]:
    """Apply a proposal the way ``machine.proposals.approve`` does."""
    ids: list[str] = await store.apply_write(
        proposal.payload,
        user_id=proposal.user_id,
        session_id=proposal.session_id,
        turn_id=proposal.turn_id,
        mode=proposal.mode,
        approved_by="reviewer",
        proposal_id=proposal.id,
    )
    return ids
