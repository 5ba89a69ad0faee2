"""Reflection: one model call over an agent's recent turns that proposes small rule changes.

It reads the turns, their outcomes and the lessons; code then checks each proposed change.

The prompt shows the agent's instructions now (its rules with their ids), its tools, the turns
that went wrong (and some that went well, for contrast) with what the agent did and how it
turned out, the lessons learned from outcomes, and the changes people rejected before. The model
answers with at most a few changes, each ONE rule phrased "Stop X; do Y when Z", citing the
turns it would have fixed. Code then checks every change: the turns it cites must be turns that
went wrong and were shown; the rule must fit the size caps; a change rejected before (however
worded) or already made is dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field
from pydantic_ai import Agent as PydanticAgent
from pydantic_ai import capture_run_messages
from pydantic_ai.exceptions import AgentRunError, UnexpectedModelBehavior
from pydantic_ai.models import Model
from pydantic_ai.usage import RunUsage

from ..exceptions import ModelError, ValidationError
from ..stores._decision_model import call_text, outcome_phrase
from ..stores._shared import format_day
from ._model import (
    EvidenceTurn,
    Rule,
    RuleChange,
    RuleLimits,
    apply_change,
    change_words,
    same_change,
)
from ._store import ToolSchema
from ._traces import Trace

__all__ = [
    "Draft",
    "ProposedChange",
    "ReflectionOutput",
    "astructured",
    "check_proposed",
    "reflection_prompt",
]

REFLECTION_INSTRUCTIONS = """\
You review how an AI agent has been doing, from its recent turns and how each turned out, and \
propose at most {max_changes} small changes to its instructions that would stop a failure that \
RECURS. Each change is ONE rule — added, replacing one rule, or removing one rule — never a \
rewrite. Phrase a rule by its three parts: what the agent should stop doing (X), what it should \
do instead (Y), and when (Z): it will read "Stop X; do Y when Z." Keep each part short and \
general (no names, ids, quotes or personal details from the turns). Cite as evidence the ids of \
at least {min_evidence} turns that went wrong which the change would have fixed. A rule may \
belong in one tool's description instead (set tool). Propose nothing when no failure recurs, \
and never propose a change listed as rejected."""


class ProposedChange(BaseModel):
    """One change the reflection proposes."""

    action: Literal["add", "replace", "remove"] = Field(
        description="add a rule, replace one rule, or remove one rule"
    )
    target: str | None = Field(
        default=None, description="for replace or remove: the rule's id, shown in [brackets]"
    )
    tool: str | None = Field(
        default=None,
        description="a tool's name when the rule belongs in that tool's description; else null",
    )
    stop: str = Field(default="", description="X: what to stop doing (a verb phrase)")
    do: str = Field(default="", description="Y: what to do instead (a verb phrase)")
    when: str = Field(default="", description="Z: in which situation")
    evidence: list[str] = Field(
        default_factory=list, description="ids of turns that went wrong that this would fix"
    )
    expected_effect: str = Field(default="", description="what should change, one sentence")
    risk: str = Field(default="", description="what could get worse, one sentence")


class ReflectionOutput(BaseModel):
    """The reflection's answer."""

    changes: list[ProposedChange] = Field(
        default_factory=list, description="the proposed changes; empty when nothing recurs"
    )


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def turn_line(trace: Trace) -> str:
    """One turn for the reflection prompt: id, day, outcome, request, actions, answer."""
    record = trace.record
    parts = [
        f"turn {record.turn_id}",
        format_day(trace.created_at),
        outcome_phrase(record.outcome),
        f'asked "{_clip(record.message, 200)}"',
    ]
    calls = [call_text(c) for c in record.tool_calls if c.source == "app"]
    if calls:
        parts.append("called " + "; ".join(calls[:5]))
    errors = [c.error for c in record.tool_calls if c.error]
    if errors:
        parts.append(f'tool error "{_clip(errors[0] or "", 120)}"')
    parts.append(f'answered "{_clip(record.answer, 160)}"')
    return "- " + " · ".join(parts)


