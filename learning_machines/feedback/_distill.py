"""Lessons from outcomes, as pure functions: approaches, support, verdicts and their text.

An *approach* is what the agent chose in a turn: the app's tool calls with the arguments the
message did not dictate (``deploy(strategy="all_at_once")`` for "deploy billing-api to prod"),
or, without tool calls, the decision it logged. A *candidate* gathers the outcomes of one
approach for similar requests, one per session; once enough sessions (and users, for a shared
namespace) agree, it becomes a lesson: "when C, avoid A" or "when C, do A (where B went
wrong)", with one raw example turn.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field

from ..db import Learning, normalize_text
from ..stores._decision_model import DecisionRecord, ToolCallRecord, call_text
from ..stores._shared import format_day

__all__ = [
    "Approach",
    "LessonExample",
    "LessonWrite",
    "Tally",
    "add_support",
    "approach_of",
    "drop_user",
    "lesson_line",
    "lesson_search_text",
    "tally",
    "verdict",
]

Verdict = Literal["avoid", "do"]


@dataclass(frozen=True, kw_only=True)
class Approach:
    """What the agent chose in a turn, as a key (to group outcomes) and as text."""

    key: str
    """Normalised form: two turns with the same key chose the same thing."""
    text: str
    """How a lesson names it (``deploy(strategy="all_at_once")``)."""


def _in_message(value: Any, message: str) -> bool:
    if isinstance(value, bool) or value is None:
        return False
    text = normalize_text(str(value))
    return bool(text) and text in normalize_text(message)


def _choice(call: ToolCallRecord, message: str) -> str:
    """The call without the arguments the message itself gave (what was asked, not chosen)."""
    args = {k: v for k, v in call.args.items() if not _in_message(v, message)}
    return call_text(ToolCallRecord(name=call.name, args=args))


def approach_of(record: DecisionRecord) -> Approach | None:
    """The approach of a recorded turn, or ``None`` when it chose nothing a lesson can name."""
    calls = [c for c in record.tool_calls if c.source == "app"]
    if calls:
        choices = list(dict.fromkeys(_choice(c, record.message) for c in calls))
        text = "; ".join(choices)
        return Approach(key="tools:" + normalize_text(text), text=text)
    if record.decisions:
        text = record.decisions[0].decision.strip()
        if text:
            return Approach(key="decided:" + normalize_text(text), text=text)
    return None


def add_support(
    support: Sequence[Mapping[str, Any]],
    *,
    user_id: str,
    session_id: str,
    turn_id: str,
    score: float,
    at: str,
) -> list[dict[str, Any]]:
    """``support`` with this turn's outcome (a re-rated turn replaces its entry)."""
    entry = {
        "user_id": user_id,
        "session_id": session_id,
        "turn_id": turn_id,
        "score": round(score, 4),
        "at": at,
    }
    kept = [dict(s) for s in support if s.get("turn_id") != turn_id]
    return [*kept, entry]


@dataclass(frozen=True, kw_only=True)
class Tally:
    """How one approach turned out, counted once per session (its latest clear outcome)."""

    good_sessions: int
    bad_sessions: int
    good_users: int
    bad_users: int


def tally(support: Sequence[Mapping[str, Any]], *, min_outcome: float) -> Tally:
    """Count sessions (and users) where the approach clearly worked or clearly went wrong."""
    latest: dict[str, Mapping[str, Any]] = {}
    for entry in support:
        if abs(float(entry.get("score", 0.0))) >= min_outcome:
            latest[str(entry.get("session_id") or entry.get("turn_id"))] = entry
    good = [e for e in latest.values() if float(e["score"]) > 0]
    bad = [e for e in latest.values() if float(e["score"]) < 0]

    def users(entries: list[Mapping[str, Any]]) -> int:
        return len({e.get("user_id") or e.get("session_id") for e in entries})

    return Tally(
        good_sessions=len(good),
        bad_sessions=len(bad),
        good_users=users(good),
        bad_users=users(bad),
    )


