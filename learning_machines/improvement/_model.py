"""What self-improvement keeps, as typed data, and the pure rules over it.

A *rule* is one learned instruction ("Stop X; do Y when Z."), on the agent's instructions or on
one tool's description. A *version* is an agent's approved rule set, addressed by its content.
A *proposal* is one small change to the rule set — add, replace or remove one rule — with the
turns it rests on, its expected effect, a risk note, what the screen found and what the gate
replay showed. Nothing here does I/O.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, Field

from ..db import normalize_text
from ..exceptions import ValidationError

__all__ = [
    "RULES_HEADING",
    "ActiveInstructions",
    "ChangeAction",
    "EvidenceTurn",
    "GateResult",
    "ImprovementProposal",
    "InstructionChange",
    "InstructionVersion",
    "ProposalStatus",
    "ReflectionJob",
    "ReplayCase",
    "Rule",
    "RuleChange",
    "RuleLimits",
    "Scope",
    "ScreenNote",
    "apply_change",
    "change_words",
    "compose_rule",
    "fingerprint",
    "render_instructions",
    "rule_id",
    "rule_words",
    "rules_block",
    "same_change",
    "tool_notes",
    "version_id",
]

ChangeAction = Literal["add", "replace", "remove"]
ProposalStatus = Literal["pending", "failed_gate", "blocked", "approved", "rejected", "withdrawn"]

#: The heading of the learned rules in an agent's instructions.
RULES_HEADING = "## Rules learned from past turns (each approved by a reviewer)"


@dataclass(frozen=True)
class Scope:
    """Whose instructions: an agent (``None``: turns without an agent id), maybe one team's."""

    agent_id: str | None
    team_id: str | None = None

    @property
    def key(self) -> str:
        """A stable key for ids."""
        return json.dumps([self.agent_id, self.team_id])

    @property
    def label(self) -> str:
        """How people read it: ``agent ops-bot`` / ``agent ops-bot, team red``."""
        text = f"agent {self.agent_id or '(none)'}"
        return text + (f", team {self.team_id}" if self.team_id else "")


class Rule(BaseModel):
    """One learned instruction."""

    id: str
    """``r`` + a hash of its text and tool: the same rule has the same id everywhere."""
    text: str
    """The rule, e.g. ``Stop deploying all at once; deploy with a canary when …``."""
    tool: str | None = None
    """The tool whose description it belongs to (``None``: the agent's instructions)."""


def rule_id(text: str, tool: str | None) -> str:
    """The content address of a rule."""
    raw = normalize_text(text) + "\x1f" + (tool or "")
    return "r" + hashlib.sha256(raw.encode("utf-8")).hexdigest()[:8]


def _phrase(text: str) -> str:
    return re.sub(r"[\s.;,!]+$", "", " ".join(text.split()))


def compose_rule(*, stop: str, do: str, when: str) -> str:
    """``Stop X; do Y when Z.`` from its three parts (trimmed; a repeated lead word dropped)."""
    stop, do, when = _phrase(stop), _phrase(do), _phrase(when)
    stop = re.sub(r"^(stop|don't|do not)\s+", "", stop, flags=re.I)
    when = re.sub(r"^when\s+", "", when, flags=re.I)
    if not stop or not do or not when:
        raise ValidationError(
            "a rule needs all three parts: what to stop doing, what to do instead, and when"
        )
    return f"Stop {stop}; {do[0].lower() + do[1:]} when {when}."


class RuleChange(BaseModel):
    """One small change to an agent's rules: add, replace or remove one rule."""

    action: ChangeAction
    target: str | None = None
    """The rule replaced or removed (its id)."""
    tool: str | None = None
    """For a rule on a tool's description: the tool's name."""
    stop: str = ""
    """What to stop doing (X)."""
    do: str = ""
    """What to do instead (Y)."""
    when: str = ""
    """When (Z)."""

    @property
    def text(self) -> str:
        """The new rule's text (empty for a removal)."""
        if self.action == "remove":
            return ""
        return compose_rule(stop=self.stop, do=self.do, when=self.when)


@dataclass(frozen=True, kw_only=True)
class RuleLimits:
    """Size caps on rules (from the config)."""

    max_rule_chars: int
    max_rules: int
    max_rules_chars: int


