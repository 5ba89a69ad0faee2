"""Cost per turn: model calls and tokens spent on learning, and context tokens injected.

A 20-turn conversation runs through ``Agent`` with all five built-in stores in BACKGROUND mode;
after each turn the background work is drained and ``machine.usage`` (calls, input and output
tokens, counted from pydantic-ai's usage) is read. The same turns are then learned by a variant
that makes one extraction call per store (one machine per store, each with its own database),
counted through the same usage counters — not estimated by multiplying.

The model is :class:`~learning_machines.testing.ScriptedModel` with the demo's pattern-based
extraction; its token counts are pydantic-ai ``FunctionModel`` estimates (about one token per
word of the request and response), not a provider tokenizer's.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

from .._agent import Agent
from .._demo import demo_extraction
from ..db import SqliteDb
from ..embedders import Embedder, default_embedder
from ..machine import LearningMachine
from ..testing import ScriptedModel
from .latency import machine_info

__all__ = ["CONVERSATION", "STORES", "run_cost"]

#: The built-in stores, all in BACKGROUND mode (their default).
STORES = (
    "user_profile",
    "session_context",
    "learned_knowledge",
    "entity_memory",
    "episodic_memory",
)

#: The 20 user messages of the measured conversation (one user, one session).
CONVERSATION: tuple[str, ...] = (
    "Hi, I'm Dana Reyes. I lead the payments team at Globex. Keep answers short.",
    "Our checkout service times out under load; where should I start looking?",
    "Globex uses PostgreSQL 15 for orders. Sam Patel is the CTO of Globex.",
    "Lesson learned: when a Postgres query plan flips, run ANALYZE before adding indexes.",
    "Can you remind me what we said about the checkout timeouts?",
    "I prefer concise bullet points and I'm based in Lisbon.",
    "Lesson learned: retries without jitter turned a small outage into a thundering herd.",
    "Globex uses Kafka for payment events. Mia Wong is the VP of Globex.",
    "What should go into a postmortem for the checkout incident?",
    "Personal note: I prefer morning meetings and I'm vegetarian.",
    "Lesson learned: set statement_timeout per role so one report cannot block checkout.",
    "How do I explain the incident to the finance team?",
    "Globex uses Redis for idempotency keys. Leo Park is the CEO of Globex.",
    "Summarise the three lessons we learned today.",
    "Lesson learned: load-test with production-shaped data, not uniform random rows.",
    "What is a good on-call rotation for a team of five?",
    "I prefer written runbooks and I'm learning Rust.",
    "Globex uses Terraform for infrastructure. Ana Lima is the CFO of Globex.",
    "Lesson learned: alert on p99 latency of checkout, not on average CPU.",
    "Thanks, that's all for today. What should I do first tomorrow?",
)


def _machine(embedder: Embedder, stores: tuple[str, ...]) -> LearningMachine:
    return LearningMachine(
        embedder=embedder,
        background=False,
        curate_every_turns=None,
        user_profile="user_profile" in stores,
        session_context="session_context" in stores,
        learned_knowledge="learned_knowledge" in stores,
        entity_memory="entity_memory" in stores,
        episodic_memory="episodic_memory" in stores,
    )


def _usage(machine: LearningMachine) -> tuple[int, int, int]:
    u = machine.usage
    return u.calls, u.input_tokens, u.output_tokens


async def _arun_cost(turns: tuple[str, ...], workdir: Path, embedder: Embedder) -> dict[str, Any]:
    user, session = "dana", "dana-1"
    model = ScriptedModel(answers="Noted.", extraction=demo_extraction)
    combined_db = SqliteDb(workdir / "combined.db")
    combined = _machine(embedder, STORES)
    agent = Agent(model=model, db=combined_db, learning=combined)
    per_store: dict[str, tuple[LearningMachine, SqliteDb]] = {}
    for name in STORES:
        db = SqliteDb(workdir / f"only-{name}.db")
        machine = _machine(embedder, (name,))
        machine.bind(db=db, model=ScriptedModel(answers="Noted.", extraction=demo_extraction))
        per_store[name] = (machine, db)
    rows: list[dict[str, Any]] = []
    try:
        for index, message in enumerate(turns):
            before = _usage(combined)
            result = await agent.arun(message, user_id=user, session_id=session)
            await combined.await_idle(timeout=120)
            after = _usage(combined)
            split_calls = split_in = split_out = 0
            split_by_store: dict[str, int] = {}
            for name, (machine, _db) in per_store.items():
                b = _usage(machine)
                await machine.aprocess(result.messages, user_id=user, session_id=session)
                await machine.await_idle(timeout=120)
                a = _usage(machine)
                split_calls += a[0] - b[0]
                split_in += a[1] - b[1]
                split_out += a[2] - b[2]
                split_by_store[name] = a[0] - b[0]
            context_tokens = result.context.tokens if result.context is not None else 0
            rows.append(
                {
                    "turn": index + 1,
                    "calls": after[0] - before[0],
                    "input_tokens": after[1] - before[1],
                    "output_tokens": after[2] - before[2],
                    "context_tokens": context_tokens,
                    "answer_input_tokens": result.usage.input_tokens,
                    "per_store_calls": split_calls,
                    "per_store_input_tokens": split_in,
                    "per_store_output_tokens": split_out,
                    "per_store_calls_by_store": split_by_store,
                }
            )
    finally:
        combined_db.close()
        for _, db in per_store.values():
            db.close()
    totals = {
        key: sum(int(r[key]) for r in rows)
        for key in (
            "calls",
            "input_tokens",
            "output_tokens",
            "context_tokens",
            "per_store_calls",
            "per_store_input_tokens",
            "per_store_output_tokens",
        )
    }
    n = len(rows)
    return {
        "machine": machine_info(),
        "notes": [
            "Model: ScriptedModel with the demo's pattern extraction (no LLM); token counts are "
            "pydantic-ai FunctionModel estimates, not a provider tokenizer's.",
            "All five built-in stores in BACKGROUND mode; episodic memory stores the turn "
            "without a model call, so the per-store variant makes 4 calls per turn.",
            "Per-store variant: the same turns learned by one machine per store (own SQLite "
            "database each), counted through the same machine.usage counters.",
            "Context tokens: the learned-context block injected into the system prompt "
            "(estimate: characters / 4).",
        ],
        "turns": rows,
        "totals": totals,
        "per_turn_mean": {k: round(v / n, 1) for k, v in totals.items()} if n else {},
    }


def _markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    t, mean = result["totals"], result["per_turn_mean"]
    lines = [
        f"Measured {m['date']} on {m['cpu_count']} CPU cores, commit {m['commit']}.",
        "",
        *[f"- {note}" for note in result["notes"]],
        "",
        "| | calls/turn | input tokens/turn | output tokens/turn | total calls | total tokens |",
        "|---|---:|---:|---:|---:|---:|",
        f"| one call per turn (all stores) | {mean['calls']} | {mean['input_tokens']} | "
        f"{mean['output_tokens']} | {t['calls']} | {t['input_tokens'] + t['output_tokens']:,} |",
        f"| one call per store per turn | {mean['per_store_calls']} | "
        f"{mean['per_store_input_tokens']} | {mean['per_store_output_tokens']} | "
        f"{t['per_store_calls']} | "
        f"{t['per_store_input_tokens'] + t['per_store_output_tokens']:,} |",
        "",
        f"Context injected per turn: mean {mean['context_tokens']} tokens.",
        "",
        "| turn | calls | input | output | context tokens | per-store calls | per-store input |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["turns"]:
        lines.append(
            f"| {r['turn']} | {r['calls']} | {r['input_tokens']} | {r['output_tokens']} | "
            f"{r['context_tokens']} | {r['per_store_calls']} | {r['per_store_input_tokens']} |"
        )
    return "\n".join(lines) + "\n"


def _plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    turns = [r["turn"] for r in result["turns"]]
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ax.plot(
        turns,
        [r["input_tokens"] + r["output_tokens"] for r in result["turns"]],
        "-o",
        label="learning tokens, one call per turn",
    )
    ax.plot(
        turns,
        [r["per_store_input_tokens"] + r["per_store_output_tokens"] for r in result["turns"]],
        "--s",
        label="learning tokens, one call per store",
    )
    ax.plot(turns, [r["context_tokens"] for r in result["turns"]], ":^", label="context injected")
    ax.set_xlabel("turn")
    ax.set_ylabel("tokens (FunctionModel estimates)")
    ax.set_title("Cost per turn, all built-in stores (BACKGROUND)")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run_cost(*, out_dir: Path, quick: bool) -> dict[str, Any]:
    """Measure learning calls and tokens per turn; write JSON, markdown and a PNG plot.

    Args:
        out_dir: Where ``cost.json``, ``cost.md`` and ``cost.png`` are written.
        quick: Run the first 5 turns of the conversation only (smoke test).

    Returns:
        The result dict that is also written as JSON.

    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    turns = CONVERSATION[:5] if quick else CONVERSATION
    with tempfile.TemporaryDirectory(prefix="lm-cost-") as tmp:
        result = asyncio.run(_arun_cost(turns, Path(tmp), default_embedder()))
    result["quick"] = quick
    (out_dir / "cost.json").write_text(json.dumps(result, indent=2) + "\n")
    (out_dir / "cost.md").write_text(_markdown(result))
    _plot(result, out_dir / "cost.png")
    return result