def verdict(
    t: Tally, *, min_sessions: int, min_users: int, agreement: float, contrast: bool
) -> Verdict | None:
    """``avoid`` or ``do`` once enough sessions and users agree, else ``None``.

    A ``do`` lesson needs ``contrast``: another approach went wrong for such requests (an
    approach that works where nothing ever failed teaches nothing).
    """
    total = t.good_sessions + t.bad_sessions
    if total == 0:
        return None
    bad, good = t.bad_sessions, t.good_sessions
    if bad >= min_sessions and t.bad_users >= min_users and bad >= agreement * total:
        return "avoid"
    if (
        contrast
        and good >= min_sessions
        and t.good_users >= min_users
        and good >= agreement * total
    ):
        return "do"
    return None


class LessonExample(BaseModel):
    """The raw turn a lesson carries (agents follow experience more than summaries)."""

    turn_id: str
    user_id: str | None = None
    at: str
    message: str
    answer: str = ""
    calls: list[str] = Field(default_factory=list)
    outcome: str = ""


class LessonWrite(BaseModel):
    """One lesson to write (the lesson store's write; what a proposal holds)."""

    candidate_id: str
    condition: str = Field(description="Requests it applies to, by an example request.")
    condition_turn: str | None = None
    action: Verdict
    approach: str
    because: str = ""
    because_turn: str | None = None
    instead: str | None = None
    sessions: int = 0
    users: int = 0
    example: LessonExample | None = None


def lesson_search_text(write: LessonWrite) -> str:
    """What a lesson is found by: its condition first (it is recalled when C matches)."""
    return f"When asked like: {write.condition}\n{write.action} {write.approach}"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def lesson_line(learning: Learning) -> str:
    """A lesson for the prompt, with its example turn."""
    w = LessonWrite.model_validate(learning.content)
    condition = _clip(w.condition, 100)
    if w.action == "avoid":
        head = f'- When a request is like "{condition}": avoid {w.approach}'
        why = f" — it went wrong in {w.sessions} sessions"
    else:
        head = f'- When a request is like "{condition}": do {w.approach}'
        why = f" — it worked in {w.sessions} sessions"
        if w.instead:
            why += f" where {w.instead} went wrong"
    if w.because:
        why += f' ("{_clip(w.because, 120)}")'
    lines = [head + why + "."]
    if w.example is not None:
        e = w.example
        day = format_day(learning.created_at) if not e.at else e.at[:10]
        did = "called " + "; ".join(e.calls) if e.calls else f'answered "{_clip(e.answer, 80)}"'
        asked = _clip(e.message, 100)
        lines.append(f'  Example ({day}): asked "{asked}"; you {did} → {e.outcome}.')
    return "\n".join(lines)


def drop_user(content: Mapping[str, Any], user_id: str) -> dict[str, Any] | None:
    """``content`` of a candidate or lesson without ``user_id``'s turns (forget), or ``None``.

    Their support entries, examples, example, and the request or complaint quoted from one of
    their turns go; ``None`` when nothing of theirs was there.
    """
    support = list(content.get("support") or [])
    examples = list(content.get("examples") or [])
    theirs = {str(s.get("turn_id")) for s in support if s.get("user_id") == user_id}
    theirs |= {str(e.get("turn_id")) for e in examples if e.get("user_id") == user_id}
    example = content.get("example")
    if isinstance(example, Mapping) and example.get("user_id") == user_id:
        theirs.add(str(example.get("turn_id")))
    if not theirs:
        return None
    out = dict(content)
    if "support" in content:
        out["support"] = [s for s in support if str(s.get("turn_id")) not in theirs]
    kept = [e for e in examples if str(e.get("turn_id")) not in theirs]
    if "examples" in content:
        out["examples"] = kept
    if isinstance(example, Mapping) and str(example.get("turn_id")) in theirs:
        out["example"] = None
    if str(content.get("because_turn")) in theirs:
        out["because"], out["because_turn"] = "", None
    if str(content.get("condition_turn")) in theirs:
        out["condition"] = str(kept[0]["message"]) if kept else "(a forgotten request)"
        out["condition_turn"] = str(kept[0]["turn_id"]) if kept else None
    return out