def apply_change(
    rules: Sequence[Rule],
    change: RuleChange,
    *,
    limits: RuleLimits,
    tools: Iterable[str] | None = None,
) -> tuple[Rule, ...]:
    """The rule set after ``change``; :class:`ValidationError` says why it cannot apply."""
    current = list(rules)
    ids = [r.id for r in current]
    if change.action in ("replace", "remove"):
        if change.target not in ids:
            raise ValidationError(
                f"no rule {change.target!r} to {change.action} (rules now: "
                f"{', '.join(ids) or 'none'})"
            )
        index = ids.index(str(change.target))
        del current[index]
    else:
        index = len(current)
    if change.action != "remove":
        text = change.text
        if len(text) > limits.max_rule_chars:
            raise ValidationError(
                f"the rule is {len(text)} characters; a rule is at most "
                f"{limits.max_rule_chars} (one small change, never a rewrite)"
            )
        known = None if tools is None else set(tools)
        if change.tool is not None and known is not None and change.tool not in known:
            raise ValidationError(f"no tool named {change.tool!r} (tools: {sorted(known)})")
        new = Rule(id=rule_id(text, change.tool), text=text, tool=change.tool)
        if any(r.id == new.id for r in current):
            raise ValidationError("that rule is already in the instructions")
        current.insert(index, new)
    if len(current) > limits.max_rules:
        raise ValidationError(
            f"the instructions would hold {len(current)} rules; at most {limits.max_rules} "
            "(replace or remove one instead)"
        )
    total = sum(len(r.text) for r in current)
    if total > limits.max_rules_chars:
        raise ValidationError(
            f"the rules would hold {total} characters; at most {limits.max_rules_chars}"
        )
    return tuple(current)


def version_id(scope: Scope, rules: Sequence[Rule]) -> str:
    """The content address of a rule set of a scope (``v`` + 12 hex)."""
    raw = json.dumps(
        {"scope": [scope.agent_id, scope.team_id], "rules": [[r.text, r.tool] for r in rules]},
        sort_keys=True,
        ensure_ascii=False,
    )
    return "v" + hashlib.sha256(raw.encode("utf-8")).hexdigest()[:12]


def render_instructions(base: str, rules: Sequence[Rule]) -> str:
    """The agent's instructions: its base text, then the learned rules for it (not for tools)."""
    block = rules_block(rules)
    return "\n\n".join(part for part in (base.strip(), block) if part)


def rules_block(rules: Sequence[Rule]) -> str:
    """The learned rules on the agent's instructions, as a block (empty when there are none)."""
    lines = [f"- {r.text}" for r in rules if r.tool is None]
    return "\n".join([RULES_HEADING, *lines]) if lines else ""


def tool_notes(rules: Sequence[Rule]) -> dict[str, str]:
    """The learned rules on tools, by tool: text to add to each tool's description."""
    notes: dict[str, list[str]] = {}
    for r in rules:
        if r.tool is not None:
            notes.setdefault(r.tool, []).append(r.text)
    return {tool: "Learned rule: " + " ".join(texts) for tool, texts in notes.items()}


# --- fingerprints: the same change, however it is worded ---------------------------------------

_WORD = re.compile(r"[a-z0-9_]+")
_STOP = frozenset(
    {
        "a", "an", "the", "to", "of", "in", "on", "for", "with", "and", "or", "is", "are", "be",
        "it", "its", "by", "as", "at", "when", "stop", "do", "instead", "any", "this", "that",
        "asked", "user", "users", "request", "requests", "always", "never", "not",
    }
)  # fmt: skip


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix) and not word.endswith("ss"):
            return word[: -len(suffix)]
    return word


_PARTS = re.compile(r"^stop (.*?); (.*) when (.*)$")


def rule_words(text: str, *, action: ChangeAction, tool: str | None) -> frozenset[str]:
    """The content words of a rule's text, crudely stemmed, with the action and the tool.

    In a "Stop X; do Y when Z" rule each word is tagged with its part (``-`` what to stop,
    ``+`` what to do, ``~`` when), so the opposite rule is not the same change.
    """
    plain = normalize_text(text)
    found = _PARTS.match(plain)
    parts = zip("-+~", found.groups(), strict=True) if found else [("", plain)]
    words = {tag + _stem(w) for tag, part in parts for w in _WORD.findall(part) if w not in _STOP}
    return frozenset(words | {f"@{action}", f"@tool:{tool or ''}"})


def change_words(change: RuleChange, *, target_text: str | None = None) -> frozenset[str]:
    """The content words of a change (a removal: of the rule it removes)."""
    text = (target_text or "") if change.action == "remove" else change.text
    return rule_words(text, action=change.action, tool=change.tool)


def fingerprint(words: Iterable[str]) -> str:
    """A normalised fingerprint of a change's words (``f`` + 16 hex)."""
    raw = " ".join(sorted(set(words)))
    return "f" + hashlib.sha256(raw.encode("utf-8")).hexdigest()[:16]


def same_change(a: Iterable[str], b: Iterable[str], *, threshold: float = 0.8) -> bool:
    """Whether two changes are the same: one action, one place, most words shared.

    "Most" is a Jaccard overlap of at least ``threshold``.
    """
    sa, sb = set(a), set(b)
    if not sa or not sb or {w for w in sa if w[0] == "@"} != {w for w in sb if w[0] == "@"}:
        return False
    return len(sa & sb) / len(sa | sb) >= threshold


# --- proposals ---------------------------------------------------------------------------------


class EvidenceTurn(BaseModel):
    """A turn a proposal rests on: its id and outcome (its text stays in the decision log)."""

    turn_id: str
    score: float
    """The turn's outcome, from -1 (went wrong) to 1."""
    source: str
    """The kind of signal that decided it (``explicit``, ``rule:tool_error`` …)."""
    at: str = ""
    """When the turn happened (ISO)."""