def reflection_prompt(
    *,
    label: str,
    version: str,
    base: str,
    rules: Sequence[Rule],
    tools: Sequence[ToolSchema],
    failures: Sequence[Trace],
    successes: Sequence[Trace],
    lessons: Sequence[str],
    rejected: Sequence[str],
    open_changes: Sequence[str],
) -> str:
    """The user prompt of the reflection call (see the module docstring)."""
    rule_lines = [f"- [{r.id}]{f' (tool {r.tool})' if r.tool else ''} {r.text}" for r in rules]
    sections = [
        f"# The agent: {label}",
        f"## Its instructions now (version {version})",
        base.strip() or "(no base instructions recorded)",
        "",
        "Learned rules, with their ids:" if rule_lines else "Learned rules: none yet.",
        *rule_lines,
        "",
        "## Its tools",
        *([f"- {t.name}: {_clip(t.description, 300)}" for t in tools] or ["(none recorded)"]),
        "",
        "## Turns that went wrong (newest first)",
        *([turn_line(t) for t in failures] or ["(none)"]),
        "",
        "## Turns that went well (for contrast)",
        *([turn_line(t) for t in successes] or ["(none)"]),
    ]
    if lessons:
        sections += ["", "## Lessons learned from outcomes", *lessons]
    if open_changes:
        sections += ["", "## Changes already proposed or made (do not repeat)", *open_changes]
    if rejected:
        sections += ["", "## Changes people rejected (never propose these again)", *rejected]
    return "\n".join(sections)


@dataclass(frozen=True, kw_only=True)
class Draft:
    """A proposed change that passed the checks, ready for the screen and the gate."""

    change: RuleChange
    rules_after: tuple[Rule, ...]
    rule_text: str
    target_text: str | None
    evidence: tuple[EvidenceTurn, ...]
    expected_effect: str
    risk: str
    words: frozenset[str]


def check_proposed(
    proposed: ProposedChange,
    *,
    rules: Sequence[Rule],
    failures: Mapping[str, Trace],
    tools: Iterable[str] | None,
    limits: RuleLimits,
    min_evidence: int,
    rejected: Sequence[frozenset[str]],
    taken: Sequence[frozenset[str]],
) -> Draft:
    """The draft of a proposed change, or :class:`ValidationError` saying why it is dropped."""
    change = RuleChange(
        action=proposed.action,
        target=proposed.target,
        tool=proposed.tool or None,
        stop=proposed.stop,
        do=proposed.do,
        when=proposed.when,
    )
    rules_after = apply_change(rules, change, limits=limits, tools=tools)
    cited = list(dict.fromkeys(proposed.evidence))
    unknown = [t for t in cited if t not in failures]
    if unknown:
        raise ValidationError(
            f"it cites turns that were not shown as having gone wrong: {', '.join(unknown[:5])}"
        )
    if len(cited) < min_evidence:
        raise ValidationError(
            f"it cites {len(cited)} turn(s) that went wrong; a change needs at least {min_evidence}"
        )
    target_text = next((r.text for r in rules if r.id == change.target), None)
    words = change_words(change, target_text=target_text)
    if any(same_change(words, w) for w in rejected):
        raise ValidationError("the same change was rejected before")
    if any(same_change(words, w) for w in taken):
        raise ValidationError("the same change is already proposed or made")
    return Draft(
        change=change,
        rules_after=rules_after,
        rule_text=change.text,
        target_text=target_text,
        evidence=tuple(failures[t].evidence() for t in cited),
        expected_effect=_clip(proposed.expected_effect, 400),
        risk=_clip(proposed.risk, 400),
        words=words,
    )


async def astructured(
    model: Model,
    *,
    output_type: type[BaseModel],
    instructions: str,
    prompt: str,
    name: str,
    retries: int = 2,
) -> tuple[Any, RunUsage]:
    """One structured-output call; :class:`ModelError` with the raw output when it fails."""
    agent: PydanticAgent[None, Any] = PydanticAgent(
        model, output_type=output_type, instructions=instructions, retries=retries, name=name
    )
    with capture_run_messages() as captured:
        try:
            result = await agent.run(prompt)
        except (UnexpectedModelBehavior, AgentRunError) as exc:
            raw = captured[-1] if captured else None
            raise ModelError(
                f"the {name} call failed: {exc}",
                raw_output=None if raw is None else str(raw)[:4000],
            ) from exc
    return result.output, result.usage
