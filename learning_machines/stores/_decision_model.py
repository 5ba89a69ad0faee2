"""What the decision log keeps of a turn, and how a past decision reads in a prompt (pure).

A decision record is the ``content`` of a learning of type ``decision``: the message, the
answer (bounded), every tool call with its result or error and duration, what each store
recalled, the decisions the agent logged itself, a one-line rationale, the model, tokens,
latency, the instructions version, and — once feedback arrived — the outcome.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field

from .._turn_record import TurnRecord
from ..curation._turn_ids import DECISION_TYPE, SIGNAL_TYPE, decision_id
from ..db import Learning
from ._shared import format_day

__all__ = [
    "CLEAR_OUTCOME",
    "DECISION_TYPE",
    "UNCREDITED_TYPES",
    "DecisionLogExtraction",
    "DecisionRecord",
    "LoggedDecision",
    "Outcome",
    "Reaction",
    "ToolCallRecord",
    "bounded_decision",
    "call_text",
    "credit_weights",
    "decision_id",
    "decision_line",
    "outcome_phrase",
    "record_from_turn",
    "verdict_of",
]

#: An outcome at least this far from 0 (either way) is clear: it "worked" or "went wrong".
CLEAR_OUTCOME = 0.3

#: Learning types a turn's outcome is never credited to: records about turns (decisions,
#: signals, lesson candidates) and per-user state that is not a claim that can mislead.
UNCREDITED_TYPES = frozenset(
    {DECISION_TYPE, SIGNAL_TYPE, "lesson_candidate", "user_profile", "session_context"}
)


class ToolCallRecord(BaseModel):
    """One tool call of a turn, bounded for storage."""

    name: str
    args: dict[str, Any] = Field(default_factory=dict)
    result: str | None = None
    error: str | None = None
    duration_ms: float | None = None
    source: Literal["store", "app"] = "app"


class LoggedDecision(BaseModel):
    """A decision the agent logged with ``log_decision`` (also the tool's arguments)."""

    decision: str = Field(description="What you decided, in a few words, e.g. 'canary deploy'.")
    rationale: str = Field(description="Why, in one sentence.")
    alternatives: list[str] | None = Field(
        default=None, description="Options you considered and did not take (optional)."
    )


class Outcome(BaseModel):
    """How a turn turned out, from the feedback signals on it."""

    score: float
    """From -1 (it went wrong) to +1 (it worked)."""
    source: str
    """The kind of signal that decided it: ``explicit``, ``implicit``, ``rule:tool_error``, …"""
    comment: str | None = None
    """What the user (or the rule) said."""
    signals: int = 1
    """Signals on the turn."""


class DecisionRecord(BaseModel):
    """The content of a ``decision`` learning: one turn, what the agent did and how it went."""

    turn_id: str
    session_id: str
    turn_index: int = 0
    agent_id: str | None = None
    at: str
    message: str
    answer: str = ""
    tool_calls: list[ToolCallRecord] = Field(default_factory=list)
    recalled: dict[str, list[str]] = Field(default_factory=dict)
    credit: dict[str, float] = Field(default_factory=dict)
    decisions: list[LoggedDecision] = Field(default_factory=list)
    rationale: str | None = None
    model: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    requests: int | None = None
    latency_ms: float | None = None
    duration_ms: float | None = None
    instructions_version: str | None = None
    outcome: Outcome | None = None


class Reaction(BaseModel):
    """How the user's new message judges the previous answer (implicit feedback)."""

    score: float = Field(
        description="-1: the user says the previous answer was wrong, useless or asks again; "
        "+1: the user says it was right or thanks for it; in between when mixed."
    )
    reason: str = Field(default="", description="Why, in the user's words, one short sentence.")


class DecisionLogExtraction(BaseModel):
    """The decision log's section of the turn's single extraction call."""

    rationale: str | None = Field(
        default=None,
        description="One line: why the assistant took the actions (tool calls) it took in this "
        "turn. null when it called no tool.",
    )
    reaction: Reaction | None = Field(
        default=None,
        description="How the user's message in this turn judges the PREVIOUS answer shown under "
        "'Already known'. null when the message does not react to it.",
    )


def _clip(text: str | None, limit: int) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return text[: max(0, limit - 1)] + "…"


def _clip_value(value: Any, limit: int) -> Any:
    if isinstance(value, str):
        return _clip(value, limit)
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    return _clip(json.dumps(value, ensure_ascii=False, default=str), limit)


_TOKEN = re.compile(r"[a-z0-9]+")
# Words too common to say a learning shaped an action (short words are dropped anyway).
_STOP = frozenset(
    {
        "the", "and", "for", "with", "you", "your", "this", "that", "are", "not", "was",
        "were", "has", "have", "had", "but", "can", "will", "from", "into", "when", "then",
        "than", "them", "they", "its", "our", "out", "use", "used", "using", "about",
    }
)  # fmt: skip


def _words(text: str) -> set[str]:
    return {w for w in _TOKEN.findall(text.lower()) if len(w) >= 3 and w not in _STOP}


def influence(text: str, *, message: str, actions: str) -> float:
    """How much of a recalled learning shows in what the turn did, in ``[0, 1]``.

    The share of the learning's own words (not the user's message's) found in the answer,
    the app's tool arguments and the logged decisions: a learning the agent acted on scores
    high, one that was only in the prompt scores 0.
    """
    own = _words(text) - _words(message)
    if not own:
        return 0.0
    return len(own & _words(actions)) / len(own)


def credit_weights(record: TurnRecord) -> dict[str, float]:
    """The recalled learnings a turn's outcome is credited to, with their share of it.

    Every creditable learning (see :data:`UNCREDITED_TYPES`) gets at least a quarter of the
    outcome; the rest follows :func:`influence`, so a turn that went wrong blames most what it
    acted on, and a learning that was merely recalled alongside is not archived with it.
    """
    ctx = record.context
    actions = " ".join(
        [
            record.answer,
            *(
                json.dumps(run.args, default=str)
                for run in record.tool_runs
                if run.source == "app" or run.name == "log_decision"
            ),
        ]
    )
    weights: dict[str, float] = {}
    for learning_id, learning_type in record.recalled_types.items():
        if learning_type in UNCREDITED_TYPES:
            continue
        share = influence(
            record.recalled_texts.get(learning_id, ""), message=ctx.message or "", actions=actions
        )
        weights[learning_id] = round(0.25 + 0.75 * min(1.0, 2.0 * share), 3)
    return weights


def bounded_decision(decision: LoggedDecision, *, max_chars: int) -> LoggedDecision:
    """A logged decision with every text cut to ``max_chars`` (and at most 10 alternatives)."""
    return LoggedDecision(
        decision=_clip(decision.decision, max_chars) or "",
        rationale=_clip(decision.rationale, max_chars) or "",
        alternatives=None
        if decision.alternatives is None
        else [_clip(a, max_chars) or "" for a in decision.alternatives[:10]],
    )


def record_from_turn(
    record: TurnRecord,
    *,
    logged: Sequence[LoggedDecision],
    max_text_chars: int,
    max_tool_chars: int,
    max_tool_calls: int,
) -> DecisionRecord:
    """The decision record of a finished turn, every text bounded."""
    ctx = record.context
    calls = [
        ToolCallRecord(
            name=run.name,
            args={k: _clip_value(v, max_tool_chars) for k, v in run.args.items()},
            result=_clip(run.result, max_tool_chars),
            error=_clip(run.error, max_tool_chars),
            duration_ms=None if run.duration_ms is None else round(run.duration_ms, 3),
            source=run.source,
        )
        for run in record.tool_runs
        if run.name != "log_decision"  # the why, kept under ``decisions``
    ]
    run = record.run
    return DecisionRecord(
        turn_id=ctx.turn_id,
        session_id=ctx.session_id,
        turn_index=ctx.turn_index,
        agent_id=ctx.agent_id,
        at=ctx.now.isoformat(),
        message=_clip(ctx.message or "", max_text_chars) or "",
        answer=_clip(record.answer, max_text_chars) or "",
        tool_calls=calls[:max_tool_calls],
        recalled={name: list(ids) for name, ids in record.recalled.items()},
        credit=credit_weights(record),
        decisions=[bounded_decision(d, max_chars=max_tool_chars) for d in logged],
        model=run.model,
        input_tokens=run.input_tokens,
        output_tokens=run.output_tokens,
        requests=run.requests,
        latency_ms=None if run.latency_ms is None else round(run.latency_ms, 3),
        duration_ms=round(record.duration_ms, 3),
        instructions_version=run.instructions_version,
    )


def call_text(call: ToolCallRecord | Mapping[str, Any], *, width: int = 60) -> str:
    """``name(key="value", …)``: a tool call as one readable line."""
    data = call.model_dump() if isinstance(call, ToolCallRecord) else dict(call)
    args = data.get("args") or {}
    parts = [
        f"{k}={_clip(json.dumps(v, ensure_ascii=False, default=str), width)}"
        for k, v in sorted(args.items())
    ]
    return f"{data.get('name', '?')}({', '.join(parts)})"


def verdict_of(outcome: Outcome | None) -> Literal["good", "bad", "unclear", "unrated"]:
    """``good``, ``bad``, ``unclear`` (signals disagree or are weak) or ``unrated``."""
    if outcome is None:
        return "unrated"
    if outcome.score >= CLEAR_OUTCOME:
        return "good"
    if outcome.score <= -CLEAR_OUTCOME:
        return "bad"
    return "unclear"


def outcome_phrase(outcome: Outcome | None) -> str:
    """How a decision turned out, in words a model (and a rule) can act on."""
    if outcome is None:
        return "no feedback yet"
    if outcome.score <= -CLEAR_OUTCOME:
        verdict = "went wrong"
    elif outcome.score >= CLEAR_OUTCOME:
        verdict = "worked"
    else:
        verdict = "unclear outcome"
    why = {
        "explicit": "rated by the user",
        "implicit": "the user's reply",
        "rule:tool_error": "a tool failed",
        "rule:repeat": "the user asked again",
    }.get(outcome.source, outcome.source)
    comment = f': "{_clip(outcome.comment, 120)}"' if outcome.comment else ""
    return f"{verdict} ({why}{comment})"


def decision_line(learning: Learning) -> str:
    """One past decision for the prompt: when, what was asked, what was done, how it went."""
    record = DecisionRecord.model_validate(learning.content)
    day = format_day(learning.created_at)
    calls = [call_text(c) for c in record.tool_calls if c.source == "app"]
    done = ["called " + "; ".join(calls)] if calls else []
    done += [f"decided {d.decision!r} ({d.rationale})" for d in record.decisions]
    if not done:
        done = [f'answered "{_clip(record.answer, 80)}"']
    asked = _clip(record.message, 100)
    why = f" (why: {_clip(record.rationale, 100)})" if record.rationale else ""
    return (
        f'- {day}, asked "{asked}": you {"; ".join(done)}{why} → {outcome_phrase(record.outcome)}'
    )