class ReplayCase(BaseModel):
    """One turn the gate replayed, and what the replays showed."""

    turn_id: str
    kind: Literal["target", "good"]
    """``target``: a failure the change should fix; ``good``: a turn that must not regress."""
    verdict: Literal["fixed", "unchanged", "unreproduced", "kept", "regressed", "unstable"]
    """target: fixed / unchanged / unreproduced (the replay without the change did not fail the
    same way, so it says nothing); good: kept / regressed / unstable (idem)."""
    scored_by: Literal["rule", "judge"]
    original: str = ""
    """What the turn did (its approach, or "answered")."""
    without: str = ""
    """What the replay with the current instructions did."""
    with_change: str = ""
    """What the replay with the change did."""
    note: str = ""
    """The judge's reason, when a judge scored it."""


class GateResult(BaseModel):
    """The gate's replay of a proposal."""

    passed: bool
    reason: str
    targets: int = 0
    """Failures replayed that still fail without the change."""
    fixed: int = 0
    good: int = 0
    """Good turns whose replay without the change still did the same."""
    regressions: int = 0
    contested: int = 0
    """Turns rated good left out: the same action went wrong at least twice as often."""
    cases: list[ReplayCase] = Field(default_factory=list)
    base_version: str = ""
    """The version the change was replayed against."""
    model: str | None = None
    replay_calls: int = 0
    judge_calls: int = 0


class ScreenNote(BaseModel):
    """Something the screen found in a proposal."""

    kind: str
    reason: str


class ImprovementProposal(BaseModel):
    """A small, evidenced change to an agent's instructions, waiting for (or past) review."""

    id: str
    agent_id: str | None = None
    team_id: str | None = None
    change: RuleChange
    rule_text: str = ""
    """The rule as it would read (empty for a removal)."""
    target_text: str | None = None
    """The rule replaced or removed, as it reads now."""
    evidence: list[EvidenceTurn] = Field(default_factory=list)
    expected_effect: str = ""
    risk: str = ""
    base_version: str = ""
    """The version the proposal was made (and gated) against."""
    status: ProposalStatus = "pending"
    """``pending`` (offered for approval), ``failed_gate`` or ``blocked`` (kept, not offered),
    ``approved``, ``rejected``, ``withdrawn`` (its evidence was forgotten)."""
    gate: GateResult | None = None
    screen: list[ScreenNote] = Field(default_factory=list)
    words: list[str] = Field(default_factory=list)
    fingerprint: str = ""
    created_at: str = ""
    reflection: str = ""
    """Id of the reflection run that made it."""
    decided_by: str | None = None
    decided_at: str | None = None
    decision_note: str | None = None
    version: str | None = None
    """The version its approval made."""

    @property
    def scope(self) -> Scope:
        """Whose instructions it changes."""
        return Scope(self.agent_id, self.team_id)

    @property
    def summary(self) -> str:
        """One line a person can judge it by."""
        where = f" (tool {self.change.tool})" if self.change.tool else ""
        if self.change.action == "remove":
            return f"remove [{self.change.target}]{where}: {self.target_text or ''}"
        if self.change.action == "replace":
            return f"replace [{self.change.target}]{where} with: {self.rule_text}"
        return f"add{where}: {self.rule_text}"


class InstructionVersion(BaseModel):
    """An approved rule set of one scope; its id is its content's address."""

    id: str
    agent_id: str | None = None
    team_id: str | None = None
    rules: list[Rule] = Field(default_factory=list)
    created_at: str = ""


class InstructionChange(BaseModel):
    """One change of the active version: an approval or a rollback, with who and why."""

    id: str
    agent_id: str | None = None
    team_id: str | None = None
    action: Literal["approve", "rollback"]
    from_version: str
    to_version: str
    by: str
    at: str
    proposal_id: str | None = None
    summary: str = ""
    evidence: list[EvidenceTurn] = Field(default_factory=list)
    note: str | None = None


@dataclass(frozen=True, kw_only=True)
class ReflectionJob:
    """A reflection of one agent (and team): self-improvement's scheduled run."""

    agent_id: str | None
    """The agent."""
    team_id: str | None = None
    """Its team, when instructions are kept per team."""
    key: str | None = None
    """Enqueueing two jobs with one key keeps one."""


@dataclass(frozen=True, kw_only=True)
class ActiveInstructions:
    """The instructions an agent runs with now: its base text plus the approved rules."""

    agent_id: str | None
    team_id: str | None
    version: str
    """The version of the rule set (record it on the turn: ``RunInfo(instructions_version=)``)."""
    base: str
    """The agent's own instructions."""
    rules: tuple[Rule, ...] = ()
    tool_notes: Mapping[str, str] = field(default_factory=dict)
    """Learned rules on tools, by tool: add them to those tools' descriptions."""

    @property
    def text(self) -> str:
        """The whole instructions: base text, then the learned rules."""
        return render_instructions(self.base, self.rules)

    @property
    def rules_text(self) -> str:
        """Only the learned rules block (to add to instructions you already send)."""
        return rules_block(self.rules)
